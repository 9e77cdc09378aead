"""StatefulSets with real kubectl and the kubernetes client: stable names created in order and removed in reverse,
per-pod names behind the headless Service, rolling updates from the highest ordinal (with a partition), history and
undo through ControllerRevisions, Parallel pods with their claims, OnDelete and the claims' retention policy."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from labkit.kube.apiserver.api import KubeApi
from labkit.kube.apiserver.objects import WriteOptions
from labkit.kube.apiserver.store import Store
from labkit.kube.node.proxy import Resolver
from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

DB = """
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 8080, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: web
        image: localhost:5001/test/web:1
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
"""
PAR = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: par}
spec:
  serviceName: par
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy: {type: OnDelete}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector: {matchLabels: {app: par}}
  template:
    metadata: {labels: {app: par}}
    spec:
      containers:
      - name: web
        image: localhost:5001/test/web:1
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1, initialDelaySeconds: 5}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
"""


@pytest.fixture
def core(runtime_lab: Lab) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(runtime_lab.kubernetes.api_client())


def ready(pod: Any) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def sample(core: kubernetes.client.CoreV1Api, ns: str, selector: str, until: Callable[[dict[str, Any]], bool],
           timeout: float, each: Callable[[dict[str, Any]], None] = lambda pods: None) -> dict[str, Any]:
    """Poll the pods of ``selector`` by name, calling ``each`` on every sample, until ``until`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        pods = {p.metadata.name: p for p in core.list_namespaced_pod(ns, label_selector=selector).items}
        each(pods)
        if until(pods):
            return pods
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {sorted(pods)}")
        time.sleep(0.2)


def sts(lab: Lab, ns: str, name: str) -> dict[str, Any]:
    return json.loads(k(lab, "-n", ns, "get", "sts", name, "-o", "json"))


def test_ordered_pods_with_stable_names_and_per_pod_dns(runtime_lab: Lab, ns: str,
                                                        core: kubernetes.client.CoreV1Api) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=DB)

    def in_order(pods: dict[str, Any]) -> None:  # OrderedReady: db-n appears only once db-(n-1) is Running and Ready
        for n in (1, 2):
            if f"db-{n}" in pods:
                assert ready(pods[f"db-{n - 1}"]), f"db-{n} exists while db-{n - 1} is not ready"

    pods = sample(core, ns, "app=db", lambda p: len(p) == 3 and all(ready(x) for x in p.values()), 90, in_order)
    assert sorted(pods) == ["db-0", "db-1", "db-2"]
    out = k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=30s")
    status = sts(lab, ns, "db")["status"]
    revision = status["updateRevision"]
    # the partition defaults to 0, so kubectl reports a partitioned roll out, as against a real cluster
    assert out.strip().splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated..."
    assert status["currentRevision"] == revision and re.fullmatch(r"db-[a-z0-9]+", revision)
    assert {k_: status[k_] for k_ in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                                      "availableReplicas", "observedGeneration", "collisionCount")} == {
        "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
        "observedGeneration": 1, "collisionCount": 0}
    for n in (0, 1, 2):
        pod = pods[f"db-{n}"]
        assert (pod.spec.hostname, pod.spec.subdomain) == (f"db-{n}", "db")
        assert pod.metadata.labels == {"app": "db", "statefulset.kubernetes.io/pod-name": f"db-{n}",
                                       "apps.kubernetes.io/pod-index": str(n), "controller-revision-hash": revision}
        assert pod.metadata.owner_references[0].kind == "StatefulSet"
    revisions = json.loads(k(lab, "-n", ns, "get", "controllerrevisions", "-o", "json"))["items"]
    assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [(revision, 1)]
    assert k(lab, "-n", ns, "get", "sts", "db", "--no-headers").split()[:2] == ["db", "3/3"]
    described = k(lab, "-n", ns, "describe", "sts", "db")
    assert re.search(r"Pods Status:\s+3 Running / 0 Waiting / 0 Succeeded / 0 Failed", described), described
    assert re.search(r"Normal\s+SuccessfulCreate\s+.*statefulset-controller\s+create Pod db-2 in StatefulSet db "
                     "successful", described), described
    # a pod reaches each pod by its own name behind the headless Service, in every form; the Service's name
    # reaches a ready pod
    script = ("import json, urllib.request\n"
              f"for host in ['db-1.db', 'db-2.db.{ns}', 'db-1.db.{ns}.svc', 'db-2.db.{ns}.svc.cluster.local', 'db']:\n"
              "    print(host, json.load(urllib.request.urlopen(f'http://{host}:8080/', timeout=10))['pod'])\n")
    answers = dict(line.split() for line in k(lab, "-n", ns, "exec", "db-0", "--", "python", "-c", script)
                   .splitlines())
    assert answers == {"db-1.db": "db-1", f"db-2.db.{ns}": "db-2", f"db-1.db.{ns}.svc": "db-1",
                       f"db-2.db.{ns}.svc.cluster.local": "db-2", "db": answers["db"]}
    assert answers["db"] in ("db-0", "db-1", "db-2")
    res = kubectl(lab, "-n", ns, "exec", "db-0", "--", "python", "-c",
                  "import urllib.request\nurllib.request.urlopen('http://db-7.db:8080/', timeout=10)", check=False)
    assert res.returncode != 0 and "502" in res.stderr  # no such pod record
    # scale down: the highest ordinal goes first, the next only once it is gone
    assert k(lab, "-n", ns, "scale", "sts", "db", "--replicas=1").strip() == "statefulset.apps/db scaled"

    def in_reverse(pods: dict[str, Any]) -> None:
        if "db-2" in pods:
            assert "db-1" in pods and pods["db-1"].metadata.deletion_timestamp is None, "db-1 went before db-2"

    sample(core, ns, "app=db", lambda p: sorted(p) == ["db-0"], 90, in_reverse)


def test_rolling_update_partition_history_and_undo(runtime_lab: Lab, ns: str,
                                                   core: kubernetes.client.CoreV1Api) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=DB)
    k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=90s")
    first = sts(lab, ns, "db")["status"]["updateRevision"]
    # a partition of 2: only db-2 moves to the new template
    k(lab, "-n", ns, "patch", "sts", "db", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    k(lab, "-n", ns, "set", "image", "sts/db", "web=localhost:5001/test/web:2")
    out = k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=60s")
    assert out.strip().splitlines()[-1] == "partitioned roll out complete: 1 new pods have been updated..."
    second = sts(lab, ns, "db")["status"]["updateRevision"]
    assert second != first
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(ns, label_selector="app=db").items}
    assert {n: p.metadata.labels["controller-revision-hash"] for n, p in pods.items()} == {
        "db-0": first, "db-1": first, "db-2": second}
    assert pods["db-2"].spec.containers[0].image == "localhost:5001/test/web:2"
    # the partition lifted: the rest roll from the highest ordinal down, one at a time
    order: list[str] = []

    def updated(pods: dict[str, Any]) -> None:
        for name, p in sorted(pods.items(), reverse=True):
            if p.metadata.labels.get("controller-revision-hash") == second and name not in order:
                order.append(name)

    k(lab, "-n", ns, "patch", "sts", "db", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    sample(core, ns, "app=db", lambda p: len(order) == 3 and all(ready(x) for x in p.values()), 120, updated)
    assert order == ["db-2", "db-1", "db-0"]
    out = k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=30s")
    assert out.strip().splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated..."
    status = sts(lab, ns, "db")["status"]
    assert (status["currentRevision"], status["updateRevision"], status["updatedReplicas"]) == (second, second, 3)
    history = k(lab, "-n", ns, "rollout", "history", "sts/db")
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["1", "2"]
    assert "Image:\tlocalhost:5001/test/web:2" in k(lab, "-n", ns, "rollout", "history", "sts/db", "--revision=2")
    assert k(lab, "-n", ns, "rollout", "undo", "sts/db").strip() == "statefulset.apps/db rolled back"
    k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=120s")
    status = sts(lab, ns, "db")["status"]
    assert status["updateRevision"] == status["currentRevision"] == first  # the first template, as revision 3
    revisions = {r["metadata"]["name"]: r["revision"]
                 for r in json.loads(k(lab, "-n", ns, "get", "controllerrevisions", "-o", "json"))["items"]}
    assert revisions == {first: 3, second: 2}
    images = {p.spec.containers[0].image for p in core.list_namespaced_pod(ns, label_selector="app=db").items}
    assert images == {"localhost:5001/test/web:1"}


def test_parallel_pods_claims_on_delete_and_retention(runtime_lab: Lab, ns: str,
                                                      core: kubernetes.client.CoreV1Api) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=PAR)
    # Parallel: all three at once, none of them ready yet (their readiness starts after 5 s)
    pods = sample(core, ns, "app=par", lambda p: len(p) == 3, 4)
    assert not any(ready(p) for p in pods.values())
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert sorted(claims) == ["data-par-0", "data-par-1", "data-par-2"]
    for n in range(3):
        claim = claims[f"data-par-{n}"]
        assert claim.metadata.labels == {"app": "par"}
        assert [(r.kind, r.name) for r in claim.metadata.owner_references] == [("StatefulSet", "par")]
        assert claim.spec.resources.requests == {"storage": "1Mi"}
        volume = next(v for v in pods[f"par-{n}"].spec.volumes if v.name == "data")
        assert volume.persistent_volume_claim.claim_name == f"data-par-{n}"
    # OnDelete: a new template replaces no pod until one is deleted, which comes back at the new revision
    k(lab, "-n", ns, "set", "image", "sts/par", "web=localhost:5001/test/web:2")
    time.sleep(3)
    status = sts(lab, ns, "par")["status"]
    assert status["updateRevision"] != status["currentRevision"]
    images = {p.metadata.name: p.spec.containers[0].image
              for p in core.list_namespaced_pod(ns, label_selector="app=par").items}
    assert set(images.values()) == {"localhost:5001/test/web:1"}
    k(lab, "-n", ns, "delete", "pod", "par-0", "--timeout=60s")
    pods = sample(core, ns, "app=par", lambda p: "par-0" in p and p["par-0"].metadata.labels[
        "controller-revision-hash"] == status["updateRevision"], 30)
    assert pods["par-0"].spec.containers[0].image == "localhost:5001/test/web:2"
    # whenScaled: Delete — the claims of the ordinals scaled away go with their pods
    k(lab, "-n", ns, "scale", "sts", "par", "--replicas=1")
    sample(core, ns, "app=par", lambda p: sorted(p) == ["par-0"], 60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items)
        if names == ["data-par-0"]:
            break
        time.sleep(0.3)
    assert names == ["data-par-0"]
    # whenDeleted: Delete — the last claim goes with the StatefulSet
    k(lab, "-n", ns, "delete", "sts", "par")
    deadline = time.monotonic() + 10
    while core.list_namespaced_persistent_volume_claim(ns).items and time.monotonic() < deadline:
        time.sleep(0.3)
    assert core.list_namespaced_persistent_volume_claim(ns).items == []


def test_ordinals_start_where_the_spec_says(runtime_lab: Lab, ns: str, core: kubernetes.client.CoreV1Api) -> None:
    lab = runtime_lab
    manifest = DB.replace("replicas: 3", "replicas: 2\n  ordinals: {start: 5}")
    k(lab, "-n", ns, "apply", "-f", "-", input=manifest)
    pods = sample(core, ns, "app=db", lambda p: len(p) == 2 and all(ready(x) for x in p.values()), 90)
    assert sorted(pods) == ["db-5", "db-6"]
    assert pods["db-6"].metadata.labels["apps.kubernetes.io/pod-index"] == "6"
    k(lab, "-n", ns, "scale", "sts", "db", "--replicas=1")
    sample(core, ns, "app=db", lambda p: sorted(p) == ["db-5"], 60)


def test_max_unavailable_updates_several_at_once(runtime_lab: Lab, ns: str,
                                                 core: kubernetes.client.CoreV1Api) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "apply", "-f", "-", input=DB.replace("  serviceName: db\n", "  serviceName: db\n  updateStrategy: "
                                                          "{rollingUpdate: {maxUnavailable: 2}}\n"))
    k(lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=90s")
    k(lab, "-n", ns, "set", "image", "sts/db", "web=localhost:5001/test/web:2")
    most = [0]

    def count(pods: dict[str, Any]) -> None:
        down = 3 - sum(1 for p in pods.values() if ready(p) and p.metadata.deletion_timestamp is None)
        most[0] = max(most[0], down)
        assert down <= 2, f"{down} pods unavailable at once"

    sample(core, ns, "app=db", lambda p: len(p) == 3 and all(
        ready(x) and x.spec.containers[0].image.endswith(":2") for x in p.values()), 120, count)
    assert most[0] == 2  # two at a time, never three


def test_names_resolve_through_the_pods_search_path(tmp_path: Path) -> None:
    """``db-0.db`` from namespace ``shop`` is first ``db-0.db.shop.svc.cluster.local`` (a pod record), and only then
    ``db-0.db.svc.cluster.local`` (Service db-0 in namespace db), as a pod's resolv.conf search path orders them;
    a pod record needs the pod behind the headless Service with that hostname and subdomain, and ready."""
    store = Store(tmp_path / "objects.sqlite")
    try:
        objects = KubeApi(store).objects

        def create(plural: str, ns: str, body: dict[str, Any]) -> None:
            rt = objects.registry.find("", "v1", plural)
            assert rt is not None
            objects.create(rt, ns, body, WriteOptions())

        create("namespaces", "", {"metadata": {"name": "shop"}})
        create("namespaces", "", {"metadata": {"name": "db"}})
        create("services", "db", {"metadata": {"name": "db-0"}, "spec": {"ports": [{"port": 80}]}})
        create("services", "shop", {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [
            {"port": 8080}]}})
        for name in ("db-0", "db-1"):
            create("pods", "shop", {"metadata": {"name": name}, "spec": {
                "hostname": name, "subdomain": "db", "containers": [{"name": "c", "image": "x"}]}})
        create("endpoints", "shop", {"metadata": {"name": "db"}, "subsets": [{
            "addresses": [{"ip": "127.0.9.1", "targetRef": {"kind": "Pod", "name": "db-0"}}],
            "notReadyAddresses": [{"ip": "127.0.9.2", "targetRef": {"kind": "Pod", "name": "db-1"}}],
            "ports": [{"port": 8080}]}]})
        resolver = Resolver(store)

        def answer(host: str, caller: str) -> tuple[str, str, str] | None:
            found = resolver.lookup(host, caller)
            return (found.service["metadata"]["namespace"], found.service["metadata"]["name"], found.pod_ip) \
                if found else None

        for host in ("db-0.db", "db-0.db.shop", "db-0.db.shop.svc", "db-0.db.shop.svc.cluster.local", "DB-0.db."):
            assert answer(host, "shop") == ("shop", "db", "127.0.9.1"), host
        assert answer("db-0.db", "default") == ("db", "db-0", "")  # no pod record from there: Service db-0 in db
        assert answer("db", "shop") == ("shop", "db", "")  # the headless Service itself: its ready pods
        assert answer("db-1.db", "shop") is None  # not ready, and the Service does not publish not-ready pods
        assert answer("db-9.db.shop", "shop") is None
    finally:
        store.close()
