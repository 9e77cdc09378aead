"""Fixtures for the kind backend tests: rendered lab files, stand-in CLIs, the README's commands."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.backends import kind
from labkit.core.paths import LabPaths

from . import standin

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = Path(__file__).parent / "schemas"


@dataclass
class StandIns:
    """Stand-in kind/docker/helm/kubectl first on PATH; ``calls()`` returns what they were asked."""

    bin: Path
    log: Path
    env: dict[str, str]

    def calls(self) -> list[list[str]]:
        return standin.calls(self.log)


@pytest.fixture
def standins(tmp_path: Path, kind_home: LabPaths, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIns]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    standin.install(bin_dir)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", kind.KUBECTL_ENV: str(bin_dir / "kubectl"),
           "STANDIN_LOG": str(log)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield StandIns(bin_dir, log, {**os.environ, **env})


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
                if argv and argv[0] in standin.TOOLS:
                    commands.append(argv)
    return commands


def normalized(calls: list[list[str]], root: Path = REPO) -> list[list[str]]:
    """Recorded calls as the README writes them: tool names bare, repository paths relative."""
    prefix = f"{root}/"
    return [[Path(argv[0]).name, *(a.removeprefix(prefix) for a in argv[1:])] for argv in calls]
