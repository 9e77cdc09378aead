"""PodDisruptionBudgets: the disruption controller's status (expected pods from the owners' scale, the rounding of
percentages) and the eviction API enforcing it (429 with the budget's words, 500 for two budgets, the unhealthy
pod eviction policy), proved with the kubernetes client and a real ``kubectl drain`` that waits for the budget."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from labkit.core.errors import ApiError
from labkit.kube.apiserver.api import KubeApi
from labkit.kube.apiserver.objects import WriteOptions
from labkit.kube.apiserver.store import Store
from labkit.kube.controllers.disruption import check_eviction
from labkit.lab import Lab

from ..conftest import BIN, kubectl
from .conftest import k

WEB = """
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
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1, initialDelaySeconds: 3}
"""
DENIED = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture
def client(runtime_lab: Lab) -> kubernetes.client.ApiClient:
    return runtime_lab.kubernetes.api_client()


def wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.3)


def pdb_status(lab: Lab, ns: str, name: str) -> dict[str, Any]:
    return json.loads(k(lab, "-n", ns, "get", "pdb", name, "-o", "json")).get("status") or {}


def evict(client: kubernetes.client.ApiClient, ns: str, pod: str) -> None:
    kubernetes.client.CoreV1Api(client).create_namespaced_pod_eviction(pod, ns, kubernetes.client.V1Eviction(
        metadata=kubernetes.client.V1ObjectMeta(name=pod, namespace=ns)))


def refused(client: kubernetes.client.ApiClient, ns: str, pod: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as err:
        evict(client, ns, pod)
    return err.value.status, json.loads(err.value.body)


def web_pods(lab: Lab, ns: str) -> list[dict[str, Any]]:
    return json.loads(k(lab, "-n", ns, "get", "pods", "-l", "app=web", "-o", "json"))["items"]


def test_budget_status_and_evictions(runtime_lab: Lab, ns: str, client: kubernetes.client.ApiClient) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=WEB)
    k(lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    out = k(lab, "-n", ns, "create", "pdb", "web", "--selector=app=web", "--min-available=2")
    assert out.strip() == "poddisruptionbudget.policy/web created"
    wait("the budget's status", lambda: pdb_status(lab, ns, "web").get("disruptionsAllowed") == 1, 20)
    status = pdb_status(lab, ns, "web")
    [cond] = status.pop("conditions")
    assert status == {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                      "expectedPods": 3}
    assert (cond["type"], cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "DisruptionAllowed", "True", "SufficientPods", 1)
    header, row = k(lab, "-n", ns, "get", "pdb").splitlines()
    assert header.split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert row.split()[:4] == ["web", "2", "N/A", "1"]
    described = k(lab, "-n", ns, "describe", "pdb", "web")
    assert re.search(r"Min available:\s+2", described) and re.search(r"Allowed disruptions:\s+1", described), described
    # one eviction takes the one disruption allowed; the next is refused with the budget's numbers
    first, second = (p["metadata"]["name"] for p in web_pods(lab, ns)[:2])
    evict(client, ns, first)
    assert pdb_status(lab, ns, "web")["disruptionsAllowed"] == 0
    code, body = refused(client, ns, second)
    assert code == 429 and body["details"]["causes"][0]["message"] in (
        "The disruption budget web does not allow evicting pods currently",  # before the controller recounts
        "The disruption budget web needs 2 healthy pods and has 2 currently")
    wait("the recount", lambda: pdb_status(lab, ns, "web").get("currentHealthy") == 2, 10)
    code, body = refused(client, ns, second)
    assert code == 429 and (body["reason"], body["message"]) == ("TooManyRequests", DENIED)
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web needs 2 healthy pods and has 2 "
                                                     "currently"}]
    # once the evicted pod's replacement is ready, the budget allows one again
    wait("the replacement", lambda: pdb_status(lab, ns, "web").get("disruptionsAllowed") == 1, 40)
    evict(client, ns, second)
    # a second budget over the same pods: the eviction API refuses to choose
    policy = kubernetes.client.PolicyV1Api(client)
    policy.create_namespaced_pod_disruption_budget(ns, {
        "metadata": {"name": "pct"}, "spec": {"maxUnavailable": "34%", "selector": {"matchLabels": {"app": "web"}}}})
    wait("the percent budget", lambda: pdb_status(lab, ns, "pct").get("expectedPods") == 3, 20)
    assert pdb_status(lab, ns, "pct")["desiredHealthy"] == 1  # 34% of 3 rounds up to 2 unavailable
    pod = wait("a ready pod", lambda: next((p["metadata"]["name"] for p in web_pods(lab, ns)
                                            if not p["metadata"].get("deletionTimestamp")), None), 10)
    code, body = refused(client, ns, pod)
    assert code == 500 and body["reason"] == "InternalError"
    assert body["message"] == ("Internal error occurred: This pod has more than one PodDisruptionBudget, which the "
                               "eviction subresource does not support.")


def test_an_eviction_takes_a_disruption_and_notes_the_pod(tmp_path: Path) -> None:
    """The eviction check on the real object store (no controller to recount in between): it decrements
    disruptionsAllowed, records the pod in disruptedPods and turns the condition False at zero; at zero it refuses."""
    store = Store(tmp_path / "objects.sqlite")
    try:
        objects = KubeApi(store).objects
        pdb_rt = objects.registry.find("policy", "v1", "poddisruptionbudgets")
        pod_rt = objects.registry.find("", "v1", "pods")
        pdb, _ = objects.create(pdb_rt, "default", {"metadata": {"name": "web"}, "spec": {
            "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}, WriteOptions())
        status = {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
                  "expectedPods": 2, "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                                     "reason": "SufficientPods", "message": "",
                                                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        objects.update(pdb_rt, "default", "web", {**pdb, "status": status}, WriteOptions(), "status")
        pods = []
        for name in ("a", "b"):
            pod, _ = objects.create(pod_rt, "default", {"metadata": {"name": name, "labels": {"app": "web"}},
                                                        "spec": {"containers": [{"name": "c", "image": "x"}]}},
                                    WriteOptions())
            running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            pod, _ = objects.update(pod_rt, "default", name, {**pod, "status": running}, WriteOptions(), "status")
            pods.append(pod)
        check_eviction(objects, pods[0], dry_run=True)  # a dry run changes nothing
        assert store.get("policy/poddisruptionbudgets", "default", "web")["status"]["disruptionsAllowed"] == 1
        check_eviction(objects, pods[0], dry_run=False)
        after = store.get("policy/poddisruptionbudgets", "default", "web")["status"]
        assert after["disruptionsAllowed"] == 0 and list(after["disruptedPods"]) == ["a"]
        assert (after["conditions"][0]["status"], after["conditions"][0]["reason"]) == ("False", "InsufficientPods")
        with pytest.raises(ApiError) as err:
            check_eviction(objects, pods[1], dry_run=False)
        assert (err.value.status, err.value.message) == (429, DENIED)
        assert err.value.details["causes"][0]["message"] == (
            "The disruption budget web does not allow evicting pods currently")  # 2 healthy, 1 needed: not recounted
    finally:
        store.close()


def test_expected_pods_come_from_the_owners_scale(runtime_lab: Lab, ns: str,
                                                  client: kubernetes.client.ApiClient) -> None:
    """An integer minAvailable counts the selected pods; a percentage counts the owning Deployment's replicas and
    warns about a pod no controller owns. A pod that is not ready leaves unless the budget protects it."""
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=WEB)
    k(lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    k(lab, "-n", ns, "run", "stray", "--image=localhost:5001/test/web:1", "--labels=app=web")
    policy = kubernetes.client.PolicyV1Api(client)
    for name, rule in (("ints", {"minAvailable": 1}), ("half", {"minAvailable": "50%"})):
        policy.create_namespaced_pod_disruption_budget(ns, {
            "metadata": {"name": name}, "spec": {**rule, "selector": {"matchLabels": {"app": "web"}}}})
    wait("both budgets", lambda: pdb_status(lab, ns, "ints").get("expectedPods") == 4
         and pdb_status(lab, ns, "half").get("expectedPods") == 3, 30)
    assert pdb_status(lab, ns, "half")["desiredHealthy"] == 2  # 50% of 3 rounds up
    with pytest.raises(ApiException) as err:
        policy.create_namespaced_pod_disruption_budget(ns, {
            "metadata": {"name": "bad"}, "spec": {"minAvailable": "120%", "selector": {}}})
    assert json.loads(err.value.body)["message"] == ('PodDisruptionBudget.policy "bad" is invalid: spec.minAvailable: '
                                                     'Invalid value: "120%": must not be greater than 100%')
    events = k(lab, "-n", ns, "get", "events", "--field-selector=involvedObject.name=half", "-o", "json")
    [warning] = [e for e in json.loads(events)["items"] if e["reason"] == "UnmanagedPods"]
    assert warning["type"] == "Warning" and "(selector: app=web) were found to be unmanaged" in warning["message"]
    # a pod that never becomes ready, under its own budget of one
    k(lab, "-n", ns, "run", "sick", "--image=localhost:5001/test/web:1", "--labels=app=sick", "--overrides",
      json.dumps({"spec": {"containers": [{"name": "sick", "image": "localhost:5001/test/web:1",
                                           "readinessProbe": {"tcpSocket": {"port": 9}, "periodSeconds": 1}}]}}))
    policy.create_namespaced_pod_disruption_budget(ns, {
        "metadata": {"name": "sick"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "sick"}}}})
    kubectl(lab, "-n", ns, "wait", "pod/sick", "--for=jsonpath={.status.phase}=Running", "--timeout=30s")
    wait("the sick budget", lambda: pdb_status(lab, ns, "sick").get("expectedPods") == 1, 20)
    code, body = refused(client, ns, "sick")  # IfHealthyBudget: the budget is not healthy, so it is protected
    assert code == 429 and body["details"]["causes"][0]["message"] == (
        "The disruption budget sick needs 1 healthy pods and has 0 currently")
    k(lab, "-n", ns, "patch", "pdb", "sick", "--type=merge", "-p", '{"spec":{"unhealthyPodEvictionPolicy":'
                                                                   '"AlwaysAllow"}}')
    wait("the new generation", lambda: pdb_status(lab, ns, "sick").get("observedGeneration") == 2, 20)
    evict(client, ns, "sick")


def test_kubectl_drain_waits_for_the_budget(runtime_lab: Lab, ns: str) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=WEB)
    k(lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    k(lab, "-n", ns, "create", "pdb", "web", "--selector=app=web", "--min-available=3")
    wait("the budget", lambda: pdb_status(lab, ns, "web").get("expectedPods") == 3, 20)
    nodes = [p["spec"]["nodeName"] for p in web_pods(lab, ns)]
    node = max(set(nodes), key=nodes.count)
    drain = subprocess.Popen([str(BIN / "kubectl"), "drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                              "--force", "--timeout=150s"], env=lab.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        assert drain.stdout is not None
        while not any(DENIED in line for line in lines):
            line = drain.stdout.readline()
            assert line, f"kubectl drain ended without waiting for the budget:\n{''.join(lines)}"
            lines.append(line)
        assert any('error when evicting pods/"' in line and f'-n "{ns}" (will retry after 5s): {DENIED}' in line
                   for line in lines), "".join(lines)
        assert drain.poll() is None  # still waiting
        k(lab, "-n", ns, "scale", "deploy/web", "--replicas=4")  # a spare pod elsewhere lets the budget allow one
        rest, _ = drain.communicate(timeout=150)
        output = "".join(lines) + rest
        assert drain.returncode == 0, output
        assert f"node/{node} drained" in output
    finally:
        if drain.poll() is None:
            drain.kill()
            drain.wait()
        k(lab, "uncordon", node)
    pods = [p for p in web_pods(lab, ns) if not p["metadata"].get("deletionTimestamp")]
    assert pods and all(p["spec"]["nodeName"] != node for p in pods)
