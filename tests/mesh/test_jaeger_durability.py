"""Jaeger run alone (``python -m labkit.mesh.jaeger``): acknowledged spans survive a SIGKILL, and the retention
drops spans older than it when the store opens."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

RETENTION_S = 3600


class Standalone:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, Any]:
        self.proc = subprocess.Popen([sys.executable, "-m", "labkit.mesh.jaeger", "--home", str(self.home),
                                      "--retention", str(RETENTION_S)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"jaeger exited with {self.proc.wait()}"
        return json.loads(line)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    runner = Standalone(tmp_path / "home")
    yield runner
    runner.stop()


def _span(trace_id: str, start_ns: int) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": "durable"}}]},
                               "scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": "00000000000000a1",
                                                          "name": "op", "startTimeUnixNano": str(start_ns),
                                                          "endTimeUnixNano": str(start_ns + 1000)}]}]}]}


def test_spans_survive_sigkill_and_the_retention_drops_old_ones(standalone: Standalone) -> None:
    ep = standalone.start()
    fresh, old = "1" * 32, "2" * 32
    now = time.time_ns()
    for trace_id, start in ((fresh, now), (old, now - (RETENTION_S + 600) * 10**9)):
        assert requests.post(f"{ep['otlp']}/v1/traces", json=_span(trace_id, start), timeout=10).status_code == 200
    assert requests.get(f"{ep['url']}/api/traces/{old}", timeout=10).status_code == 200  # kept until the next pass
    standalone.kill()
    ep = standalone.start()
    assert requests.get(f"{ep['url']}/api/traces/{fresh}", timeout=10).json()["data"][0]["spans"][0]["spanID"] == \
        "00000000000000a1"
    gone = requests.get(f"{ep['url']}/api/traces/{old}", timeout=10)
    assert gone.status_code == 404 and gone.json()["errors"] == [{"code": 404, "msg": "trace not found"}]
    assert requests.get(f"{ep['url']}/api/services", timeout=10).json()["data"] == ["durable"]
