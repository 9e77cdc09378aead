"""A node collector run as its own process (``python -m labkit.logging.fluentbit``), as the tests start it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A collector process over ``node_dir``, with its monitoring API."""

    def __init__(self, config: Path, node_dir: Path, env: dict[str, str], node: str = "agent-1",
                 kubeconfig: str = "") -> None:
        self.config, self.node_dir, self.env, self.node, self.kubeconfig = config, node_dir, env, node, kubeconfig
        self.port = int(env["PORT"])
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Running:
        self.proc = subprocess.Popen([sys.executable, "-m", "labkit.logging.fluentbit", "-c", str(self.config),
                                      "--node", self.node, "--node-dir", str(self.node_dir),
                                      "--listen", f"127.0.0.1:{self.port}",
                                      *(["--kubeconfig", self.kubeconfig] if self.kubeconfig else [])],
                                     env={**os.environ, **self.env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "started" in line, line + self.proc.stdout.read()
        return self

    def stop(self) -> str:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.get("/api/v1/metrics")[1])
