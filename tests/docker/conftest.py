"""The Docker Engine component with the lab registry beside it, in one temporary lab home, served on the
registry tests' background asyncio loop as the lab daemon serves them; tests drive it with the real ``docker``
SDK."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from labkit.docker.component import DockerEngine

from ..registry.conftest import RunningRegistry


class RunningDocker:
    """A started registry (``RunningRegistry``: its loop thread and lab home) and a Docker Engine beside it."""

    def __init__(self, home: Path) -> None:
        self.registry = RunningRegistry(home)
        self.ctx = self.registry.ctx
        self.ctx.endpoints["registry"] = self.registry.component.endpoint()
        self.start_engine()

    def start_engine(self) -> None:
        self.engine = self.registry.start(DockerEngine(), "docker", "Docker Engine")

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.registry.run(coro)

    @property
    def url(self) -> str:
        return self.engine.endpoint().url

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=60)

    @property
    def registry_host(self) -> str:
        """``host:port`` of the lab registry, as image names spell it."""
        return self.registry.host

    @property
    def auth(self) -> dict[str, str]:
        user, password = self.registry.auth
        return {"username": user, "password": password}

    def restart_engine(self) -> None:
        self.run(self.engine.stop())
        self.start_engine()

    def __enter__(self) -> RunningDocker:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.engine.stop())
        finally:
            self.registry.close()


@pytest.fixture(scope="module")
def lab_docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDocker]:
    with RunningDocker(tmp_path_factory.mktemp("docker") / "home") as running:
        yield running


@pytest.fixture
def client(lab_docker: RunningDocker) -> Iterator[docker.DockerClient]:
    c = lab_docker.client()
    try:
        yield c
    finally:
        c.close()
