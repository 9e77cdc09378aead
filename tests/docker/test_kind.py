"""The kind side of the docker product: which Docker it talks to, and its health through ``/_ping``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from labkit.docker.kind import DEFAULT_HOST, docker_host, ping

from .conftest import RunningDocker


def _context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))


def test_docker_host_follows_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_host() == DEFAULT_HOST
    _context(tmp_path, "desktop-linux", "unix:///Users/me/.docker/run/docker.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    assert docker_host() == "unix:///Users/me/.docker/run/docker.sock"
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert docker_host() == DEFAULT_HOST
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert docker_host() == "tcp://127.0.0.1:2375"


def test_ping_over_the_socket(lab_docker: RunningDocker, tmp_path: Path) -> None:
    assert ping(lab_docker.url) == (True, "API 1.45")
    ok, detail = ping(f"unix://{tmp_path}/none.sock")
    assert not ok and "none.sock" in detail
