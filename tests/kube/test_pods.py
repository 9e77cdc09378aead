"""Pods as the kubelet runs them: init containers, sidecars, lifecycle hooks and grace periods, startup probes,
volumes (updated in place), the downward API, and service accounts — driven with the real kubectl."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

IMAGE = "localhost:5001/test/web:1"


def apply(lab: Lab, ns: str, *objs: dict[str, Any]) -> None:
    k(lab, "-n", ns, "apply", "-f", "-", input=yaml.safe_dump_all(objs))


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 5, **spec}}


def py(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A container of the test image running a Python script."""
    return {"name": name, "image": IMAGE, "command": ["python", "-c", script], **extra}


def get(lab: Lab, ns: str, name: str) -> dict[str, Any]:
    return json.loads(k(lab, "-n", ns, "get", "pod", name, "-o", "json"))


def status_column(lab: Lab, ns: str, name: str) -> tuple[str, str]:
    """READY and STATUS as ``kubectl get pod`` prints them."""
    line = k(lab, "-n", ns, "get", "pod", name, "--no-headers").split()
    return line[1], line[2]


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def condition(p: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in p["status"]["conditions"] if c["type"] == kind)


def exec_out(lab: Lab, ns: str, name: str, *argv: str, container: str | None = None) -> str:
    extra = ["-c", container] if container else []
    return k(lab, "-n", ns, "exec", name, *extra, "--", *argv)


# -- init containers ----------------------------------------------------------------------------------------
def test_init_containers_run_in_order_before_the_app(runtime_lab: Lab, ns: str) -> None:
    shared = [{"name": "work", "mountPath": "/work"}]
    apply(runtime_lab, ns, pod("ordered", [py("app", "import time; print(open('/work/log').read(), flush=True); "
                                                   "time.sleep(600)", volumeMounts=shared)],
                               initContainers=[
                                   py("first", "import time; print('first ran', flush=True); time.sleep(3); "
                                               "open('/work/log', 'a').write('first;')", volumeMounts=shared),
                                   py("second", "open('/work/log', 'a').write('second;')", volumeMounts=shared)],
                               volumes=[{"name": "work", "emptyDir": {}}]))
    seen = until("Init:0/2", lambda: status_column(runtime_lab, ns, "ordered")[1] == "Init:0/2" or None)
    assert seen
    p = get(runtime_lab, ns, "ordered")
    assert p["status"]["phase"] == "Pending"
    init = condition(p, "Initialized")
    assert init["status"] == "False" and init["reason"] == "ContainersNotInitialized"
    assert init["message"] == "containers with incomplete status: [first second]"
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    until("Running", lambda: status_column(runtime_lab, ns, "ordered") == ("1/1", "Running"))
    p = get(runtime_lab, ns, "ordered")
    assert condition(p, "Initialized")["status"] == "True"
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2
    assert until("app log", lambda: "first;second;" in k(runtime_lab, "-n", ns, "logs", "ordered"))
    assert "first ran" in k(runtime_lab, "-n", ns, "logs", "ordered", "-c", "first")
    wrong = kubectl(runtime_lab, "-n", ns, "logs", "ordered", "-c", "nope", check=False)
    assert "container nope is not valid for pod ordered" in wrong.stderr


def test_failing_init_container_fails_the_pod_or_crash_loops(runtime_lab: Lab, ns: str) -> None:
    fail = py("setup", "import sys; print('no config', flush=True); sys.exit(2)")
    app = py("app", "import time; time.sleep(600)")
    apply(runtime_lab, ns, pod("never", [app], initContainers=[fail], restartPolicy="Never"),
          pod("always", [app], initContainers=[fail]))
    until("Init:Error", lambda: status_column(runtime_lab, ns, "never")[1] == "Init:Error")
    p = until("Failed", lambda: (q := get(runtime_lab, ns, "never"))["status"]["phase"] == "Failed" and q)
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    until("Init:CrashLoopBackOff", lambda: status_column(runtime_lab, ns, "always")[1] == "Init:CrashLoopBackOff")
    p = get(runtime_lab, ns, "always")
    assert p["status"]["phase"] == "Pending" and p["status"]["initContainerStatuses"][0]["restartCount"] >= 1
    assert "no config" in k(runtime_lab, "-n", ns, "logs", "always", "-c", "setup")


# -- sidecars -----------------------------------------------------------------------------------------------
SIDECAR = {"name": "proxy", "image": IMAGE, "restartPolicy": "Always", "env": [{"name": "PORT", "value": "9090"}],
           "startupProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1}}


def test_sidecar_starts_first_and_runs_beside_the_app(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, pod("with-sidecar", [{"name": "web", "image": IMAGE}], initContainers=[SIDECAR]))
    until("2/2 Running", lambda: status_column(runtime_lab, ns, "with-sidecar") == ("2/2", "Running"))
    p = get(runtime_lab, ns, "with-sidecar")
    side, app = p["status"]["initContainerStatuses"][0], p["status"]["containerStatuses"][0]
    assert side["started"] and side["ready"] and "running" in side["state"]
    assert side["state"]["running"]["startedAt"] <= app["state"]["running"]["startedAt"]
    ip = p["status"]["podIP"]
    out = exec_out(runtime_lab, ns, "with-sidecar", "python", "-c",
                   f"import urllib.request; print(urllib.request.urlopen('http://{ip}:9090/x').read().decode())")
    assert '"path": "/x"' in out
    # the sidecar exits: it is restarted, whatever the pod's restartPolicy
    os.kill(int(side["containerID"].removeprefix("labkit://")), signal.SIGKILL)
    until("sidecar restarted", lambda: get(runtime_lab, ns, "with-sidecar")["status"]["initContainerStatuses"][0]
          ["restartCount"] == 1)


def test_job_with_a_sidecar_completes(runtime_lab: Lab, ns: str) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
           "spec": {"backoffLimit": 0, "template": {"spec": {
               "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "initContainers": [SIDECAR],
               "containers": [py("main", "print('work done', flush=True)")]}}}}
    apply(runtime_lab, ns, job)
    k(runtime_lab, "-n", ns, "wait", "job/once", "--for=condition=Complete", "--timeout=60s")
    p = json.loads(k(runtime_lab, "-n", ns, "get", "pods", "-l", "job-name=once", "-o", "json"))["items"][0]
    assert p["status"]["phase"] == "Succeeded"
    side = until("sidecar stopped", lambda: "terminated" in (
        s := get(runtime_lab, ns, p["metadata"]["name"])["status"]["initContainerStatuses"][0])["state"] and s)
    assert side["name"] == "proxy"
    assert status_column(runtime_lab, ns, p["metadata"]["name"]) == ("0/2", "Completed")


# -- lifecycle ----------------------------------------------------------------------------------------------
def test_post_start_pre_stop_and_the_grace_period(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    host = tmp_path / "hooks"
    host.mkdir()
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, lambda *a: print('ignoring TERM', flush=True)); "
                "print('up', flush=True); time.sleep(600)")
    apply(runtime_lab, ns, pod("hooks", [py("app", stubborn, volumeMounts=[{"name": "out", "mountPath": "/out"}],
                                            lifecycle={
        "postStart": {"exec": {"command": ["python", "-c", "open('/out/post-start', 'w').write('ran')"]}},
        "preStop": {"exec": {"command": ["python", "-c", "open('/out/pre-stop', 'w').write('ran')"]}}})],
                               volumes=[{"name": "out", "hostPath": {"path": str(host), "type": "Directory"}}],
                               terminationGracePeriodSeconds=4))
    until("Running", lambda: status_column(runtime_lab, ns, "hooks") == ("1/1", "Running"))
    assert (host / "post-start").read_text() == "ran"
    began = time.monotonic()
    k(runtime_lab, "-n", ns, "delete", "pod", "hooks", "--wait=true", "--timeout=60s")
    took = time.monotonic() - began
    assert (host / "pre-stop").read_text() == "ran"
    assert 3.5 <= took < 15, took  # SIGTERM ignored: SIGKILL when the 4 s grace period ran out


def test_failed_post_start_hook_and_startup_probe_restart_the_container(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns,
          pod("bad-hook", [{"name": "web", "image": IMAGE, "lifecycle": {
              "postStart": {"httpGet": {"path": "/", "port": 1}}}}]),
          pod("slow-start", [{"name": "web", "image": IMAGE, "startupProbe": {
              "httpGet": {"path": "/", "port": 9999}, "periodSeconds": 1, "failureThreshold": 2},
              "livenessProbe": {"httpGet": {"path": "/", "port": 9999}, "periodSeconds": 1}}]))
    until("FailedPostStartHook", lambda: "FailedPostStartHook" in k(runtime_lab, "-n", ns, "get", "events"))
    until("restart", lambda: get(runtime_lab, ns, "bad-hook")["status"]["containerStatuses"][0]["restartCount"] >= 1)
    events = k(runtime_lab, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=slow-start")
    p = until("startup probe restart", lambda: (
        q := get(runtime_lab, ns, "slow-start"))["status"]["containerStatuses"][0]["restartCount"] >= 1 and q)
    events = k(runtime_lab, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=slow-start")
    assert "Startup probe failed" in events and "failed startup probe, will be restarted" in events
    assert "Liveness probe failed" not in events  # liveness waits for the startup probe
    assert p["status"]["containerStatuses"][0]["started"] is False
