"""An IPython extension the lab's kernel loads: a cell that runs longer than 3 s says so in its own output while it
runs (a moving bar and the seconds so far, refreshed in place), and how long it took once it ends.

Cells with a live view of their own (a table or plot refreshing in place) show it too; this is the floor every long
cell gets. The bar is drawn by a thread that carries the cell's context, so it lands in that cell and nowhere else.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

AFTER = 3.0  # seconds a cell runs before it shows that it is still running
EVERY = 1.0  # seconds between refreshes

_STYLE = "font:12px sans-serif;color:#57606a;display:flex;align-items:center;gap:.6em;margin:2px 0"


def _running(seconds: float) -> Any:
    from IPython.display import HTML

    return HTML(f'<div class="labkit-running" style="{_STYLE}"><progress style="width:8em"></progress>'
                f"<span>running · {seconds:.0f} s</span></div>")


def _finished(seconds: float) -> Any:
    from IPython.display import HTML

    return HTML(f'<div class="labkit-finished" style="{_STYLE}">finished in {seconds:.1f} s</div>')


class _CellRun:
    """One cell's run: after ``AFTER`` seconds a bar in the cell's output, refreshed until ``finish``."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.handle: Any = None
        self._done = threading.Event()
        context = contextvars.copy_context()  # the cell's: what the thread displays goes to this cell
        self._thread = threading.Thread(target=context.run, args=(self._watch,), daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        from IPython.display import display

        if self._done.wait(AFTER):
            return
        self.handle = display(_running(time.monotonic() - self.started), display_id=True)
        while not self._done.wait(EVERY):
            self.handle.update(_running(time.monotonic() - self.started))

    def finish(self) -> None:
        self._done.set()
        self._thread.join()
        if self.handle is not None:
            self.handle.update(_finished(time.monotonic() - self.started))


class CellTimer:
    """Starts a ``_CellRun`` before each cell and finishes it after."""

    def __init__(self) -> None:
        self.run: _CellRun | None = None

    def pre_run_cell(self, info: Any = None) -> None:
        self.post_run_cell()
        self.run = _CellRun()

    def post_run_cell(self, result: Any = None) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


_timer = CellTimer()


def load_ipython_extension(ipython: Any) -> None:
    ipython.events.register("pre_run_cell", _timer.pre_run_cell)
    ipython.events.register("post_run_cell", _timer.post_run_cell)


def unload_ipython_extension(ipython: Any) -> None:
    ipython.events.unregister("pre_run_cell", _timer.pre_run_cell)
    ipython.events.unregister("post_run_cell", _timer.post_run_cell)
    _timer.post_run_cell()
