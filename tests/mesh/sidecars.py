"""Real Envoy sidecars for the mesh tests: small aiohttp replicas on their own loopback addresses (free ports),
an OTLP/HTTP sink, and sidecars configured by the translation and delivered by file-based xDS.

Addresses come from 127.250-254.x.y, which no lab takes (labs use 127.10-249), each port chosen free on it."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from labkit.core.network import free_port
from labkit.mesh.config_dump import versions
from labkit.mesh.envoy import Envoy
from labkit.mesh.identity import ProxyIdentity
from labkit.mesh.translate import Mesh, ProxyConfig, ProxyOptions, translate
from labkit.mesh.xds import AdminAddress, FileDelivery, bootstrap

from ..waiting import until
from .servers import LoopServers


def address_block() -> str:
    """``127.A.B.`` for this module's pods (random, so parallel test workers do not meet)."""
    return f"127.{random.randint(250, 254)}.{random.randint(0, 255)}."


@dataclass
class Replica:
    """One app replica: ``status`` it answers, ``fail_every`` (every n-th request answers 503), ``delay`` s."""

    name: str
    ip: str
    port: int
    status: int = 200
    fail_every: int = 0
    delay: float = 0.0
    seen: int = 0
    last_headers: dict[str, str] = field(default_factory=dict)


class Backends(LoopServers):
    """aiohttp servers on a loop thread: the replicas, and an OTLP/HTTP sink that keeps what it receives."""

    def __init__(self) -> None:
        super().__init__("mesh-backends")
        self.replicas: dict[str, Replica] = {}
        self.otlp_bodies: list[tuple[str, bytes]] = []

    def replica(self, name: str, ip: str) -> Replica:
        rep = Replica(name, ip, free_port(ip))

        async def handle(request: web.Request) -> web.Response:
            rep.seen += 1
            rep.last_headers = dict(request.headers)
            if rep.delay:
                await asyncio.sleep(rep.delay)
            status = 503 if rep.fail_every and rep.seen % rep.fail_every == 0 else rep.status
            return web.json_response({"replica": rep.name, "path": request.path_qs}, status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._serve(app, ip, rep.port)
        self.replicas[name] = rep
        return rep

    def otlp_sink(self, ip: str) -> str:
        """An OTLP/HTTP receiver; its traces URL."""
        port = free_port(ip)

        async def traces(request: web.Request) -> web.Response:
            self.otlp_bodies.append((request.content_type, await request.read()))
            return web.Response(status=200, content_type="application/x-protobuf", body=b"")

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        self._serve(app, ip, port)
        return f"http://{ip}:{port}/v1/traces"

    def reset(self) -> None:
        for rep in self.replicas.values():
            rep.status, rep.fail_every, rep.delay, rep.seen = 200, 0, 0.0, 0


class Sidecar:
    """A real Envoy for ``identity``, fed by file-based xDS from the translation."""

    def __init__(self, identity: ProxyIdentity, home: Path, options: ProxyOptions,
                 translator: Callable[[Mesh, ProxyIdentity, ProxyOptions], ProxyConfig] = translate) -> None:
        self.identity, self.options, self.home, self.translator = identity, options, home, translator
        self.delivery = FileDelivery(home / "xds")
        self.config: ProxyConfig | None = None
        self.envoy: Envoy | None = None

    def push(self, mesh: Mesh) -> list[str]:
        self.config = self.translator(mesh, self.identity, self.options)
        return self.delivery.push(self.config)

    def start(self, prometheus_port: int | None = None) -> None:
        admin = AdminAddress(self.identity.ip, free_port(self.identity.ip))
        path = self.home / "bootstrap.json"
        path.write_text(json.dumps(bootstrap(self.identity, self.delivery, admin, prometheus_port)))
        self.envoy = Envoy(path, self.home / "envoy.log").start()

    def applied(self) -> bool:
        """Envoy has accepted the last version of every file pushed."""
        assert self.envoy is not None
        have = versions(self.envoy.config_dump())
        want = {"lds": self._version("lds.json"), "cds": self._version("cds.json")}
        for path in self.delivery.directory.glob("rds-*.json"):
            want[f"rds:{path.stem.removeprefix('rds-')}"] = self._version(path.name)
        return all(have.get(k) == v for k, v in want.items())

    def _version(self, name: str) -> str:
        return json.loads((self.delivery.directory / name).read_text())["version_info"]

    @property
    def proxy(self) -> dict[str, str]:
        """``requests``' proxies: the app's HTTP_PROXY is the outbound listener."""
        return {"http": f"http://{self.identity.ip}:{self.options.outbound_port}"}

    def access_log(self) -> list[dict[str, Any]]:
        path = Path(self.options.access_log or "")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def logged(self, responses: list[requests.Response]) -> list[dict[str, Any]]:
        """The access log lines of ``responses`` (by their ``x-request-id``), once Envoy has flushed them all
        (it flushes every 100 ms)."""
        ids = [_uuid_key(r.request.headers["x-request-id"]) for r in responses]

        def lines() -> list[dict[str, Any]] | None:
            found = {_uuid_key(line["request_id"]): line for line in self.access_log()
                     if line["reporter"] == "source"}
            return [found[i] for i in ids] if all(i in found for i in ids) else None
        return until(f"{len(ids)} access log lines", lines, timeout=10, every=0.05)

    def stop(self) -> None:
        if self.envoy:
            self.envoy.stop()


def _uuid_key(request_id: str) -> str:
    """A request id without its version digit, where Envoy packs the trace decision (``pack_trace_reason``)."""
    return request_id[:14] + request_id[15:]


def send(sidecar: Sidecar, url: str, n: int = 1, headers: dict[str, str] | None = None) -> list[requests.Response]:
    """``n`` requests through ``sidecar``'s outbound listener on one connection (as an app's client pool), each
    with its own ``x-request-id`` (Envoy keeps it: the access log line is found by it)."""
    with requests.Session() as s:
        s.proxies = sidecar.proxy
        return [s.get(url, timeout=10, headers={**(headers or {}), "x-request-id": str(uuid.uuid4())})
                for _ in range(n)]


def replicas(responses: list[requests.Response]) -> Counter[str]:
    return Counter(r.json()["replica"] if r.headers.get("content-type", "").startswith("application/json")
                   else f"{r.status_code}" for r in responses)


def wait_applied(*sidecars: Sidecar) -> float:
    """Seconds until every sidecar has what was pushed."""
    start = time.monotonic()
    until("envoy to accept the pushed configuration", lambda: all(s.applied() for s in sidecars), timeout=20,
          every=0.02)
    return time.monotonic() - start
