"""The thread plumbing of the lessons' samplers: poll something every few tenths of a second until stopped."""

from __future__ import annotations

import contextvars
import threading
import time
from abc import ABC, abstractmethod
from typing import Self


class Sampler(ABC):
    """``with SomeSampler(...) as s:`` calls ``sample(elapsed)`` every ``every`` seconds in a thread until the
    block ends (or ``stop()``); ``started`` is the wall-clock start, ``elapsed()`` the seconds since.

    The thread runs in a copy of the creator's context: in a notebook, whatever a sample shows goes to the output of
    the cell that created the sampler, never to the cell that happens to run later."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,), daemon=True)

    @abstractmethod
    def sample(self, elapsed: float) -> None:
        """Take one sample, ``elapsed`` seconds after the start."""

    def elapsed(self) -> float:
        return time.time() - self.started

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample(self.elapsed())
            self._stop.wait(self.every)
