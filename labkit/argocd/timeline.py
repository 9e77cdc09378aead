"""A live timeline of one Application: a sampler thread reads it every fraction of a second (through the
Kubernetes API, as ``kubectl get application -w`` would), keeps one row per sample, redraws the plot in the output
of the cell that started it, and lets the lesson mark the moments it did something and wait, with a deadline, for
a state to be reached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..core.errors import LabError
from .views import SAMPLE_COLUMNS, LiveTimeline, changes, plot_timeline, sample

Reader = Callable[[], "dict[str, Any] | None"]


class Timeline:
    """``Timeline(read, title)`` starts sampling at once; ``mark(label)``, ``wait(until, timeout, what)``, and
    ``stop()`` (the final figure, or None when the live one is already on the page). A context manager too."""

    def __init__(self, read: Reader, title: str, every: float = 0.25, redraw: float = 1.0) -> None:
        self.read, self.title, self.every, self.redraw = read, title, every, redraw
        self.live = LiveTimeline(title)
        self.started = time.monotonic()
        self.rows: list[dict[str, Any]] = []
        self.marks: dict[str, float] = {}
        self.app: dict[str, Any] | None = None
        self.error: str = ""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timeline {title}", daemon=True)
        self._thread.start()

    def now(self) -> float:
        """Seconds since the timeline started."""
        return time.monotonic() - self.started

    def _run(self) -> None:
        drawn = 0.0
        while not self._stop.is_set():
            try:
                app = self.read()
                self.error = ""
            except Exception as err:  # a sampler keeps sampling: the API may answer again
                app, self.error = None, f"{type(err).__name__}: {err}"
            if app is not None:
                with self._changed:
                    self.app = app
                    self.rows.append(sample(app, self.now()))
                    self._changed.notify_all()
            if time.monotonic() - drawn >= self.redraw:
                self.live(self.frame, self.marks)
                drawn = time.monotonic()
            self._stop.wait(self.every)

    @property
    def frame(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self.rows), columns=SAMPLE_COLUMNS)

    def mark(self, label: str) -> float:
        """Mark now as the moment ``label`` happened (drawn as a dashed line); its time in seconds."""
        t = self.now()
        self.marks[label] = t
        return t

    def changes(self, since: float = 0.0) -> list[tuple[float, str]]:
        """The moments something changed, at or after ``since`` seconds."""
        return [(t, what) for t, what in changes(self.frame) if t >= since]

    def wait(self, until: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """The latest sampled Application once ``until`` holds for it; LabError after ``timeout``
        seconds saying ``what`` was not reached and the Application's last state."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self.app is not None and until(self.app):
                    return self.app
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self.rows[-1] if self.rows else {}
                    raise LabError(f"{what} was not reached in {timeout:.0f} s: the Application was "
                                   f"{last.get('sync', 'never read')}/{last.get('health', '')}"
                                   f"{' (' + last['message'] + ')' if last.get('message') else ''}"
                                   f"{'; ' + self.error if self.error else ''}")
                self._changed.wait(min(left, 1.0))

    def stop(self) -> Figure | None:
        """Stop sampling; the final figure (shown in place of the live one when a person runs the notebook)."""
        self._stop.set()
        self._thread.join(5)
        return self.live.close(plot_timeline(self.frame, self.title, self.marks))

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
