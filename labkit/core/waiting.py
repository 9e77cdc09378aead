"""Waiting for a condition with a deadline: every wait in the lab has one (a lesson never hangs)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Poll ``condition`` every ``every`` seconds: True once it holds, False when ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
