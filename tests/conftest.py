"""Fixtures: labs in temporary homes, always stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import control
from labkit.backends.kind.backend import render
from labkit.backends.kind.lab import PROFILE_ENV, KindLab, load
from labkit.core.checkout import Checkout
from labkit.core.paths import LabPaths
from labkit.lab import Lab

from .kube.oci import push_image

BIN = Path(sys.executable).parent
WHEELHOUSE = Path(__file__).resolve().parents[1] / ".wheelhouse"
# Image builds (`pip install` in the shop's Dockerfiles) install from the wheelhouse scripts/venv.sh fills:
# the tests need no network beyond loopback.
if WHEELHOUSE.is_dir():
    os.environ["PIP_NO_INDEX"] = "1"
    os.environ["PIP_FIND_LINKS"] = str(WHEELHOUSE)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With pytest-xdist (scripts/test.sh runs two workers): a file's tests stay on one worker, in order (its module
    fixtures, a notebook's cells), and so do all of ``tests/backends/kind``: the contract harness publishes the kind
    nodes' fixed host ports (6443, the NodePorts), so two harnesses cannot run at once."""
    from xdist.scheduler import LoadScopeScheduling

    class FileOrKindHarness(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/backends/kind" if path.startswith("tests/backends/kind/") else path

    return FileOrKindHarness(config, log)


@pytest.fixture
def lab_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabPaths]:
    """A fresh, empty lab home selected through LABKIT_HOME; its lab is stopped afterwards."""
    paths = LabPaths.resolve(tmp_path / "home")
    monkeypatch.setenv("LABKIT_HOME", str(paths.home))
    yield paths
    control.down(paths)


@pytest.fixture
def lab(lab_paths: LabPaths) -> Lab:
    """A running sim lab in a fresh home."""
    return Lab.connect(home=lab_paths.home)


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One sim lab for the tests that only read or create uniquely named things."""
    paths = LabPaths.resolve(tmp_path_factory.mktemp("shared") / "home")
    yield Lab.connect(home=paths.home)
    control.down(paths)


@pytest.fixture
def kind_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabPaths:
    """An empty lab home selected through LABKIT_HOME, with the default (minimal) profile."""
    paths = LabPaths.resolve(tmp_path / "home")
    monkeypatch.setenv("LABKIT_HOME", str(paths.home))
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.delenv("LABKIT_REPO", raising=False)
    return paths


@pytest.fixture
def rendered(kind_home: LabPaths) -> KindLab:
    """The kind lab files of a fresh home, written to ``$LABKIT_HOME/kind``."""
    checkout = Checkout.find()
    lab = load(kind_home, checkout)
    render(lab)
    return lab


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: localhost:5001/test/web:1
        ports: [{containerPort: 8080}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def runtime_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab whose registry holds the test image ``localhost:5001/test/web`` (tags 1 and 2)."""
    paths = LabPaths.resolve(tmp_path_factory.mktemp("runtime") / "home")
    lab = Lab.connect(home=paths.home)
    url, auth = lab.registry.endpoint.url, lab.registry.credentials()
    push_image(url, "test/web", "1", version="1", auth=auth)
    push_image(url, "test/web", "2", version="2", auth=auth)
    try:
        yield lab
    finally:
        control.down(paths)


def labkit(*args: str, home: LabPaths | None = None, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``labkit`` command as a user would."""
    env = None
    if home is not None:
        import os

        env = {**os.environ, "LABKIT_HOME": str(home.home)}
    res = subprocess.run([str(BIN / "labkit"), *args], capture_output=True, text=True, env=env,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"labkit {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def kubectl(lab: Lab, *args: str, check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the lab's kubectl (from PyPI, in this venv) against ``lab``."""
    res = subprocess.run([str(BIN / "kubectl"), *args], capture_output=True, text=True,
                         env=lab.env(), timeout=timeout, input=input)
    if check and res.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res
