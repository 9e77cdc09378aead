"""The Docker Engine component with the lab registry beside it, in one temporary lab home, served on a
background asyncio loop as the lab daemon serves them; tests drive it with the real ``docker`` SDK."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from labkit.docker.component import DockerEngine
from labkit.registry.component import Registry
from labkit.registry.standalone import standalone_context


class RunningDocker:
    """A started registry and Docker Engine, and the loop thread serving them."""

    def __init__(self, home: Path) -> None:
        self.ctx = standalone_context(home)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="docker-loop", daemon=True)
        self.thread.start()
        self.registry = Registry()
        self.registry.name = "registry"
        self.run(self.registry.start(self.ctx))
        self.ctx.endpoints["registry"] = self.registry.endpoint()
        self.start_engine()

    def start_engine(self) -> None:
        self.engine = DockerEngine()
        self.engine.name, self.engine.title = "docker", "Docker Engine"
        self.run(self.engine.start(self.ctx))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    @property
    def url(self) -> str:
        return self.engine.endpoint().url

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=60)

    @property
    def registry_host(self) -> str:
        """``host:port`` of the lab registry, as image names spell it."""
        return self.registry.endpoint().push

    @property
    def auth(self) -> dict[str, str]:
        return {"username": "admin", "password": self.ctx.secrets.get("registry-admin-password")}

    def restart_engine(self) -> None:
        self.run(self.engine.stop())
        self.start_engine()

    def close(self) -> None:
        try:
            self.run(self.engine.stop())
            self.run(self.registry.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


@pytest.fixture(scope="module")
def lab_docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDocker]:
    running = RunningDocker(tmp_path_factory.mktemp("docker") / "home")
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def client(lab_docker: RunningDocker) -> Iterator[docker.DockerClient]:
    c = lab_docker.client()
    try:
        yield c
    finally:
        c.close()
