"""Nexus on the kind backend: Sonatype Nexus Repository 3 (``sonatype/nexus3``, Community Edition) as the compose
service ``nexus`` (profile ``nexus``): its data in a volume owned by the image's ``nexus`` user (uid 200), the JVM
heap sized for a laptop, healthy once ``/service/rest/v1/status`` answers. Once every product is ready,
``provision.py`` makes it the lab's through the same REST calls the simulator answers: the admin password from the
container's ``admin.password``, anonymous read, ``pypi-proxy``/``pypi-hosted``/``pypi-group``/``maven-central``.

Nexus comes before the shop in ``labkit.products``, so the shop's ``docker build`` installs through ``pypi-group``
(``NexusKind.build_index``). The outage lesson blocks the proxies' outbound requests through the REST API
(``httpClient.blocked``, ``lab.nexus``): Nexus then serves what it has cached and fetches nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.errors import LabError
from ..core.network import is_loopback
from ..core.secrets import Secrets
from ..endpoints import Endpoint, NexusEndpoint
from . import provision, upstream

GROUP = "pypi-group"  # what every pip install in the lab goes through
MAVEN = "maven-central"


def simple_index(url: str, repository: str = GROUP) -> str:
    """A PyPI repository's simple index (PEP 503), what ``PIP_INDEX_URL`` is set to."""
    return f"{url.rstrip('/')}/repository/{repository}/simple/"


class NexusKind(KindPart):
    compose_services = ("nexus",)
    compose_profile = "nexus"

    @staticmethod
    def folder(lab: KindLab) -> Path:
        return lab.dir / "nexus"

    @staticmethod
    def url(lab: KindLab) -> str:
        return lab.host_url("nexus")

    @classmethod
    def build_index(cls, lab: KindLab) -> str:
        """``PIP_INDEX_URL`` for ``docker build`` on this machine (a build reaches Nexus' published port through
        the host's network: ``docker build --network host``)."""
        return simple_index(cls.url(lab))

    @staticmethod
    def upstreams(lab: KindLab) -> dict[str, str]:
        """The remotes new proxies get: the index pip on this machine uses when Nexus' container can reach it (an
        HTTP index that is not on this machine's loopback), else PyPI; Maven Central or ``$LABKIT_NEXUS_MAVEN_REMOTE``
        (``manifests/versions.yaml`` names the defaults)."""
        defaults = lab.versions["nexus"]
        index = os.environ.get("LABKIT_NEXUS_PYPI_INDEX") or upstream.pip_index()
        host = urlsplit(index or "").hostname or ""
        pypi = upstream.remote_base(index) if index and index.startswith(("http://", "https://")) and \
            not is_loopback(host) and host != "localhost" else defaults["pypi_upstream"]
        return {"pypi": pypi, "maven": os.environ.get("LABKIT_NEXUS_MAVEN_REMOTE") or defaults["maven_upstream"]}

    def configure(self, lab: KindLab) -> list[Command]:
        remotes = self.upstreams(lab)
        return [Command("provisioning Nexus (the admin password, anonymous read, the PyPI and Maven repositories)", [
            sys.executable, "-m", "labkit.nexus.provision", "--home", str(lab.paths.home), "--url", self.url(lab),
            "--container", lab.container("nexus"), "--out", str(self.folder(lab)),
            "--pypi-upstream", remotes["pypi"], "--maven-upstream", remotes["maven"]])]

    def endpoint(self, lab: KindLab) -> Endpoint:
        url = self.url(lab)
        return NexusEndpoint("Nexus", url, pypi=simple_index(url), maven=f"{url}/repository/{MAVEN}/",
                             password_file=str(self.folder(lab) / provision.PASSWORD_FILE))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/service/rest/v1/status", timeout=5)  # 200 once Nexus serves

    def actions(self, lab: KindLab) -> dict[str, Callable[..., Any]]:
        """As the sim's: ``upstream`` says where the proxies fetch from; the kind lab has no stand-in upstream (its
        outage lesson blocks the remote through the REST API, ``httpClient.blocked``)."""
        def describe() -> dict[str, Any]:
            nexus = provision.NexusAdmin(self.url(lab), Secrets(lab.paths.secrets).get(provision.ADMIN_PASSWORD))
            remotes = {r.format: nexus.repository(r)["proxy"]["remoteUrl"] for r in provision.REPOSITORIES
                       if r.name in provision.PROXIES}
            return {"pypi": remotes.get("pypi", ""), "maven": remotes.get("maven2", ""),
                    "source": "the proxies' remotes (provisioned from pip's index, else PyPI)", "stand_in": False,
                    "stand_in_running": False, "stand_in_url": ""}

        def stand_in(running: bool) -> dict[str, Any]:
            raise LabError("the kind lab's proxies fetch from the internet, not from a stand-in: block the remote "
                           "through the REST API (httpClient.blocked) instead")

        return {"upstream": describe, "stand_in": stand_in}
