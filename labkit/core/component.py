"""What a backend composes: components with a lifecycle, endpoints and health."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .logs import component_logger
from .network import Network
from .paths import LabPaths
from .procs import Child, Supervisor
from .secrets import Secrets
from .tls import LabCA


@dataclass
class Context:
    """Everything a component may use from the lab: never another component."""

    paths: LabPaths
    network: Network
    secrets: Secrets
    ca: LabCA
    supervisor: Supervisor
    settings: dict[str, Any] = field(default_factory=dict)
    report: Callable[[str], None] = lambda line: None  # progress while starting, shown by ``labkit up``

    def logger(self, component: str) -> logging.Logger:
        return component_logger(self.paths.logs, component)

    def state_dir(self, component: str) -> Any:
        d = self.paths.state / component
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class Health:
    ok: bool
    detail: str = ""


class Component(ABC):
    """A part of the lab the daemon starts and stops, e.g. the Kubernetes API server."""

    name: str = ""
    title: str = ""

    @abstractmethod
    async def start(self, ctx: Context) -> None:
        """Start listening / start processes; return when ready to serve."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop everything started, cleanly."""

    @abstractmethod
    def endpoints(self) -> dict[str, Any]:
        """JSON-able endpoint description published in endpoints.json (``url`` at least)."""

    async def health(self) -> Health:
        return Health(True)

    async def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget all state (the daemon calls this for ``labkit reset``)."""

    def actions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        """Operations the lab exposes for lessons (e.g. stop a node), called with JSON keyword arguments."""
        return {}


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 200 (no proxy, loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


class ProcessComponent(Component):
    """A component that is one process under the daemon's supervisor, healthy while ``health_url`` answers 200."""

    ctx: Context
    health_url: str = ""

    def spawn(self, ctx: Context, argv: list[str], env: dict[str, str] | None = None) -> Child:
        self.ctx = ctx
        return ctx.supervisor.start(self.name, argv, env=env)

    async def wait_ready(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (await self.health()).ok:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.title} did not start; see {self.ctx.paths.logs / (self.name + '.log')}")

    async def stop(self) -> None:
        await self.ctx.supervisor.stop(self.name)

    async def health(self) -> Health:
        ok = await asyncio.to_thread(http_ok, self.health_url)
        return Health(ok, "serving" if ok else "not answering")
