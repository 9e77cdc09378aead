"""The interface every backend implements; ``labkit.control`` only picks one and dispatches to it.

A backend decides how the products are started and where they listen, and hands back typed endpoints
(``labkit.endpoints``). Everything above this line is one code path for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.paths import LabPaths
from ..endpoints import LabEndpoints

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProductStatus:
    """One row of ``lab.status()`` / ``labkit status``: a running product and its health."""

    name: str
    title: str
    url: str
    healthy: bool
    detail: str = ""


class Backend(ABC):
    """How one lab home's products run: ``sim`` (local emulators) or ``kind`` (the real products in Docker)."""

    name: ClassVar[str]

    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths

    @abstractmethod
    def up(self, progress: Progress, jupyter: bool | None = None) -> LabEndpoints:
        """Start the lab (idempotent) and return its endpoints once it is ready."""

    @abstractmethod
    def down(self, progress: Progress) -> bool:
        """Stop the lab and everything it started; True if it was running."""

    @abstractmethod
    def endpoints(self) -> LabEndpoints | None:
        """The running lab's endpoints, or None when it is not up and ready."""

    @abstractmethod
    def status(self) -> list[ProductStatus]:
        """Every running product, checked through its own protocol."""

    @abstractmethod
    def action(self, product: str, operation: str, **args: Any) -> Any:
        """A lesson operation of a product (stop a node, reconfigure HAProxy, ...)."""
