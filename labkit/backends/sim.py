"""The sim backend's lab daemon: one process per lab home hosting the emulators.

Run as ``python -m labkit.backends.sim --home DIR``; ``labkit up`` does that.
It holds ``daemon.lock`` for its lifetime, serves a small control API on
loopback, starts every component, then writes ``endpoints.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib
import os
import signal
import sys
import time
from typing import IO

from aiohttp import web

from ..core.component import Component, Context
from ..core.errors import ApiError
from ..core.files import read_json, write_atomic, write_json
from ..core.http import Credentials, Listeners, api_app, json_response
from ..core.network import Network
from ..core.paths import LabPaths
from ..core.procs import Supervisor
from ..core.secrets import Secrets
from ..core.tls import LabCA
from . import CONTROL_TOKEN, settings_path

# Started in this order; later issues append their components here.
COMPONENTS = [
    "labkit.registry.component:Registry",
    "labkit.shop.component:ShopImages",
    "labkit.kube.component:KubeApiServer",
    "labkit.haproxy.component:HAProxy",
]
# Started only when settings.json asks for them.
OPTIONAL = {
    "jupyter": "labkit.jupyter.component:JupyterLab",
}


def _load(spec: str) -> Component:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)()


class Daemon:
    """Owns the components of one lab home."""

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self.components: dict[str, Component] = {}
        self.stopped = asyncio.Event()
        self.ctx: Context | None = None

    def _context(self) -> Context:
        supervisor = Supervisor(self.paths.children, self.paths.logs)
        supervisor.reap_leftovers()
        return Context(
            paths=self.paths,
            network=Network(self.paths.network, self.paths.home),
            secrets=Secrets(self.paths.secrets),
            ca=LabCA(self.paths.tls),
            supervisor=supervisor,
            settings=read_json(settings_path(self.paths), {}) or {},
            report=lambda line: write_atomic(self.paths.startup, line.encode()),
        )

    async def _start(self, spec: str) -> None:
        assert self.ctx is not None
        comp = _load(spec)
        if comp.name not in self.components:
            self.ctx.report(f"starting {comp.title or comp.name}")
            await comp.start(self.ctx)
            self.components[comp.name] = comp

    async def reconcile(self) -> None:
        """Start the optional components settings.json asks for, stop the others."""
        assert self.ctx is not None
        self.ctx.settings = read_json(settings_path(self.paths), {}) or {}
        for key, spec in OPTIONAL.items():
            name = spec.rpartition(":")[2]
            running = [c for c in self.components.values() if type(c).__name__ == name]
            if self.ctx.settings.get(key) and not running:
                await self._start(spec)
            elif not self.ctx.settings.get(key) and running:
                await running[0].stop()
                del self.components[running[0].name]
        self.publish()

    def publish(self) -> None:
        self.paths.startup.unlink(missing_ok=True)
        write_json(self.paths.endpoints, {
            "backend": "sim",
            "pid": os.getpid(),
            "started": self.started,
            "control": self.control.urls()[0],
            "kubeconfig": str(self.paths.kubeconfig),
            "components": {n: {"title": c.title, **c.endpoints()} for n, c in self.components.items()},
        })

    def _control_app(self, token: str) -> web.Application:
        app = api_app("daemon", credentials=Credentials({token: "admin"}, {}),
                      public=lambda r: r.path == "/healthz", logger=self.ctx.logger("daemon"))

        async def healthz(_: web.Request) -> web.Response:
            return json_response({"ok": True, "pid": os.getpid()})

        async def status(_: web.Request) -> web.Response:
            rows = []
            for name, comp in self.components.items():
                h = await comp.health()
                rows.append({"name": name, "title": comp.title, "url": comp.endpoints().get("url"),
                             "healthy": h.ok, "detail": h.detail})
            return json_response({"backend": "sim", "pid": os.getpid(), "components": rows})

        async def shutdown(_: web.Request) -> web.Response:
            self.stopped.set()
            return json_response({"ok": True})

        async def reconcile(_: web.Request) -> web.Response:
            await self.reconcile()
            return json_response({"ok": True})

        async def action(request: web.Request) -> web.Response:
            comp = self.components.get(request.match_info["component"])
            fn = comp.actions().get(request.match_info["action"]) if comp else None
            if fn is None:
                raise ApiError(404, "NotFound", f"no action {request.match_info['action']!r} on component "
                                                f"{request.match_info['component']!r}")
            args = await request.json() if request.can_read_body else {}
            try:
                return json_response({"result": await fn(**args)})
            except (TypeError, KeyError, ValueError) as exc:
                raise ApiError(400, "BadRequest", str(exc)) from exc

        app.router.add_post("/v1/components/{component}/{action}", action)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/v1/status", status)
        app.router.add_post("/v1/shutdown", shutdown)
        app.router.add_post("/v1/reconcile", reconcile)
        return app

    async def run(self) -> None:
        self.started = time.time()
        self.ctx = self._context()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)
        host = self.ctx.network.address(0, 1)
        addr = self.ctx.network.listener("control", host, Network.PROBE_PORT)
        self.control = Listeners(self._control_app(self.ctx.secrets.get(CONTROL_TOKEN)), [addr])
        await self.control.start()
        try:
            for spec in COMPONENTS:
                await self._start(spec)
            await self.reconcile()  # also publishes endpoints.json: the lab is ready
            await self.stopped.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        self.paths.endpoints.unlink(missing_ok=True)
        for comp in reversed(list(self.components.values())):
            try:
                await asyncio.wait_for(comp.stop(), 10)
            except Exception as exc:  # keep stopping the others
                print(f"stopping {comp.name}: {exc!r}", file=sys.stderr)
        assert self.ctx is not None
        await self.ctx.supervisor.stop_all()
        await self.control.stop()


def hold_lock(paths: LabPaths) -> IO[str] | None:
    """Take the lab's daemon lock, or None when another daemon holds it."""
    f = open(paths.lock, "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="labkit sim lab daemon")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    paths = LabPaths.resolve(args.home).ensure()
    lock = hold_lock(paths)
    if lock is None:
        print("another lab daemon already runs for this home", file=sys.stderr)
        return 3
    asyncio.run(Daemon(paths).run())
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
