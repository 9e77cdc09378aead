"""``labkit up --backend kind`` and ``labkit down`` on the contract harness when something goes wrong.

The happy path (every README command, the lab in use, ``down``) is ``test_end_to_end.py``; here each test has a
fresh harness and checks that a failure stops ``up`` with the failing tool's own words, that a command the real
CLI would refuse fails the run, and that ``labkit down`` cleans up after a failed ``up``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from labkit.core.files import read_json
from labkit.core.paths import LabPaths

from .conftest import REPO, labkit, normalized, readme_commands, variables
from .harness import FAIL_ENV, Harness


def test_a_missing_docker_engine_is_explained(harness: Harness, kind_home: LabPaths,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "docker info")
    res = labkit(dict(os.environ), "up", "--backend", "kind", check=False)
    assert res.returncode != 0 and "the Docker engine does not answer" in res.stderr
    assert harness.records() == [{"argv": ["docker", "info", "--format", "{{.ServerVersion}}"], "exit": 1,
                                  "seconds": pytest.approx(0, abs=5)}]
    assert not kind_home.endpoints.exists()


def test_a_failing_step_stops_up_and_down_cleans_up(harness: Harness, kind_home: LabPaths,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "docker compose")
    res = labkit(dict(os.environ), "up", "--backend", "kind", check=False)
    assert res.returncode != 0
    assert "up --detach --wait` failed (exit 1):" in res.stderr and "docker: failing as asked" in res.stderr
    assert "$ docker compose --project-name" in (kind_home.logs / "kind.log").read_text()
    # not ready, but known as a kind lab whose cluster exists: `labkit down` removes what the failed up created
    cluster = variables(dict(os.environ))["CLUSTER"]
    assert read_json(kind_home.endpoints)["backend"] == "kind" and harness.state.clusters() == [cluster]
    assert labkit(dict(os.environ), "status", check=False).returncode != 0
    monkeypatch.delenv(FAIL_ENV)
    harness.records()
    assert "lab stopped" in labkit(dict(os.environ), "down").stderr
    assert normalized(harness.calls()) == readme_commands("kind-down-commands", variables(dict(os.environ)), apps=[])
    assert harness.state.clusters() == [] and harness.state.sim_homes() == []


def _checkout(tmp_path: Path, path: str, old: str, new: str) -> Path:
    """A checkout like this one but for one edited file (the others are symlinks)."""
    root = tmp_path / "checkout"
    for entry in REPO.iterdir():
        if entry.name not in (".git", path.split("/")[0]):
            (root / entry.name).parent.mkdir(parents=True, exist_ok=True)
            (root / entry.name).symlink_to(entry)
    top = path.split("/")[0]
    shutil.copytree(REPO / top, root / top, symlinks=True)
    text = (REPO / path).read_text()
    assert old in text, f"{path} has no {old!r}"
    (root / path).write_text(text.replace(old, new, 1))
    return root


@pytest.mark.parametrize(("path", "old", "new", "failing", "message"), [
    ("compose/compose.yaml", "    healthcheck:", "    healthchek:", "docker compose",
     r"validating \S+/compose.yaml: services.haproxy additional properties 'healthchek' not allowed"),
    ("manifests/kind/cluster.yaml.j2", "    readOnly: true", "    readonly: true", "kind create",
     r"ERROR: failed to create cluster: unable to decode config: yaml: unmarshal errors:\n"
     r"  line \d+: field readonly not found in type v1alpha4.Mount\n"),
])
def test_a_command_the_real_cli_refuses_fails_up(harness: Harness, kind_home: LabPaths, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, path: str, old: str, new: str,
                                                 failing: str, message: str) -> None:
    monkeypatch.setenv("LABKIT_REPO", str(_checkout(tmp_path, path, old, new)))
    res = labkit(dict(os.environ), "up", "--backend", "kind", check=False)
    assert res.returncode != 0
    records = harness.records()
    refused = records[-1]
    assert " ".join(refused["argv"]).startswith(failing) and refused["exit"] != 0
    assert all(r["exit"] == 0 for r in records[:-1])
    assert re.search(message, (kind_home.logs / "kind.log").read_text())
