"""Live tables for the lessons: shown in the output of the cell that creates them, refreshed in place from any thread
(a sampler's), and in that cell only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd


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
