"""Makes a fresh Nexus the lab's, through its REST API only (Nexus 3 on kind, or the simulator):

* the administrator's password: a new Nexus writes a random one to ``/nexus-data/admin.password``; it is read from
  the container (``docker cp``), changed to the lab's own (``PUT /v1/security/users/admin/change-password``, after
  which Nexus deletes the file) and written to a 0600 file;
* anonymous read access switched on (``PUT /v1/security/anonymous``), so that ``pip`` needs no credentials;
* the repositories of chapter 04 (``REPOSITORIES``): ``pypi-proxy`` (PyPI's upstream), ``pypi-hosted``,
  ``pypi-group`` (hosted first, then the proxy) and ``maven-central`` (a maven2 proxy; a new Nexus has one
  already), each created (``POST /v1/repositories/<format>/<type>``) or brought back online, unblocked and with
  the group's members (``PUT .../<name>``); an existing proxy keeps its remote.

Each step is skipped when already done, so ``labkit up`` may run it again.
``python -m labkit.nexus.provision --home H --url U --container C --out DIR``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..core.files import write_atomic
from ..core.paths import LabPaths
from ..core.secrets import Secrets

ADMIN = "admin"
ADMIN_PASSWORD = "nexus-admin-password"  # the lab's secret: the administrator's password once provisioned
PASSWORD_FILE = "admin-password"  # in the kind lab's nexus folder, mode 0600
INITIAL_PASSWORD = "/nexus-data/admin.password"  # where a new Nexus writes its first password
PYPI_UPSTREAM = "https://pypi.org/"
MAVEN_UPSTREAM = "https://repo1.maven.org/maven2/"
PROXIES = ("pypi-proxy", "maven-central")  # the repositories with an upstream (the outage lesson blocks them)


@dataclass(frozen=True)
class Repository:
    """One repository the lab needs: its REST path (``pypi/proxy``) and its settings beside ``name``."""

    name: str
    format: str
    type: str
    remote: str = ""  # proxies: the upstream key in ``Upstreams``
    members: tuple[str, ...] = ()  # groups

    def body(self, upstreams: dict[str, str]) -> dict[str, Any]:
        """The JSON ``POST``/``PUT /v1/repositories/<format>/<type>`` takes."""
        storage: dict[str, Any] = {"blobStoreName": "default", "strictContentTypeValidation": True}
        body: dict[str, Any] = {"name": self.name, "online": True, "storage": storage}
        if self.type == "hosted":
            storage["writePolicy"] = "allow_once"
        elif self.type == "group":
            body["group"] = {"memberNames": list(self.members)}
        else:
            body.update(proxy={"remoteUrl": upstreams[self.remote], "contentMaxAge": 1440, "metadataMaxAge": 1440},
                        negativeCache={"enabled": True, "timeToLive": 1440},
                        httpClient={"blocked": False, "autoBlock": True})
        if self.format == "maven2":
            body["maven"] = {"versionPolicy": "RELEASE", "layoutPolicy": "STRICT", "contentDisposition": "INLINE"}
        return body

    @property
    def api_path(self) -> str:
        return f"{'maven' if self.format == 'maven2' else self.format}/{self.type}"


REPOSITORIES = (
    Repository("pypi-proxy", "pypi", "proxy", remote="pypi"),
    Repository("pypi-hosted", "pypi", "hosted"),
    Repository("pypi-group", "pypi", "group", members=("pypi-hosted", "pypi-proxy")),
    Repository("maven-central", "maven2", "proxy", remote="maven"),
)


class NexusAdmin:
    """Nexus' REST API (``/service/rest/v1``) as the administrator; errors raise with Nexus' own answer."""

    def __init__(self, url: str, password: str = "", user: str = ADMIN, timeout: float = 30) -> None:
        self.api = url.rstrip("/") + "/service/rest/v1"
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: never through a proxy
        self.session.auth = (user, password)
        self.timeout = timeout

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        r = self.session.request(method, self.api + path, timeout=self.timeout, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"Nexus {method} {path}: HTTP {r.status_code} {r.text.strip()[:300]}")
        return r

    def authenticated(self) -> bool:
        """True when the session's credentials are accepted (a read only administrators may do)."""
        r = self.session.get(self.api + "/security/anonymous", timeout=self.timeout)
        return r.status_code == 200

    def wait_writable(self, timeout: float = 600) -> None:
        """Until ``/v1/status/writable`` answers 200 (a starting Nexus answers 503, or not at all)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.session.get(self.api + "/status/writable", timeout=5)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as err:
                last = str(err)
            time.sleep(2)
        raise RuntimeError(f"Nexus at {self.api} was not writable within {timeout:.0f} s ({last})")

    def change_password(self, new: str) -> None:
        self.request("PUT", f"/security/users/{self.session.auth[0]}/change-password", data=new.encode(),
                     headers={"Content-Type": "text/plain"})
        self.session.auth = (self.session.auth[0], new)

    def anonymous(self, enabled: bool) -> None:
        self.request("PUT", "/security/anonymous", json={"enabled": enabled, "userId": "anonymous",
                                                        "realmName": "NexusAuthorizingRealm"})

    def repositories(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.request("GET", "/repositories").json()}

    def repository(self, repo: Repository) -> dict[str, Any]:
        """The repository's full settings (``GET /v1/repositories/<format>/<type>/<name>``)."""
        return self.request("GET", f"/repositories/{repo.api_path}/{repo.name}").json()

    def ensure(self, repo: Repository, upstreams: dict[str, str]) -> str:
        """Create ``repo`` or bring it back to the lab's settings; what was done."""
        body = repo.body(upstreams)
        if repo.name not in self.repositories():
            self.request("POST", f"/repositories/{repo.api_path}", json=body)
            return "created"
        have = self.repository(repo)
        if self._matches(have, body):
            return "kept"
        self.request("PUT", f"/repositories/{repo.api_path}/{repo.name}", json=body)
        return "updated"

    @staticmethod
    def _matches(have: dict[str, Any], want: dict[str, Any]) -> bool:
        """True when the settings the lab relies on are as wanted: online, not blocked, the group's members. An
        existing proxy keeps its remote (an administrator may have pointed it at a mirror)."""
        if "proxy" in want:
            want["proxy"]["remoteUrl"] = (have.get("proxy") or {}).get("remoteUrl") or want["proxy"]["remoteUrl"]
        return (have.get("online") == want["online"]
                and bool((have.get("httpClient") or {}).get("blocked")) is False
                and (have.get("group") or {}).get("memberNames") == (want.get("group") or {}).get("memberNames"))

    def set_blocked(self, name: str, blocked: bool) -> None:
        """Block (or unblock) a proxy's outbound requests: Nexus then serves what it has cached, fetches nothing."""
        repo = next(r for r in REPOSITORIES if r.name == name)
        have = self.repository(repo)
        have["httpClient"] = {**(have.get("httpClient") or {}), "blocked": blocked}
        have.pop("url", None)
        have.pop("format", None)
        have.pop("type", None)
        self.request("PUT", f"/repositories/{repo.api_path}/{name}", json=have)


def initial_password(container: str) -> str | None:
    """The first password a new Nexus wrote in its container, or None once it was changed (Nexus deletes it)."""
    with tempfile.TemporaryDirectory(prefix="labkit-nexus-") as tmp:
        target = Path(tmp) / "admin.password"
        res = subprocess.run(["docker", "cp", f"{container}:{INITIAL_PASSWORD}", str(target)], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=60)
        if res.returncode != 0:
            if "Could not find the file" in res.stderr or "No such file" in res.stderr:
                return None
            raise RuntimeError(f"docker cp {container}:{INITIAL_PASSWORD}: {res.stderr.strip()}")
        return target.read_text().strip()


def admin(url: str, password: str, container: str, password_file: Path) -> NexusAdmin:
    """The administrator's session with the lab's password, set from the initial one on first use."""
    nexus = NexusAdmin(url, password)
    nexus.wait_writable()
    if not nexus.authenticated():
        first = initial_password(container)
        if first is None:
            raise RuntimeError(f"Nexus at {url} refuses the lab's admin password and has no {INITIAL_PASSWORD} "
                               "any more: its password was changed outside labkit (`labkit down` resets the lab)")
        nexus = NexusAdmin(url, first)
        nexus.change_password(password)
    write_atomic(password_file, password + "\n", mode=0o600)
    return nexus


def provision(nexus: NexusAdmin, upstreams: dict[str, str]) -> list[str]:
    """Anonymous read on, every repository of ``REPOSITORIES`` as the lab wants it; what was done."""
    nexus.anonymous(True)
    return [f"{repo.name} {nexus.ensure(repo, upstreams)}" for repo in REPOSITORIES]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.nexus.provision", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the lab home (its secrets hold the password)")
    parser.add_argument("--url", required=True, help="Nexus from this machine")
    parser.add_argument("--container", required=True, help="Nexus' container (its admin.password is read there)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the admin-password file")
    parser.add_argument("--pypi-upstream", default=PYPI_UPSTREAM, help="pypi-proxy's remote URL")
    parser.add_argument("--maven-upstream", default=MAVEN_UPSTREAM, help="maven-central's remote URL")
    args = parser.parse_args(argv)
    password = Secrets(LabPaths(args.home).secrets).get(ADMIN_PASSWORD)
    nexus = admin(args.url, password, args.container, args.out / PASSWORD_FILE)
    done = provision(nexus, {"pypi": args.pypi_upstream, "maven": args.maven_upstream})
    print(f"Nexus at {args.url} is provisioned ({', '.join(done)}); the admin's password is in "
          f"{args.out / PASSWORD_FILE}")


if __name__ == "__main__":
    main()
