"""Nexus alone, on a real loopback listener in a temporary lab home, offline (the stand-in upstream) unless a
test points a repository at its own tiny index. Its loop runs on a thread; tests drive real clients."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.nexus.component import Nexus

from ..components import ComponentLoop
from .upstream import TinyIndex


class Clock:
    """The proxy engine's clock, moved by tests (metadataMaxAge, negative cache)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


class RunningNexus(ComponentLoop):
    def __init__(self, home: Path) -> None:
        super().__init__(home, "nexus")
        self.ctx.settings["nexus_offline"] = True
        self.clock = Clock()
        self._start()

    def _start(self) -> None:
        self.component = self.start(Nexus(), "nexus")
        self.component.engine.clock = self.clock

    @property
    def url(self) -> str:
        return self.component.endpoint().url

    @property
    def password(self) -> str:
        return Path(self.component.endpoint().password_file).read_text().strip()

    @property
    def auth(self) -> tuple[str, str]:
        return "admin", self.password

    def index(self, repository: str = "pypi-group") -> str:
        return f"{self.url}/repository/{repository}/simple/"

    def session(self, auth: bool = False) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        if auth:
            s.auth = self.auth
        return s

    def stand_in_requests(self) -> dict[str, int]:
        return dict(self.component.stand_in.requests)

    def add_proxy(self, name: str, index: TinyIndex, **attributes: Any) -> None:
        """A pypi proxy repository on ``index``, created through the REST API."""
        body = {"name": name, "online": True,
                "storage": {"blobStoreName": "default", "strictContentTypeValidation": True},
                "proxy": {"remoteUrl": index.url, "contentMaxAge": 1440, "metadataMaxAge": 1440},
                "negativeCache": {"enabled": True, "timeToLive": 1440},
                "httpClient": {"blocked": False, "autoBlock": True}}
        for section, values in attributes.items():
            body[section].update(values)
        r = self.session(auth=True).post(f"{self.url}/service/rest/v1/repositories/pypi/proxy", json=body)
        assert r.status_code == 201, r.text

    def restart(self) -> None:
        self.run(self.component.stop())
        self._start()

    def stop_components(self) -> None:
        self.run(self.component.stop())


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real pip of this interpreter, ignoring the machine's pip configuration and caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "NO_PROXY": "*"}
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--no-cache-dir", "--disable-pip-version-check",
                           "--timeout", "20", "--retries", "0"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def nexus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNexus]:
    with RunningNexus(tmp_path_factory.mktemp("nexus") / "home") as running:
        yield running


@pytest.fixture
def fresh_nexus(tmp_path: Path) -> Iterator[RunningNexus]:
    with RunningNexus(tmp_path / "home") as running:
        yield running


@pytest.fixture
def tiny_index(tmp_path: Path) -> Iterator[TinyIndex]:
    folder = tmp_path / "wheels"
    folder.mkdir()
    index = TinyIndex(folder).start()
    try:
        yield index
    finally:
        index.stop()
