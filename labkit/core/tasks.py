"""Small helpers for the asyncio tasks components run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("labkit.tasks")
STOP_SECONDS = 5.0


async def cancel(task: asyncio.Task[object] | None, timeout: float | None = None) -> None:
    """Cancel ``task`` and wait until it has stopped (``timeout``: at most that long, see ``cancel_all``)."""
    await cancel_all([] if task is None else [task], timeout)


async def cancel_all(tasks: Iterable[asyncio.Task[object]], timeout: float | None = STOP_SECONDS) -> None:
    """Cancel ``tasks`` and wait until they have stopped. With a ``timeout``, a task still running after half of it
    (Python 3.11's ``wait_for`` can lose a cancellation that races a result) is cancelled once more, then left,
    logged, so a component's stop never hangs on it."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(1 if timeout is None else 2):
        if not pending:
            break
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=None if timeout is None else timeout / 2)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("task %s ended with %r", task.get_name(), task.exception())
    for task in pending:
        log.warning("task %s did not stop when cancelled", task.get_name())
