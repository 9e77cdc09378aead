"""A bounded load generator for lessons: requests at a steady rate, one row per request."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from .core.network import is_loopback

MAX_RPS, MAX_SECONDS = 500, 900  # a lesson's whole flow (chapter 10) at most


class Traffic:
    """Runs in the background; ``result()`` waits and gives the DataFrame (time, status, latency_ms, pod)."""

    def __init__(self, url: str, rps: float, seconds: float, timeout: float = 2.0) -> None:
        host = urllib.parse.urlsplit(url).hostname or ""
        if not is_loopback(host):
            raise ValueError(f"lab traffic goes to loopback addresses only, not {host!r}")
        if not 0 < rps <= MAX_RPS or not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"rps must be in (0, {MAX_RPS}] and seconds in (0, {MAX_SECONDS}]")
        self.url, self.rps, self.seconds, self.timeout = url, rps, seconds, timeout
        self.rows: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _one(self, start: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        t0 = time.perf_counter()
        status, pod = 0, None
        try:
            with opener.open(self.url, timeout=self.timeout) as r:
                r.read()
                status, pod = r.status, r.headers.get("X-Pod-Name")
        except urllib.error.HTTPError as err:
            status, pod = err.code, err.headers.get("X-Pod-Name")
        except OSError:
            status = 0  # no answer: connection refused, reset or timed out
        with self._lock:
            self.rows.append({"time": start, "status": status, "latency_ms": (time.perf_counter() - t0) * 1000,
                              "pod": pod})

    def _run(self) -> None:
        interval, begin = 1.0 / self.rps, time.time()
        with ThreadPoolExecutor(max_workers=min(32, int(self.rps) + 1)) as pool:
            n = 0
            while not self._stop.is_set() and n < self.rps * self.seconds:
                due = begin + n * interval
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._one, time.time())
                n += 1

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> pd.DataFrame:
        """Wait for the run to end; the requests as a DataFrame sorted by time."""
        self._thread.join()
        return self.frame()

    def frame(self) -> pd.DataFrame:
        """The requests answered so far (the run goes on), as ``result()`` gives them."""
        with self._lock:
            df = pd.DataFrame(self.rows, columns=["time", "status", "latency_ms", "pod"])
        df["time"] = pd.to_datetime(df["time"], unit="s")
        df["ok"] = df["status"].between(200, 399)
        return df.sort_values("time").reset_index(drop=True)
