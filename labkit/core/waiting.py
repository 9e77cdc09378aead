"""Waiting for a condition with a deadline: every wait in the lab has one (a lesson never hangs)."""

from __future__ import annotations

import sys
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


def ready_or_exit(problem: Callable[[], str], what: str, wait: float, every: float = 2.0) -> None:
    """A ``python -m <product>.ready`` check: poll ``problem`` ("" once ready, else what is missing) for up to
    ``wait`` seconds; exit 1 saying what is still missing when time is up."""
    deadline = time.monotonic() + wait
    while (missing := problem()) and time.monotonic() < deadline:
        time.sleep(every)
    if missing:
        print(f"{what} is not ready after {wait:.0f} s: {missing}", file=sys.stderr)
        sys.exit(1)
