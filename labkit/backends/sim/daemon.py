"""The sim backend's lab daemon: one process per lab home hosting the emulators.

Run as ``python -m labkit.backends.sim --home DIR``; ``labkit up`` does that.
It holds ``daemon.lock`` for its lifetime, serves a small control API on
loopback, starts every product's component in ``labkit.products`` order (but
those ``settings.json`` skips, and optional ones it does not turn on), then
writes ``endpoints.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import signal
import sys
import time
from typing import IO

from aiohttp import web

from ...core.addresses import CONTROL
from ...core.component import Component, Context
from ...core.errors import ApiError
from ...core.files import read_json, write_atomic, write_json
from ...core.http import Credentials, Listeners, api_app, json_response
from ...core.network import Network
from ...core.paths import LabPaths
from ...core.procs import Supervisor
from ...core.secrets import CONTROL_TOKEN, Secrets
from ...core.tls import LabCA
from ...endpoints import LabEndpoints
from ...products import PRODUCTS, Product


def wanted(product: Product, settings: dict) -> bool:
    """Whether the daemon runs ``product`` with these settings."""
    if product.component is None or product.name in (settings.get("skip") or []):
        return False
    return not product.setting or bool(settings.get(product.setting))


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
            settings=read_json(self.paths.settings, {}) or {},
            report=lambda line: write_atomic(self.paths.startup, line.encode()),
        )

    async def _start(self, product: Product) -> None:
        assert self.ctx is not None and product.component is not None
        comp = product.component()
        comp.name, comp.title = product.name, product.title
        self.ctx.report(f"starting {product.title}")
        await comp.start(self.ctx)
        self.components[product.name] = comp
        self.ctx.endpoints[product.name] = comp.endpoint()

    async def reconcile(self) -> None:
        """Start the products the settings want (in order), stop the optional ones they no longer want."""
        assert self.ctx is not None
        self.ctx.settings = read_json(self.paths.settings, {}) or {}
        for product in PRODUCTS:
            running = product.name in self.components
            if wanted(product, self.ctx.settings) and not running:
                await self._start(product)
            elif running and product.setting and not wanted(product, self.ctx.settings):
                await self.components.pop(product.name).stop()
                self.ctx.endpoints.pop(product.name, None)
        self.publish()

    def publish(self) -> None:
        self.paths.startup.unlink(missing_ok=True)
        endpoints = LabEndpoints("sim", str(self.paths.kubeconfig),
                                 {name: comp.endpoint() for name, comp in self.components.items()},
                                 {"pid": os.getpid(), "started": self.started, "control": self.control.urls()[0]})
        write_json(self.paths.endpoints, endpoints.to_json())

    def _control_app(self, token: str) -> web.Application:
        app = api_app("daemon", credentials=Credentials({token: "admin"}, {}),
                      public=lambda r: r.path == "/healthz", logger=self.ctx.logger("daemon"))

        async def healthz(_: web.Request) -> web.Response:
            return json_response({"ok": True, "pid": os.getpid()})

        async def status(_: web.Request) -> web.Response:
            rows = []
            for name, comp in self.components.items():
                h = await comp.health()
                rows.append({"name": name, "title": comp.title, "url": comp.endpoint().url,
                             "healthy": h.ok, "detail": h.detail})
            return json_response({"backend": "sim", "pid": os.getpid(), "products": rows})

        async def shutdown(_: web.Request) -> web.Response:
            self.stopped.set()
            return json_response({"ok": True})

        async def reconcile(_: web.Request) -> web.Response:
            await self.reconcile()
            return json_response({"ok": True})

        async def action(request: web.Request) -> web.Response:
            comp = self.components.get(request.match_info["product"])
            fn = comp.actions().get(request.match_info["action"]) if comp else None
            if fn is None:
                raise ApiError(404, "NotFound", f"no action {request.match_info['action']!r} on product "
                                                f"{request.match_info['product']!r}")
            args = await request.json() if request.can_read_body else {}
            try:
                return json_response({"result": await fn(**args)})
            except (TypeError, KeyError, ValueError) as exc:
                raise ApiError(400, "BadRequest", str(exc)) from exc

        app.router.add_post("/v1/products/{product}/{action}", action)
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
        addr = self.ctx.network.slot(CONTROL)
        self.control = Listeners(self._control_app(self.ctx.secrets.get(CONTROL_TOKEN)), [addr])
        await self.control.start()
        try:
            await self.reconcile()  # starts the products, then publishes endpoints.json: the lab is ready
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
