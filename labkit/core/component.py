"""What a backend composes: components with a lifecycle, endpoints and health."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .logs import component_logger
from .network import Network
from .paths import LabPaths
from .procs import Supervisor
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
