"""Chapter 04's operations on ``lab.nexus`` (``NexusView`` mixes them in), through Nexus' own protocols only, so
they are the same on both backends: real ``pip`` through the PyPI group, timed per package; the proxy cache
emptied and inspected through the components API; the upstream switched off and on for the outage lesson; one
Maven artifact resolved through the proxy as Gradle or Maven would; and the state ``lab.chapter(4)`` starts from.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError
from . import piplog, provision

if TYPE_CHECKING:
    import pandas as pd

    from ..endpoints import NexusEndpoint
    from ..lab import Lab
    from .lab import NexusRest

PROXY, GROUP, HOSTED = "pypi-proxy", "pypi-group", "pypi-hosted"
STAND_IN_ARTIFACT = "io.msalab:hello"  # the Maven fixture's artifact (the stand-in upstream)
CENTRAL_ARTIFACT = "junit:junit"  # a small, long-lived artifact on Maven Central


class NexusLessons:
    """What notebook 04 does with Nexus. Needs ``lab``, ``endpoint``, ``url`` and ``rest()`` (``NexusView``)."""

    lab: Lab

    if TYPE_CHECKING:
        @property
        def endpoint(self) -> NexusEndpoint: ...

        @property
        def url(self) -> str: ...

        @property
        def password(self) -> str: ...

        def rest(self) -> NexusRest: ...

    # -- the cache, through the components API ----------------------------------------------------------------
    def components(self, repository: str = PROXY) -> pd.DataFrame:
        """Every component Nexus stores in ``repository`` (``GET /v1/components``, all pages) as a table."""
        from .views import component_frame

        rest = self.rest()
        try:
            return component_frame(rest.pages("/components", repository=repository))
        finally:
            rest.close()

    def cached(self, repository: str = PROXY) -> set[str]:
        """The (normalized) names of the projects ``repository`` has stored files of."""
        return {piplog.normalize(n) for n in self.components(repository)["name"]}

    def forget(self, *packages: str, repository: str = PROXY) -> list[str]:
        """Delete ``packages`` (all of them when none is named) from the proxy's store (``DELETE
        /v1/components/{id}``): the next request fetches them from the upstream again. Returns the deleted
        ``name version`` pairs."""
        wanted = {piplog.normalize(p) for p in packages}
        rest = self.rest()
        try:
            gone = []
            for item in rest.pages("/components", repository=repository):
                if not wanted or piplog.normalize(item["name"]) in wanted:
                    rest.request("DELETE", f"/components/{item['id']}")
                    gone.append(f"{item['name']} {item.get('version')}")
            return gone
        finally:
            rest.close()

    # -- pip through the group ---------------------------------------------------------------------------------
    @property
    def shop_requirements(self) -> Path:
        """The shop's ``requirements.txt`` (the same in every service): what its images ``pip install``."""
        from ..core.checkout import Checkout

        return Checkout.find().root / "apps" / "catalog" / "requirements.txt"

    @property
    def index_url(self) -> str:
        """The PyPI group's simple index: what ``PIP_INDEX_URL`` is in the lab's builds and jobs."""
        return self.endpoint.pypi

    def install(self, requirements: str | Path, run: str = "install") -> pd.DataFrame:
        """``pip install -r requirements`` into a new empty venv through the group, one row per package: ``run``,
        ``package``, ``version``, ``seconds`` pip spent fetching it, ``files``/``bytes`` it downloaded, and
        ``cache``: ``hit`` when the proxy had the package stored before the install began, else ``miss``."""
        import pandas as pd

        from .views import INSTALL_COLUMNS

        before = self.cached()
        with tempfile.TemporaryDirectory(prefix="labkit-venv-") as tmp:
            result = piplog.install(Path(requirements), self.index_url, Path(tmp) / "venv")
        if not result.ok:
            raise LabError(f"pip install -r {requirements} through {self.index_url} failed:\n"
                           + "\n".join(result.output.strip().splitlines()[-12:]))
        versions = piplog.installed_versions(result.report)
        rows = [{"run": run, **row, "version": versions.get(str(row["package"]), ""),
                 "cache": "hit" if row["package"] in before else "miss"} for row in piplog.package_times(result.log)]
        return pd.DataFrame(rows, columns=INSTALL_COLUMNS)

    def download(self, *packages: str, dest: str | Path | None = None) -> piplog.PipRun:
        """``pip download --no-deps PACKAGES`` through the group into ``dest`` (a new folder by default): what a
        build does when it fetches, without installing. ``.ok`` and ``.output`` say how it went. The default folder
        is new under the lab home's ``downloads/``, so a download never finds its file already there."""
        if dest is None:
            downloads = self.lab.paths.home / "downloads"
            downloads.mkdir(parents=True, exist_ok=True)
            dest = tempfile.mkdtemp(dir=downloads)
        folder = Path(dest)
        return piplog.run_pip("download", ["--no-deps", "--dest", str(folder), *packages], self.index_url)

    # -- the upstream ------------------------------------------------------------------------------------------
    def upstream(self) -> dict[str, Any]:
        """Where the proxies fetch from (``pypi``, ``maven``, ``source``; ``stand_in``: the lab's stand-in)."""
        return dict(self.lab.action("nexus", "upstream"))

    def _admin(self) -> provision.NexusAdmin:
        return provision.NexusAdmin(self.url, self.password, self.endpoint.user)

    def upstream_off(self) -> str:
        """The outage: the lab's stand-in upstream stops (a real outage for the proxies); where the proxies fetch from
        the internet, their remote is blocked instead (``httpClient.blocked``), which Nexus treats alike: it serves
        what it stored and fetches nothing."""
        if self.upstream().get("stand_in"):
            self.lab.action("nexus", "stand_in", running=False)
            return "the stand-in upstream is stopped"
        nexus = self._admin()
        for name in provision.PROXIES:
            nexus.set_blocked(name, True)
        return f"the remotes of {', '.join(provision.PROXIES)} are blocked"

    def upstream_on(self) -> str:
        """Undo ``upstream_off``; saving each proxy also ends an automatic block (as saving it in Nexus does)."""
        if self.upstream().get("stand_in"):
            self.lab.action("nexus", "stand_in", running=True)
        nexus = self._admin()
        for name in provision.PROXIES:
            nexus.set_blocked(name, False)
        return "the upstream is reachable"

    def remote_status(self) -> pd.DataFrame:
        """Each repository's status as Nexus' repository list shows it (``Online - Remote Available``, ``…
        Automatically Blocked and Unavailable``), from ``/service/rest/internal/ui/repositories/details``."""
        import pandas as pd

        rest = self.rest()
        try:
            r = rest.session.get(self.url + "/service/rest/internal/ui/repositories/details", timeout=30)
            r.raise_for_status()
        finally:
            rest.close()
        rows = [{"repository": d["name"], "type": d["type"], "format": d["format"],
                 "status": (d.get("status") or {}).get("description", ""),
                 "reason": (d.get("status") or {}).get("reason")} for d in r.json()]
        return pd.DataFrame(rows, columns=["repository", "type", "format", "status", "reason"]).set_index("repository")

    # -- Maven, as the slide's Gradle snippet -----------------------------------------------------------------
    def maven_example(self, repository: str = "maven-public") -> str:
        """An artifact (``group:artifact``) this lab's Maven upstream has, asked through ``repository``: the stand-in
        fixture's, else a small one on Maven Central (the first whose ``maven-metadata.xml`` Nexus serves)."""
        import requests

        session = requests.Session()
        session.trust_env = False
        try:
            for candidate in (STAND_IN_ARTIFACT, CENTRAL_ARTIFACT):
                group, artifact = candidate.split(":")
                path = f"{group.replace('.', '/')}/{artifact}/maven-metadata.xml"
                if session.get(f"{self.url}/repository/{repository}/{path}", timeout=60).status_code == 200:
                    return candidate
        finally:
            session.close()
        raise LabError(f"{repository} serves neither {STAND_IN_ARTIFACT} (the stand-in's) nor {CENTRAL_ARTIFACT} "
                       f"(Maven Central's): its upstream, {self.upstream().get('maven')}, does not answer from here")

    def gradle_snippet(self, repository: str = "maven-public") -> str:
        """The slide's ``repositories { … }`` block, switched from ``mavenCentral()`` to this lab's Nexus."""
        url = f"{self.url}/repository/{repository}/"
        return (f'repositories {{\n  // mavenCentral()\n  maven {{\n    url = uri("{url}")\n'
                "    allowInsecureProtocol = true  // the lab serves plain HTTP on loopback\n  }\n}\n")

    def resolve_maven(self, coordinates: str, repository: str = "maven-public") -> pd.DataFrame:
        """Resolve ``group:artifact[:version]`` as Gradle does against a ``maven { url }`` repository: read
        ``maven-metadata.xml`` for the release when no version is given, then fetch the ``.pom`` and ``.jar`` and
        check each against its ``.sha1``. One row per file: ``file``, ``bytes``, ``sha1_ok``, ``seconds``."""
        import pandas as pd
        import requests

        group, artifact, *rest_ = coordinates.split(":")
        base = f"{self.url}/repository/{repository}/{group.replace('.', '/')}/{artifact}"
        session = requests.Session()
        session.trust_env = False
        try:
            version = rest_[0] if rest_ else self._release(session, f"{base}/maven-metadata.xml")
            rows = []
            for ext in ("pom", "jar"):
                name = f"{artifact}-{version}.{ext}"
                started = time.monotonic()
                r = session.get(f"{base}/{version}/{name}", timeout=60)
                if r.status_code != 200:
                    raise LabError(f"{repository} has no {name} ({r.status_code}): {r.text.strip()[:200]}")
                sha1 = session.get(f"{base}/{version}/{name}.sha1", timeout=60)
                rows.append({"file": name, "bytes": len(r.content),
                             "sha1_ok": sha1.status_code == 200 and
                             sha1.text.split()[0] == hashlib.sha1(r.content).hexdigest(),
                             "seconds": time.monotonic() - started})
            return pd.DataFrame(rows, columns=["file", "bytes", "sha1_ok", "seconds"])
        finally:
            session.close()

    @staticmethod
    def _release(session: Any, url: str) -> str:
        r = session.get(url, timeout=60)
        if r.status_code != 200:
            raise LabError(f"no {url} ({r.status_code}): the repository does not know that artifact")
        versioning = ET.fromstring(r.content).find("versioning")
        version = None if versioning is None else (versioning.findtext("release") or versioning.findtext("latest"))
        if not version:
            raise LabError(f"{url} names no release")
        return version

    # -- the chapter's starting state ---------------------------------------------------------------------------
    def repair(self) -> list[str]:
        """``lab.chapter(n)`` for any chapter: every build goes through Nexus, so an outage or a broken group left
        by an interrupted chapter 04 is undone first (``restore``)."""
        return self.restore()

    def restore(self) -> list[str]:
        """Back to the lab's Nexus: the upstream on, every repository of the lab online, unblocked and the group
        with its members (``provision``), anonymous read on. Returns what it changed."""
        done = []
        info = self.upstream()
        if info.get("stand_in") and not info.get("stand_in_running"):
            self.lab.action("nexus", "stand_in", running=True)
            done.append("nexus: the stand-in upstream started again")
        nexus = self._admin()
        upstreams = {"pypi": info.get("pypi") or provision.PYPI_UPSTREAM,
                     "maven": info.get("maven") or provision.MAVEN_UPSTREAM}
        done += [f"nexus: {line}" for line in provision.provision(nexus, upstreams) if not line.endswith(" kept")]
        return done
