"""One exception for every API error; each component renders it in its product's shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """An error answer: HTTP status, a machine reason, a human message, extras for the renderer."""

    status: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


def not_supported(what: str, status: int = 501) -> ApiError:
    """The answer to a real API feature the simulator does not implement."""
    return ApiError(status, "NotSupported", f"{what} is not supported by the labkit simulator")


class LabError(RuntimeError):
    """A lab could not be started, reached or stopped; the message says what to do."""
