"""The real Prometheus 2.42 (Debian's, installed by scripts/test.sh) as a test peer: started on a loopback port with
a given prometheus.yml and a data folder of its own, stopped by the caller; and the small waits the tests share."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from .realprom import RealPrometheus


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def real_prometheus(folder: Path, config: str) -> Iterator[str]:
    """The real Prometheus serving ``config`` (its rule files relative to ``folder``); yields its URL."""
    if shutil.which("prometheus") is None:
        pytest.skip("the real Prometheus is not installed (scripts/test.sh installs Debian's prometheus)")
    prometheus = RealPrometheus(folder, config=config)
    try:
        yield prometheus.url
    finally:
        prometheus.close()
