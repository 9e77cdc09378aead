"""The lab's lifecycle: up, up again, down, reset, crash and restart, labs side by side."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
from kubernetes import client, config

from labkit import control
from labkit.backends.sim.backend import daemon_pid
from labkit.core.network import is_loopback
from labkit.core.paths import LabPaths
from labkit.lab import Lab

from .conftest import kubectl, labkit
from .kube.oci import push_image


def core_api(lab: Lab) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))


def lab_processes(paths: LabPaths) -> list[psutil.Process]:
    """The daemon and every process it started (by pid file and by parentage)."""
    pid = daemon_pid(paths)
    if pid is None or pid < 0:
        return []
    daemon = psutil.Process(pid)
    return [daemon, *daemon.children(recursive=True)]


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        time.sleep(0.05)
    return alive


def test_up_is_idempotent_and_down_stops_everything(lab_paths: LabPaths) -> None:
    first = control.up(lab_paths)
    second = control.up(lab_paths)
    assert first.backend_data["pid"] == second.backend_data["pid"]
    assert "kubernetes" in first.products
    status = json.loads(labkit("status", "--json", home=lab_paths).stdout)
    assert status["running"] and status["healthy"]
    pids = [p.pid for p in lab_processes(lab_paths)]
    assert control.down(lab_paths)
    assert wait_gone(pids) == []
    assert not lab_paths.endpoints.exists()
    res = labkit("status", home=lab_paths, check=False)
    assert res.returncode == 1 and "down" in res.stderr
    assert not control.down(lab_paths)  # a second down is harmless


def test_sigkill_then_up_keeps_state_and_leaves_no_orphans(lab_paths: LabPaths) -> None:
    control.up(lab_paths, jupyter=True)
    lab = Lab.connect(home=lab_paths.home)
    api = core_api(lab)
    cm = api.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="survivor"), data={"k": "v"}))
    rv = int(cm.metadata.resource_version)
    push_image(lab.registry.endpoint.url, "test/web", "1", auth=lab.registry.credentials())
    kubectl(lab, "create", "deployment", "web", "--image=localhost:5001/test/web:1", "--replicas=2")
    kubectl(lab, "rollout", "status", "deploy/web", "--timeout=60s")
    procs = lab_processes(lab_paths)
    names = " ".join(" ".join(p.cmdline()) for p in procs)
    assert "jupyterlab" in names and "haproxy" in names and names.count("server.py") == 2
    os.kill(procs[0].pid, signal.SIGKILL)
    assert wait_gone([p.pid for p in procs]) == [], "children outlived the killed daemon"

    control.up(lab_paths)
    lab = Lab.connect(home=lab_paths.home)
    api = core_api(lab)
    again = api.read_namespaced_config_map("survivor", "default")
    assert again.data == {"k": "v"} and again.metadata.uid == cm.metadata.uid
    newer = api.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="after-restart")))
    assert int(newer.metadata.resource_version) > rv
    assert lab.status().loc["jupyterlab", "healthy"]
    deadline = time.monotonic() + 30  # the kubelets start the pods' processes again
    while time.monotonic() < deadline:
        if " ".join(" ".join(p.cmdline()) for p in lab_processes(lab_paths)).count("server.py") == 2:
            break
        time.sleep(0.2)
    assert " ".join(" ".join(p.cmdline()) for p in lab_processes(lab_paths)).count("server.py") == 2


def test_two_labs_side_by_side(tmp_path, monkeypatch) -> None:
    a, b = LabPaths.resolve(tmp_path / "a"), LabPaths.resolve(tmp_path / "b")
    try:
        ea, eb = control.up(a), control.up(b)
        assert ea.backend_data["pid"] != eb.backend_data["pid"]
        assert ea.url("kubernetes") != eb.url("kubernetes")
        core_api(Lab.connect(home=a.home)).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="only-in-a")))
        names_b = [n.metadata.name for n in core_api(Lab.connect(home=b.home)).list_namespace().items]
        assert "only-in-a" not in names_b
        control.down(a)
        assert Lab.connect(home=b.home, start=False).status()["healthy"].all()
    finally:
        control.down(a)
        control.down(b)


def test_reset_forgets_state_but_keeps_progress(lab: Lab) -> None:
    core_api(lab).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="scratch")))
    lab.check("made a namespace", True)
    labkit("reset", home=lab.paths)
    lab = Lab.connect(home=lab.paths.home)
    names = [n.metadata.name for n in core_api(lab).list_namespace().items]
    assert "scratch" not in names and "default" in names
    assert "made a namespace" in set(lab.progress()["name"])


def test_everything_listens_on_loopback_only(lab_paths: LabPaths) -> None:
    control.up(lab_paths, jupyter=True)
    pids = {p.pid for p in lab_processes(lab_paths)}
    listening = [c for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert len(listening) >= 5  # control, 3 API servers, JupyterLab
    wide = [f"{c.laddr.ip}:{c.laddr.port}" for c in listening if not is_loopback(c.laddr.ip)]
    assert wide == []


def test_a_second_daemon_for_the_same_home_refuses(lab_paths: LabPaths) -> None:
    import subprocess
    import sys

    control.up(lab_paths)
    res = subprocess.run([sys.executable, "-m", "labkit.backends.sim", "--home", str(lab_paths.home)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3 and "already runs" in res.stderr


@pytest.mark.parametrize("bad", ["nonsense"])
def test_unknown_backend_is_a_clear_error(lab_paths: LabPaths, bad: str) -> None:
    res = labkit("up", "--backend", bad, home=lab_paths, check=False)
    assert res.returncode != 0 and "unknown backend" in (res.stderr + res.stdout)
