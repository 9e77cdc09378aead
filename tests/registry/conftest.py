"""The registry component alone, on a real loopback listener, in a temporary lab home.

Its asyncio loop runs on a background thread, so tests call it with real clients (requests, skopeo,
oras, labkit's client) from the test thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labkit.images.client import RegistryClient
from labkit.registry.component import Registry

from ..components import ComponentLoop

# The Harbor projects the registry tests push to (Harbor refuses pushes to a project that does not exist);
# public, so their anonymous-pull checks hold.
TEST_PROJECTS = ("t", "a", "b", "c", "lab")


class RunningRegistry(ComponentLoop):
    """A started Registry component and the loop thread serving it, with the test projects."""

    def __init__(self, home: Path) -> None:
        super().__init__(home, "registry")
        self.component = self.start(Registry(), "registry")
        for name in TEST_PROJECTS:
            self.project(name, public=True)

    def project(self, name: str, public: bool = False) -> None:
        """Create a Harbor project through the API (as the admin), unless it exists."""
        if requests.head(f"{self.api}/projects", params={"project_name": name}, auth=self.auth,
                         timeout=10).status_code == 200:
            return
        resp = requests.post(f"{self.api}/projects", auth=self.auth, timeout=10, json={
            "project_name": name, "metadata": {"public": "true" if public else "false"}})
        assert resp.status_code == 201, resp.text

    @property
    def url(self) -> str:
        return self.component.endpoint().url

    @property
    def api(self) -> str:
        """Harbor's API, ``http://host:port/api/v2.0``."""
        return self.component.endpoint().api

    @property
    def host(self) -> str:
        """``host:port``, as image references spell the registry."""
        return self.url.removeprefix("http://")

    @property
    def password(self) -> str:
        return self.ctx.secrets.get("registry-admin-password")

    @property
    def auth(self) -> tuple[str, str]:
        return "admin", self.password

    @property
    def state(self) -> Path:
        return self.ctx.state_dir("registry")

    def client(self, anonymous: bool = False) -> RegistryClient:
        return RegistryClient(self.url) if anonymous else RegistryClient(self.url, *self.auth)

    def restart(self) -> None:
        """Stop the component and start a new one on the same lab home."""
        self.run(self.component.stop())
        self.component = self.start(Registry(), "registry")

    def stop_components(self) -> None:
        self.run(self.component.stop())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """One registry shared by a module's tests (they use distinct repository names)."""
    with RunningRegistry(tmp_path_factory.mktemp("registry") / "home") as running:
        yield running


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    """A registry of its own, for tests that restart it or list everything."""
    with RunningRegistry(tmp_path / "home") as running:
        yield running
