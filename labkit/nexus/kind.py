"""Nexus on the kind backend: Sonatype Nexus Repository 3 (``sonatype/nexus3``, Community Edition) as the compose
service ``nexus`` (profile ``nexus``): its data in a volume owned by the image's ``nexus`` user (uid 200), the JVM
heap sized for a laptop, healthy once ``/service/rest/v1/status`` answers. Once every product is ready,
``provision.py`` makes it the lab's through the same REST calls the simulator answers: the admin password from the
container's ``admin.password``, anonymous read, ``pypi-proxy``/``pypi-hosted``/``pypi-group``/``maven-central``.

Nexus comes before the shop in ``labkit.products``, so the shop's ``docker build`` installs through ``pypi-group``
(``NexusKind.build_index``). The outage lesson's ``upstream-off``/``upstream-on`` block the proxies' outbound
requests (``httpClient.blocked``): Nexus then serves what it has cached and fetches nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.secrets import Secrets
from ..endpoints import Endpoint, NexusEndpoint
from . import provision

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

    def configure(self, lab: KindLab) -> list[Command]:
        upstreams = lab.versions["nexus"]
        return [Command("provisioning Nexus (the admin password, anonymous read, the PyPI and Maven repositories)", [
            sys.executable, "-m", "labkit.nexus.provision", "--home", str(lab.paths.home), "--url", self.url(lab),
            "--container", lab.container("nexus"), "--out", str(self.folder(lab)),
            "--pypi-upstream", upstreams["pypi_upstream"], "--maven-upstream", upstreams["maven_upstream"]])]

    def endpoint(self, lab: KindLab) -> Endpoint:
        url = self.url(lab)
        return NexusEndpoint("Nexus", url, pypi=simple_index(url), maven=f"{url}/repository/{MAVEN}/",
                             password_file=str(self.folder(lab) / provision.PASSWORD_FILE))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/service/rest/v1/status", timeout=5)  # 200 once Nexus serves

    def actions(self, lab: KindLab) -> dict[str, Callable[..., Any]]:
        def block(blocked: bool) -> str:
            password = Secrets(lab.paths.secrets).get(provision.ADMIN_PASSWORD)
            nexus = provision.NexusAdmin(self.url(lab), password)
            for name in provision.PROXIES:
                nexus.set_blocked(name, blocked)
            state = "blocked" if blocked else "reachable again"
            return f"the proxies' upstream is {state} ({', '.join(provision.PROXIES)})"

        return {"upstream-off": lambda: block(True), "upstream-on": lambda: block(False)}
