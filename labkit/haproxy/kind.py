"""HAProxy on the kind backend: the compose service ``haproxy`` on kind's network, in front of the three
API servers and the gateway NodePort of both workers, configured from the same template as the sim's.

Its Runtime API is published on 127.0.0.1 (TCP); a new balance is a re-rendered config and a hitless
reload (``docker kill --signal USR2``, which the official image's master process takes as SIGUSR2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.kind.lab import KindLab
from ..backends.kind.parts import KindPart
from ..core.addresses import AGENTS, SERVERS
from ..core.component import http_check
from ..core.files import read_json, write_atomic, write_json
from ..endpoints import Endpoint, HAProxyEndpoint
from .config import kind_spec, render, tunable


class HAProxyKind(KindPart):
    compose_services = ("haproxy",)

    @staticmethod
    def config_file(lab: KindLab) -> Path:
        return lab.dir / "haproxy" / "haproxy.cfg"

    @staticmethod
    def options_file(lab: KindLab) -> Path:
        return lab.dir / "haproxy-options.json"

    def files(self, lab: KindLab) -> dict[Path, str]:
        return {self.config_file(lab): self._render(lab, read_json(self.options_file(lab), {}) or {})}

    @staticmethod
    def _render(lab: KindLab, options: dict[str, Any]) -> str:
        containers = lab.node_containers
        return render(kind_spec(control_planes={n: containers[n] for n in SERVERS},
                                workers={n: containers[n] for n in AGENTS},
                                gateway_nodeport=int(lab.versions["shop"]["gateway_nodeport"]),
                                catalog_nodeport=int(lab.versions["shop"]["catalog_nodeport"]), **tunable(options)))

    def endpoint(self, lab: KindLab) -> Endpoint:
        stats = lab.host_url("stats")
        return HAProxyEndpoint("HAProxy (L4/L7 load balancer)", lab.host_url("http"), api=lab.host_url("api", "https"),
                               stats=f"{stats}/stats", metrics=f"{stats}/metrics",
                               runtime=f"tcp://127.0.0.1:{lab.ports['runtime']}", config=str(self.config_file(lab)))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(lab.host_url("stats") + "/healthz", timeout=3)

    def actions(self, lab: KindLab) -> dict[str, Callable[..., Any]]:
        def reload() -> str:
            lab.run(["docker", "kill", "--signal", "USR2", lab.container("haproxy")], timeout=60)
            return "reloaded"

        def configure(**options: Any) -> str:
            merged = {**(read_json(self.options_file(lab), {}) or {}), **tunable(options, strict=True)}
            text = self._render(lab, merged)  # an invalid option raises before anything is written
            write_json(self.options_file(lab), merged)
            write_atomic(self.config_file(lab), text)
            reload()
            return f"configured {merged}"

        def defaults() -> list[str]:
            changed = sorted(read_json(self.options_file(lab), {}) or {})
            if changed:
                write_json(self.options_file(lab), {})
                write_atomic(self.config_file(lab), self._render(lab, {}))
                reload()
            return changed

        return {"reload": reload, "configure": configure, "defaults": defaults}
