"""What a product contributes to the kind backend (its ``<product>/kind.py`` subclasses ``KindPart``).

``labkit up --backend kind`` renders every part's files, runs the parts' ``create`` commands (the
cluster), ``docker compose up`` for their compose services, then their ``ready`` and ``configure``
commands, in the order of ``labkit.products``; ``down`` runs ``compose down`` and the parts' ``destroy``
commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...endpoints import Endpoint
from .lab import Command, KindLab


class KindPart:
    """A product's kind side. Every method has a do-nothing default."""

    compose_services: tuple[str, ...] = ()  # its services in compose/compose.yaml
    compose_profile: str = ""  # the compose profile that holds them, when they are not started by default

    def files(self, lab: KindLab) -> dict[Path, str]:
        """Files to write into the lab's folder before anything runs."""
        return {}

    def create(self, lab: KindLab, exists: bool) -> list[Command]:
        """Commands before ``compose up`` (``exists``: the kind cluster is there already)."""
        return []

    def ready(self, lab: KindLab) -> list[Command]:
        """Commands that wait, right after ``compose up``, until the product can be used."""
        return []

    def configure(self, lab: KindLab) -> list[Command]:
        """Commands once every product is ready."""
        return []

    def destroy(self, lab: KindLab, exists: bool) -> list[Command]:
        """Commands after ``compose down``."""
        return []

    def endpoint(self, lab: KindLab) -> Endpoint | None:
        return None

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        """Checked through the product's own protocol; never raises."""
        return True, ""

    def actions(self, lab: KindLab) -> dict[str, Callable[..., Any]]:
        """Lesson operations, called with keyword arguments."""
        return {}

