"""Small helpers for the asyncio tasks components run."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
