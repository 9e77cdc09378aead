"""The real Prometheus 2.42 (Debian's, installed by scripts/test.sh) as a test peer: started on a loopback port with
a given prometheus.yml and a data folder of its own, stopped by the caller; and the small waits the tests share."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the real Prometheus is not installed (scripts/test.sh installs Debian's prometheus)")
    (folder / "prometheus.yml").write_text(config)
    port = free_port()
    with (folder / "log").open("w") as log:
        proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/-/ready", timeout=5).ok, 60, "the real Prometheus")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
