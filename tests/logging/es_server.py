"""Elasticsearch alone (``python -m labkit.logging``) as a process on a free loopback port, in a temporary home:
what the Elasticsearch tests drive with ``elasticsearch-py`` and plain HTTP, and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from elasticsearch import Elasticsearch

from labkit.core.network import free_port


class ElasticsearchProcess:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "labkit.logging", "--home", str(self.home), "--listen",
                                      f"127.0.0.1:{self.port}"], stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "NO_PROXY": "*"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"python -m labkit.logging exited {self.proc.wait()}"
        info: dict[str, Any] = json.loads(line)
        self.url, self.user, self.password = info["url"], info["user"], info["password"]

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    @property
    def auth(self) -> tuple[str, str]:
        return self.user, self.password

    def client(self) -> Elasticsearch:
        return Elasticsearch(self.url, basic_auth=self.auth, request_timeout=30)

    def http(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("auth", self.auth)
        with requests.Session() as s:
            s.trust_env = False
            return s.request(method, self.url + path, timeout=30, **kw)
