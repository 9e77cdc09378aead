"""Plumbing for code that talks to a cluster through its API, the same on the sim and on kind: helpers over the
official ``kubernetes`` client's objects (here), the lab's own async client (``api``) and list+watch caches
(``informers``) for the controllers that run beside the cluster (Argo CD's, istiod)."""

from __future__ import annotations

from typing import Any


def is_ready(obj: Any) -> bool:
    """A pod or node whose ``Ready`` condition is ``True``."""
    return any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions or [])
