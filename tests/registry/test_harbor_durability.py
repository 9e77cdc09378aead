"""Harbor's state in a real lab: the audit log, artifacts and robot accounts survive a SIGKILL of the lab daemon
(each entry is committed before the registry answers)."""

from __future__ import annotations

import os
import signal
import time

import psutil
import requests

from labkit.backends.sim.backend import daemon_pid
from labkit.core.paths import LabPaths
from labkit.images.client import RegistryClient
from labkit.lab import Lab

from ..conftest import labkit
from .images import make_image


def test_audit_log_survives_a_sigkill_of_the_daemon(lab_paths: LabPaths) -> None:
    labkit("up", home=lab_paths, timeout=900)
    lab = Lab.connect(home=lab_paths.home, start=False)
    endpoint, auth = lab.registry.endpoint, lab.registry.credentials()
    assert auth is not None and endpoint.api == f"{endpoint.url}/api/v2.0"
    api = endpoint.api
    made = requests.post(f"{api}/projects", auth=auth, timeout=10,
                         json={"project_name": "durable", "metadata": {"public": "false"}})
    assert made.status_code == 201
    robot = requests.post(f"{api}/robots", auth=auth, timeout=10, json={
        "name": "ci", "duration": -1, "level": "project", "permissions": [
            {"kind": "project", "namespace": "durable", "access": [{"resource": "repository", "action": "push"},
                                                                   {"resource": "repository", "action": "pull"}]}]})
    creds = robot.json()["name"], robot.json()["secret"]
    image = make_image("durable")
    digest = RegistryClient(endpoint.url, *creds).push_image("durable/app", "1", image.config, list(image.layers))
    RegistryClient(endpoint.url, *creds).manifest("durable/app", "1")
    query = {"q": "resource=~durable", "page_size": 100}
    before = requests.get(f"{api}/auditlog-exts", auth=auth, params=query, timeout=10).json()
    assert [(e["username"], e["operation"], e["resource"]) for e in before] == [
        (creds[0], "pull", "durable/app:1"), (creds[0], "create", "durable/app:1"),
        ("admin", "create", "robot$durable+ci"), ("admin", "create", "durable")]
    artifact = requests.get(f"{api}/projects/durable/repositories/app/artifacts/1", auth=auth, timeout=10).json()

    pid = daemon_pid(lab_paths)
    assert pid is not None and pid > 0
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the daemon outlived SIGKILL"
        time.sleep(0.05)

    labkit("up", home=lab_paths, timeout=900)
    lab = Lab.connect(home=lab_paths.home, start=False)
    api = lab.registry.endpoint.api
    after = requests.get(f"{api}/auditlog-exts", auth=auth, params=query, timeout=10).json()
    assert after == before
    legacy = requests.get(f"{api}/audit-logs", auth=auth, params=query, timeout=10).json()
    assert [e["id"] for e in legacy] == [e["id"] for e in before]
    again = requests.get(f"{api}/projects/durable/repositories/app/artifacts/1", auth=auth, timeout=10).json()
    assert again["digest"] == digest == artifact["digest"]
    assert (again["push_time"], again["pull_time"]) == (artifact["push_time"], artifact["pull_time"])
    assert RegistryClient(lab.registry.endpoint.url, *creds).manifest("durable/app", "1")[2] == digest
    assert requests.get(f"{api}/projects/durable", timeout=10).status_code == 401  # still private
