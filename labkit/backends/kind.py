"""The kind backend: a kind cluster plus docker compose, the real products.

Not built yet: it is the subject of its own issue. Until then it refuses
clearly instead of pretending to start anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.paths import LabPaths


def _not_yet() -> RuntimeError:
    from ..control import LabError

    return LabError("the kind backend is not available in this version of labkit yet; "
                    "use the default sim backend (`labkit up`)")


def up(paths: LabPaths, progress: Callable[[str], None]) -> dict[str, Any]:
    raise _not_yet()


def down(paths: LabPaths, progress: Callable[[str], None]) -> bool:
    raise _not_yet()


def endpoints(paths: LabPaths) -> dict[str, Any] | None:
    return None


def status(paths: LabPaths) -> list[dict[str, Any]]:
    raise _not_yet()


def action(paths: LabPaths, component: str, operation: str, **args: Any) -> Any:
    raise _not_yet()
