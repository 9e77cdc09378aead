"""The labkit command as a user types it."""

from __future__ import annotations

import json
import subprocess

from labkit.core.paths import LabPaths

from .conftest import BIN, labkit


def test_up_status_env_logs_down(lab_paths: LabPaths) -> None:
    res = labkit("up", home=lab_paths)
    assert "lab ready" in res.stderr and "kubernetes" in res.stderr
    status = json.loads(labkit("status", "--json", home=lab_paths).stdout)
    names = {c["name"]: c for c in status["products"]}
    assert names["kubernetes"]["healthy"] and names["kubernetes"]["url"].startswith("https://127.")

    exports = labkit("env", home=lab_paths).stdout
    script = exports + "\nkubectl version -o json\n"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    versions = json.loads(out.stdout)
    assert versions["clientVersion"]["minor"] and versions["serverVersion"]["gitVersion"].startswith("v1.")

    assert "/v1/status" in labkit("logs", "daemon", home=lab_paths).stdout
    tail = labkit("logs", "kube-apiserver", "--tail", "5", home=lab_paths).stdout.splitlines()
    log = labkit("logs", "kube-apiserver", "--tail", "100000", home=lab_paths).stdout.splitlines()
    start = log.index(tail[0])  # HAProxy's health checks keep logging: the tail was the end of the log then
    assert len(tail) == 5 and log[start:start + 5] == tail
    assert any("/version" in line for line in log)
    missing = labkit("logs", "no-such-thing", home=lab_paths, check=False)
    assert missing.returncode == 1 and "logs exist for" in missing.stdout + missing.stderr
    assert "lab stopped" in labkit("down", home=lab_paths).stderr


def test_doctor_reports_each_check(lab_paths: LabPaths) -> None:
    res = labkit("doctor", home=lab_paths, check=False)
    for name in ("python", "haproxy binary", "kubectl", "disk", "lab ports"):
        assert name in res.stdout
    assert res.returncode == 0, res.stdout
    kind = labkit("doctor", "--backend", "kind", home=lab_paths, check=False)
    assert "docker engine" in kind.stdout and "vm.max_map_count" in kind.stdout
    assert kind.returncode == 1 and "fix:" in kind.stdout  # no Docker engine on this machine


def test_kind_backend_without_docker_says_so(lab_paths: LabPaths) -> None:
    res = labkit("up", "--backend", "kind", home=lab_paths, check=False)
    said = " ".join(res.stderr.split())  # rich wraps long lines
    assert res.returncode == 1 and "the Docker engine does not answer" in said, said
    assert "labkit doctor --backend kind" in said


def test_help_lists_every_command() -> None:
    out = subprocess.run([str(BIN / "labkit"), "--help"], capture_output=True, text=True).stdout
    for cmd in ("up", "status", "env", "down", "reset", "logs", "doctor", "progress", "notebooks"):
        assert cmd in out
