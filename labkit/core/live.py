"""Live tables for the lessons: shown in the output of the cell that creates them, refreshed in place from any thread
(a sampler's), and in that cell only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


class LiveTable:
    """``LiveTable(title)`` shows an empty table in the current cell; ``table(df)`` (from any thread) replaces it.

    In a notebook a person runs only: under papermill, nbval or plain Python (``labkit.checks.interactive`` false)
    it shows nothing, so CI's executed notebooks stay small. ``shape`` turns each frame into what is shown."""

    def __init__(self, title: str = "", shape: Callable[[pd.DataFrame], Any] | None = None) -> None:
        from ..checks import interactive

        self.title, self.shape = title, shape
        self.handle: Any = None
        if interactive():
            from IPython.display import display

            self.handle = display(self._html("<i>waiting for the first sample…</i>"), display_id=True)

    def _html(self, body: str) -> Any:
        from IPython.display import HTML

        caption = f"<b>{self.title}</b><br>" if self.title else ""
        return HTML(f'<div class="labkit-live">{caption}{body}</div>')

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.handle is None or frame.empty:
            return
        shown = self.shape(frame) if self.shape else frame
        self.handle.update(self._html(shown.to_html() if hasattr(shown, "to_html") else str(shown)))


def refresh_in_place(render: Callable[[], T], seconds: float, every: float, live: bool) -> T:
    """Show ``render()`` in the current cell's output and replace it there every ``every`` seconds for
    ``seconds``; with ``live`` false (CI) render once, shown by the cell as its value. Returns the last one."""
    import time

    from IPython.display import display

    shown = render()
    if not live:
        return shown
    handle = display(shown, display_id=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() + every <= deadline:
        time.sleep(every)
        shown = render()
        if handle is not None:
            handle.update(shown)
    return shown
