"""Helpers over the official ``kubernetes`` client's objects, for code that reads a cluster on either backend."""

from __future__ import annotations

from typing import Any


def is_ready(obj: Any) -> bool:
    """A pod or node whose ``Ready`` condition is ``True``."""
    return any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions or [])
