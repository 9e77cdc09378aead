"""What a backend composes: components with a lifecycle, endpoints and health."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .logs import component_logger
from .network import Network
from .paths import LabPaths
from .procs import Child, Supervisor
from .secrets import Secrets
from .tls import LabCA

if TYPE_CHECKING:
    from ..endpoints import Endpoint


@dataclass
class Context:
    """Everything a component may use from the lab: never another component.

    ``endpoints`` holds the endpoints of the products started before this one (in ``labkit.products``
    order): that is how a product finds another, through its real protocol. ``preload`` lists images the
    nodes pull as soon as they start (as RKE2 imports its airgap images).
    """

    paths: LabPaths
    network: Network
    secrets: Secrets
    ca: LabCA
    supervisor: Supervisor
    settings: dict[str, Any] = field(default_factory=dict)
    report: Callable[[str], None] = lambda line: None  # progress while starting, shown by ``labkit up``
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    preload: list[str] = field(default_factory=list)

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
    """A product's sim side, which the lab daemon starts and stops (e.g. the Kubernetes API server).

    The daemon names it after its product (``labkit.products``) before ``start``.
    """

    name: str = ""
    title: str = ""

    @abstractmethod
    async def start(self, ctx: Context) -> None:
        """Start listening / start processes; return when ready to serve."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop everything started, cleanly."""

    @abstractmethod
    def endpoint(self) -> Endpoint:
        """Where it listens, published in endpoints.json."""

    async def health(self) -> Health:
        return Health(True)

    async def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget all state (the daemon calls this for ``labkit reset``)."""

    def actions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        """Operations the lab exposes for lessons (e.g. stop a node), called with JSON keyword arguments."""
        return {}


def http_check(url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """(answered 200, what it answered) for ``url``, without any HTTP proxy: a health check from this machine."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status == 200, f"HTTP {r.status}"
    except OSError as err:
        return False, str(getattr(err, "reason", err))


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 200."""
    return http_check(url, timeout)[0]


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
