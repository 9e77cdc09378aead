"""Storage: the default local-path StorageClass, the PV controller's binding, the local-path provisioner, the
protection finalizers and the scheduler's volume constraints, driven with real kubectl and the kubernetes client."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from labkit import control
from labkit.core.paths import LabPaths
from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

WEB = "localhost:5001/test/web:1"
NODES = 5  # three tainted servers, two agents


def claim(name: str, size: str = "1Gi", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}}


def deployment(name: str, claim_name: str) -> dict:
    """One replica of the test server with ``claim_name`` mounted at /data."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": WEB,
                                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}}}}


def pod(name: str, claim_name: str) -> dict:
    spec = deployment(name, claim_name)["spec"]["template"]["spec"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def apply(lab: Lab, ns: str, *objs: dict) -> None:
    k(lab, "-n", ns, "apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))


def get(lab: Lab, *args: str) -> dict:
    return json.loads(k(lab, *args, "-o", "json"))


def wait(lab: Lab, ns: str, what: str, condition: str, timeout: str = "45s") -> None:
    k(lab, "-n", ns, "wait", what, f"--for={condition}", f"--timeout={timeout}")


def until(check, timeout: float = 30.0, what: str = "") -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.3)


def rows(lab: Lab, *args: str) -> list[list[str]]:
    """kubectl get's table, split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in k(lab, *args).strip().splitlines()]


def events(lab: Lab, ns: str, kind: str, name: str) -> list[tuple[str, str, str, str]]:
    """(type, reason, message, source component) of an object's events."""
    out = get(lab, "-n", ns, "get", "events", "--field-selector",
              f"involvedObject.kind={kind},involvedObject.name={name}")
    return [(e["type"], e["reason"], e["message"], e["source"]["component"]) for e in out["items"]]


def test_default_class_and_claim_waits_for_its_first_consumer(runtime_lab: Lab, ns: str) -> None:
    table = rows(runtime_lab, "get", "storageclass")
    assert table[0] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert table[1][:5] == ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
                            "false"]
    sc = get(runtime_lab, "get", "sc", "local-path")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"

    apply(runtime_lab, ns, claim("data"))
    pvc = get(runtime_lab, "-n", ns, "get", "pvc", "data")
    assert pvc["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert pvc["status"]["phase"] == "Pending"
    until(lambda: ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding",
                   "persistentvolume-controller") in events(runtime_lab, ns, "PersistentVolumeClaim", "data"),
          what="the WaitForFirstConsumer event")
    table = rows(runtime_lab, "-n", ns, "get", "pvc", "-o", "wide")
    assert table[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                        "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE"]
    assert table[1][:2] == ["data", "Pending"] and table[1][2:4] == ["local-path", "<unset>"]
    described = k(runtime_lab, "-n", ns, "describe", "pvc", "data")
    assert "StorageClass:  local-path" in described and "Status:        Pending" in described
    assert "Finalizers:    [kubernetes.io/pvc-protection]" in described
    assert "waiting for first consumer to be created before binding" in described
    assert not get(runtime_lab, "get", "pv")["items"]  # nothing is provisioned before a pod needs it


def test_local_path_volume_keeps_data_on_its_node_until_the_claim_goes(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, claim("data", "256Mi"), deployment("db", "data"))
    wait(runtime_lab, ns, "pvc/data", "jsonpath={.status.phase}=Bound")
    pvc = get(runtime_lab, "-n", ns, "get", "pvc", "data")
    volume = pvc["spec"]["volumeName"]
    assert volume == f"pvc-{pvc['metadata']['uid']}"
    notes = pvc["metadata"]["annotations"]
    assert notes["pv.kubernetes.io/bind-completed"] == "yes" and notes["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert notes["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert notes["volume.beta.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    node = notes["volume.kubernetes.io/selected-node"]
    assert node in ("agent-1", "agent-2")  # the servers are tainted
    assert pvc["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "256Mi"}}

    pv = get(runtime_lab, "get", "pv", volume)
    folder = Path(pv["spec"]["hostPath"]["path"])
    assert folder.is_dir() and folder.is_relative_to(runtime_lab.paths.state / "kube" / "volumes" / node)
    assert folder.name == f"{volume}_{ns}_data"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" and pv["status"]["phase"] == "Bound"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    table = rows(runtime_lab, "get", "pv", volume)
    assert table[0] == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
                        "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    assert table[1][:8] == [volume, "256Mi", "RWO", "Delete", "Bound", f"{ns}/data", "local-path", "<unset>"]
    assert rows(runtime_lab, "-n", ns, "get", "pvc")[1][:6] == ["data", "Bound", volume, "256Mi", "RWO",
                                                                 "local-path"]
    together = k(runtime_lab, "-n", ns, "get", "pv,pvc,sc")
    for line in (f"persistentvolume/{volume}", "persistentvolumeclaim/data", "storageclass.storage.k8s.io/local-path "
                 "(default)"):
        assert line in together
    seen = events(runtime_lab, ns, "PersistentVolumeClaim", "data")
    reasons = [e[1] for e in seen]
    assert {"WaitForFirstConsumer", "ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= set(reasons)
    assert ("Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {volume}") in [e[:3] for e in seen]
    provisioner = next(e[3] for e in seen if e[1] == "Provisioning")
    assert provisioner.startswith("rancher.io/local-path_")
    described = k(runtime_lab, "-n", ns, "describe", "pvc", "data")
    assert f"Volume:        {volume}" in described and "Used By:" in described
    assert "Waiting for a volume to be created either by the external provisioner 'rancher.io/local-path'" in described

    # the pod lands on the volume's node; what it writes outlives it
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/db", "--timeout=60s")
    first = get(runtime_lab, "-n", ns, "get", "pods", "-l", "app=db")["items"][0]
    assert first["spec"]["nodeName"] == node
    assert first["metadata"]["name"] in k(runtime_lab, "-n", ns, "describe", "pvc", "data")  # Used By
    k(runtime_lab, "-n", ns, "exec", "-i", first["metadata"]["name"], "--", "tee", "/data/note.txt",
      input="kept across pods\n")
    assert (folder / "note.txt").read_text() == "kept across pods\n"
    k(runtime_lab, "-n", ns, "delete", "pod", first["metadata"]["name"])
    wait(runtime_lab, ns, "deploy/db", "jsonpath={.status.readyReplicas}=1")
    second = next(p for p in get(runtime_lab, "-n", ns, "get", "pods", "-l", "app=db")["items"]
                  if not p["metadata"].get("deletionTimestamp"))
    assert second["metadata"]["name"] != first["metadata"]["name"] and second["spec"]["nodeName"] == node
    assert k(runtime_lab, "-n", ns, "exec", second["metadata"]["name"], "--", "cat", "/data/note.txt") == \
        "kept across pods\n"

    # reclaimPolicy Delete: the claim's deletion takes the volume and its folder
    k(runtime_lab, "-n", ns, "delete", "deploy", "db")
    k(runtime_lab, "-n", ns, "delete", "pvc", "data", "--timeout=60s")
    until(lambda: not get(runtime_lab, "get", "pv")["items"], what="the PersistentVolume's deletion")
    assert not folder.exists()


def test_claim_in_use_stays_terminating_until_its_pod_is_gone(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, claim("busy"), pod("user", "busy"))
    wait(runtime_lab, ns, "pvc/busy", "jsonpath={.status.phase}=Bound")
    volume = get(runtime_lab, "-n", ns, "get", "pvc", "busy")["spec"]["volumeName"]
    k(runtime_lab, "-n", ns, "delete", "pvc", "busy", "--wait=false")
    time.sleep(2)  # several protection-controller passes
    assert rows(runtime_lab, "-n", ns, "get", "pvc", "busy")[1][:3] == ["busy", "Terminating", volume]
    pvc = get(runtime_lab, "-n", ns, "get", "pvc", "busy")
    assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    # a new pod may not use a claim being deleted
    apply(runtime_lab, ns, pod("late", "busy"))
    message = 'persistentvolumeclaim "busy" is being deleted'
    until(lambda: any(message in e[2] for e in events(runtime_lab, ns, "Pod", "late")), what="FailedScheduling")
    k(runtime_lab, "-n", ns, "delete", "pod", "user", "late", "--timeout=60s")
    until(lambda: kubectl(runtime_lab, "-n", ns, "get", "pvc", "busy", check=False).returncode != 0,
          what="the claim's deletion")
    until(lambda: not any(p["metadata"]["name"] == volume for p in get(runtime_lab, "get", "pv")["items"]),
          what="the volume's deletion")


def test_static_volumes_bind_by_class_size_selector_and_name(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    def volume(name: str, size: str, **spec: object) -> dict:
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"{ns}-{name}", "labels": {"tier": name}},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                         "storageClassName": "", "hostPath": {"path": str(tmp_path / name)}, **spec}}

    k(runtime_lab, "apply", "-f", "-", input="\n---\n".join(json.dumps(v) for v in (
        volume("small", "1Gi"), volume("big", "5Gi"), volume("fast", "2Gi", persistentVolumeReclaimPolicy="Delete",
                                                   hostPath={"path": f"/srv/{ns}/fast"}),
        volume("named", "3Gi"))))
    try:
        until(lambda: all(v["status"]["phase"] == "Available" for v in get(runtime_lab, "get", "pv")["items"]
                          if v["metadata"]["name"].startswith(ns)), what="Available volumes")
        pv = get(runtime_lab, "get", "pv", f"{ns}-small")
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["volumeMode"] == "Filesystem"
        apply(runtime_lab, ns,
              claim("any", "1500Mi", storageClassName=""),  # the smallest that fits: fast (2Gi)
              claim("picky", "1Gi", storageClassName="", selector={"matchLabels": {"tier": "big"}}),
              claim("mine", "1Gi", storageClassName="", volumeName=f"{ns}-named"),
              claim("huge", "1Gi", storageClassName="", volumeName=f"{ns}-small", accessModes=["ReadWriteMany"]),
              claim("lonely", "9Gi", storageClassName=""))
        for name in ("any", "picky", "mine"):
            wait(runtime_lab, ns, f"pvc/{name}", "jsonpath={.status.phase}=Bound")
        bound = {n: get(runtime_lab, "-n", ns, "get", "pvc", n) for n in ("any", "picky", "mine")}
        assert {n: c["spec"]["volumeName"] for n, c in bound.items()} == {
            "any": f"{ns}-fast", "picky": f"{ns}-big", "mine": f"{ns}-named"}
        assert bound["any"]["status"]["capacity"] == {"storage": "2Gi"}
        assert bound["any"]["status"]["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
        assert "pv.kubernetes.io/bound-by-controller" in bound["any"]["metadata"]["annotations"]
        assert "pv.kubernetes.io/bound-by-controller" not in bound["mine"]["metadata"]["annotations"]  # its author's
        grow = kubectl(runtime_lab, "-n", ns, "patch", "pvc", "any", "-p",
                       '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}', check=False)
        assert grow.stderr.strip() == (
            'Error from server (Forbidden): persistentvolumeclaims "any" is forbidden: only dynamically provisioned '
            "pvc can be resized and the storageclass that provisions the pvc must support resize")
        shrink = kubectl(runtime_lab, "-n", ns, "patch", "pvc", "any", "-p",
                         '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}', check=False)
        assert shrink.stderr.strip() == ('The PersistentVolumeClaim "any" is invalid: spec.resources.requests.storage: '
                                         "Forbidden: field can not be less than status.capacity")
        named = get(runtime_lab, "get", "pv", f"{ns}-named")
        assert named["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert named["spec"]["claimRef"]["name"] == "mine" and named["status"]["phase"] == "Bound"
        table = {r[0]: r for r in rows(runtime_lab, "get", "pv")[1:] if r[0].startswith(ns)}
        # (the empty STORAGECLASS and REASON cells vanish in the split)
        assert table[f"{ns}-fast"][1:7] == ["2Gi", "RWO,ROX", "Delete", "Bound", f"{ns}/any", "<unset>"]
        until(lambda: ("Warning", "FailedBinding", f'Cannot bind to requested volume "{ns}-small": incompatible '
                       "accessMode") in [e[:3] for e in events(runtime_lab, ns, "PersistentVolumeClaim", "huge")],
              what="the FailedBinding event of a mismatched volumeName")
        until(lambda: ("Normal", "FailedBinding", "no persistent volumes available for this claim and no storage "
                       "class is set") in [e[:3] for e in events(runtime_lab, ns, "PersistentVolumeClaim", "lonely")],
              what="the FailedBinding event of a claim nothing fits")
        assert get(runtime_lab, "-n", ns, "get", "pvc", "lonely")["status"]["phase"] == "Pending"

        # released volumes: Retain keeps the data's volume Released; Delete of a manual hostPath fails
        k(runtime_lab, "-n", ns, "delete", "pvc", "picky", "any", "--timeout=60s")
        wait(runtime_lab, "default", f"pv/{ns}-big", "jsonpath={.status.phase}=Released")
        wait(runtime_lab, "default", f"pv/{ns}-fast", "jsonpath={.status.phase}=Failed")
        failed = get(runtime_lab, "get", "pv", f"{ns}-fast")
        assert failed["status"]["message"] == f"host_path deleter only supports /tmp/.+ but received provided " \
                                              f"/srv/{ns}/fast"
        assert ("Warning", "VolumeFailedDelete", failed["status"]["message"]) in \
            [e[:3] for e in events(runtime_lab, "default", "PersistentVolume", f"{ns}-fast")]
        # pv-protection: a bound volume stays Terminating; forced away, its claim is Lost
        k(runtime_lab, "delete", "pv", f"{ns}-named", "--wait=false")
        time.sleep(2)  # several protection-controller passes
        assert rows(runtime_lab, "get", "pv", f"{ns}-named")[1][4] == "Terminating"
        k(runtime_lab, "patch", "pv", f"{ns}-named", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        wait(runtime_lab, ns, "pvc/mine", "jsonpath={.status.phase}=Lost")
        assert ("Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!") in \
            [e[:3] for e in events(runtime_lab, ns, "PersistentVolumeClaim", "mine")]
        assert "Status:        Lost" in k(runtime_lab, "-n", ns, "describe", "pvc", "mine")
        described = k(runtime_lab, "describe", "pv", f"{ns}-big")
        assert re.search(r"\nStatus:\s+Released\n", described) and re.search(rf"\nClaim:\s+{ns}/picky\n", described)
        released = get(runtime_lab, "get", "pv", f"{ns}-big")
        assert released["spec"]["claimRef"]["name"] == "picky"  # kept, so nothing else binds the data
        assert rows(runtime_lab, "get", "pv", f"{ns}-big")[1][4:6] == ["Released", f"{ns}/picky"]
    finally:
        k(runtime_lab, "-n", ns, "delete", "pvc", "--all", "--wait=false")
        k(runtime_lab, "delete", "pv", *(f"{ns}-{n}" for n in ("small", "big", "fast")), "--wait=false")


def test_scheduler_honours_claims_and_volume_node_affinity(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    apply(runtime_lab, ns, pod("orphan", "nope"))
    expected = (f'0/{NODES} nodes are available: persistentvolumeclaim "nope" not found. preemption: 0/{NODES} '
                f"nodes are available: {NODES} Preemption is not helpful for scheduling.")
    until(lambda: ("Warning", "FailedScheduling", expected, "default-scheduler") in events(runtime_lab, ns, "Pod",
                                                                                          "orphan"),
          what="FailedScheduling for a missing claim")
    assert get(runtime_lab, "-n", ns, "get", "pod", "orphan")["status"]["phase"] == "Pending"

    # a local volume pinned to agent-1, pre-bound to its claim; agent-1 cordoned
    local = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-local"},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                      "local": {"path": str(tmp_path)},
                      "claimRef": {"namespace": ns, "name": "pinned"},
                      "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                          {"key": "kubernetes.io/hostname", "operator": "In", "values": ["agent-1"]}]}]}}}}
    k(runtime_lab, "apply", "-f", "-", input=json.dumps(local))
    k(runtime_lab, "cordon", "agent-1")
    try:
        apply(runtime_lab, ns, claim("pinned", storageClassName="manual"))
        wait(runtime_lab, ns, "pvc/pinned", "jsonpath={.status.phase}=Bound")
        apply(runtime_lab, ns, pod("stuck", "pinned"))
        expected = (f"0/{NODES} nodes are available: 1 node(s) had volume node affinity conflict, 1 node(s) were "
                    "unschedulable, 3 node(s) had untolerated taint {CriticalAddonsOnly: true}. preemption: "
                    f"0/{NODES} nodes are available: {NODES} Preemption is not helpful for scheduling.")
        until(lambda: expected in [e[2] for e in events(runtime_lab, ns, "Pod", "stuck")],
              what="FailedScheduling for the volume's node")
        assert expected in k(runtime_lab, "-n", ns, "describe", "pod", "stuck")
    finally:
        k(runtime_lab, "uncordon", "agent-1")
    wait(runtime_lab, ns, "pod/stuck", "jsonpath={.spec.nodeName}=agent-1")
    k(runtime_lab, "-n", ns, "delete", "pod", "stuck", "orphan", "--wait=false")
    k(runtime_lab, "-n", ns, "delete", "pvc", "pinned", "--wait=false")
    k(runtime_lab, "delete", "pv", f"{ns}-local", "--wait=false")


def test_python_client_and_validation(runtime_lab: Lab, ns: str) -> None:
    api = config.new_client_from_config(config_file=runtime_lab.kubeconfig)
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    classes = storage.list_storage_class().items
    assert [(c.metadata.name, c.provisioner, c.volume_binding_mode, c.reclaim_policy) for c in classes] == [
        ("local-path", "rancher.io/local-path", "WaitForFirstConsumer", "Delete")]
    body = client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="typed"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(
                                                    requests={"storage": "64Mi"})))
    made = core.create_namespaced_persistent_volume_claim(ns, body)
    assert made.spec.storage_class_name == "local-path" and made.status.phase == "Pending"
    assert made.metadata.finalizers == ["kubernetes.io/pvc-protection"]

    with pytest.raises(ApiException) as err:
        core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "bad"}, "spec": {
            "resources": {"requests": {"storage": "1Gi"}}}})
    assert err.value.status == 422
    assert json.loads(err.value.body)["message"] == ('PersistentVolumeClaim "bad" is invalid: spec.accessModes: '
                                                     "Required value: at least 1 access mode is required")
    out = kubectl(runtime_lab, "-n", ns, "patch", "pvc", "typed", "-p", '{"spec":{"accessModes":["ReadOnlyMany"]}}',
                  check=False)
    assert out.returncode == 1
    assert 'The PersistentVolumeClaim "typed" is invalid: spec: Forbidden: spec is immutable after creation ' \
           "except resources.requests and volumeAttributesClassName for bound claims" in out.stderr
    out = kubectl(runtime_lab, "patch", "sc", "local-path", "-p", '{"provisioner":"example.com/other"}', check=False)
    assert 'provisioner: Forbidden: updates to provisioner are forbidden.' in out.stderr
    out = kubectl(runtime_lab, "create", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-nothing"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}))
    assert 'The PersistentVolume "' + ns + '-nothing" is invalid: spec: Required value: must specify a volume type' \
        in out.stderr


def test_default_class_is_made_once_and_bindings_survive_a_restart(lab_paths: LabPaths, lab: Lab,
                                                                   tmp_path: Path) -> None:
    k(lab, "delete", "storageclass", "local-path")  # the admin's choice: a restart does not bring it back
    k(lab, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "kept"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": str(tmp_path)}}}))
    apply(lab, "default", claim("kept"))  # no default class now: it asks for a classless volume
    wait(lab, "default", "pvc/kept", "jsonpath={.status.phase}=Bound")
    assert get(lab, "-n", "default", "get", "pvc", "kept")["spec"].get("storageClassName") is None
    control.down(lab_paths)
    again = Lab.connect(home=lab_paths.home)
    assert kubectl(again, "get", "storageclass").stderr.strip() == "No resources found"
    pvc = get(again, "-n", "default", "get", "pvc", "kept")
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == "kept"
    assert get(again, "get", "pv", "kept")["status"]["phase"] == "Bound"


def test_claims_nothing_can_serve_say_why(runtime_lab: Lab, ns: str) -> None:
    sc = f"{ns}-now"
    k(runtime_lab, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
        "provisioner": "rancher.io/local-path"}))  # Immediate by default: local-path needs a node
    try:
        assert get(runtime_lab, "get", "sc", sc)["volumeBindingMode"] == "Immediate"
        apply(runtime_lab, ns, claim("now", storageClassName=sc), claim("ghost", storageClassName="ghost"),
              claim("shared", accessModes=["ReadWriteMany"]), pod("eager", "now"), pod("sharer", "shared"))

        def saw(name: str, event: tuple[str, str, str]) -> bool:
            return event in [e[:3] for e in events(runtime_lab, ns, "PersistentVolumeClaim", name)]

        until(lambda: saw("now", ("Warning", "ProvisioningFailed", f'failed to provision volume with StorageClass '
                                  f'"{sc}": configuration error, no node was specified')), what="no node")
        assert saw("now", ("Normal", "ExternalProvisioning", "Waiting for a volume to be created either by the "
                           "external provisioner 'rancher.io/local-path' or manually by the system administrator. If "
                           "volume creation is delayed, please verify that the provisioner is running and correctly "
                           "registered."))
        until(lambda: saw("ghost", ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "ghost" not found')),
              what="the missing class")
        until(lambda: saw("shared", ("Warning", "ProvisioningFailed", 'failed to provision volume with StorageClass '
                                     '"local-path": NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) '
                                     "access modes")), what="the access mode local-path cannot give")
        expected = (f"0/{NODES} nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
                    f"0/{NODES} nodes are available: {NODES} Preemption is not helpful for scheduling.")
        until(lambda: expected in [e[2] for e in events(runtime_lab, ns, "Pod", "eager")], what="FailedScheduling")
        sharer = get(runtime_lab, "-n", ns, "get", "pod", "sharer")
        assert sharer["status"]["phase"] == "Pending" and not sharer["spec"].get("nodeName")
        assert get(runtime_lab, "-n", ns, "get", "pvc", "shared")["metadata"]["annotations"][
            "volume.kubernetes.io/selected-node"] in ("agent-1", "agent-2")
    finally:
        k(runtime_lab, "-n", ns, "delete", "pod", "--all", "--wait=false")
        k(runtime_lab, "delete", "sc", sc)


def test_statefulset_replicas_get_their_own_volumes_on_their_nodes(runtime_lab: Lab, ns: str) -> None:
    template = deployment("db", "unused")["spec"]["template"]
    template["spec"].pop("volumes")
    apply(runtime_lab, ns, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template,
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}]}})
    k(runtime_lab, "-n", ns, "rollout", "status", "sts/db", "--timeout=90s", timeout=100)
    for i in range(2):
        pvc = get(runtime_lab, "-n", ns, "get", "pvc", f"data-db-{i}")
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "local-path"
        pv = get(runtime_lab, "get", "pv", pvc["spec"]["volumeName"])
        node = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0]
        assert get(runtime_lab, "-n", ns, "get", "pod", f"db-{i}")["spec"]["nodeName"] == node
        assert Path(pv["spec"]["hostPath"]["path"]).is_dir()
    core = client.CoreV1Api(config.new_client_from_config(config_file=runtime_lab.kubeconfig))
    claims = core.list_namespaced_persistent_volume_claim(ns).items
    assert sorted((c.metadata.name, c.status.phase, c.status.capacity["storage"]) for c in claims) == [
        ("data-db-0", "Bound", "64Mi"), ("data-db-1", "Bound", "64Mi")]
    volumes = {v.metadata.name: v for v in core.list_persistent_volume().items}
    for c in claims:
        pv = volumes[c.spec.volume_name]
        assert pv.spec.claim_ref.uid == c.metadata.uid and pv.status.phase == "Bound"
        assert pv.status.last_phase_transition_time is not None and pv.spec.host_path.type == "DirectoryOrCreate"


def test_a_stopped_node_keeps_its_volume_s_pod_pending_until_it_is_back(runtime_lab: Lab, ns: str) -> None:
    """The lesson: a local volume ties its pod to one node; when that node is lost, the replacement waits for it
    (and finds the data when it comes back) instead of moving as a stateless pod would."""
    apply(runtime_lab, ns, claim("data", "64Mi"), deployment("db", "data"))
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/db", "--timeout=60s")
    first = get(runtime_lab, "-n", ns, "get", "pods", "-l", "app=db")["items"][0]
    node = first["spec"]["nodeName"]
    other = "agent-2" if node == "agent-1" else "agent-1"
    k(runtime_lab, "-n", ns, "exec", "-i", first["metadata"]["name"], "--", "tee", "/data/note.txt", input="safe\n")
    runtime_lab.kubernetes.node_stop(node)
    try:
        expected = (f"0/{NODES} nodes are available: 1 node(s) had untolerated taint {{node.kubernetes.io/unreachable: "
                    "}, 1 node(s) had volume node affinity conflict, 3 node(s) had untolerated taint "
                    f"{{CriticalAddonsOnly: true}}. preemption: 0/{NODES} nodes are available: {NODES} Preemption is "
                    "not helpful for scheduling.")

        def replacement() -> dict | None:
            return next((p for p in get(runtime_lab, "-n", ns, "get", "pods", "-l", "app=db")["items"]
                         if p["metadata"]["name"] != first["metadata"]["name"]), None)

        waiting = until(replacement, timeout=60, what="the evicted pod's replacement")
        name = waiting["metadata"]["name"]  # type: ignore[index]
        until(lambda: expected in [e[2] for e in events(runtime_lab, ns, "Pod", name)], timeout=30,
              what="FailedScheduling for the lost node's volume")
        assert not get(runtime_lab, "-n", ns, "get", "pod", name)["spec"].get("nodeName")  # not moved to {other}
    finally:
        runtime_lab.kubernetes.node_start(node)
    wait(runtime_lab, ns, f"pod/{name}", "condition=Ready", timeout="60s")
    assert get(runtime_lab, "-n", ns, "get", "pod", name)["spec"]["nodeName"] == node != other
    assert k(runtime_lab, "-n", ns, "exec", name, "--", "cat", "/data/note.txt") == "safe\n"


def test_local_volumes_of_a_no_provisioner_class_bind_where_the_pod_is_scheduled(runtime_lab: Lab, ns: str,
                                                                                  tmp_path: Path) -> None:
    """The classic static local storage: a WaitForFirstConsumer class without a provisioner, one local volume per
    node; the scheduler picks a node with a fitting volume and binds the claim to it."""
    sc = f"{ns}-local"
    volumes = [{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-{node}"},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                         "local": {"path": str(tmp_path / node)},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}
               for node, size in (("agent-1", "1Gi"), ("agent-2", "5Gi"))]
    for node in ("agent-1", "agent-2"):
        (tmp_path / node).mkdir()
    k(runtime_lab, "apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
         "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}, *volumes]))
    try:
        apply(runtime_lab, ns, claim("big", "3Gi", storageClassName=sc), claim("huge", "9Gi", storageClassName=sc))
        apply(runtime_lab, ns, pod("fits", "big"), pod("nowhere", "huge"))
        wait(runtime_lab, ns, "pod/fits", "condition=Ready")
        assert get(runtime_lab, "-n", ns, "get", "pod", "fits")["spec"]["nodeName"] == "agent-2"
        pvc = get(runtime_lab, "-n", ns, "get", "pvc", "big")
        assert pvc["spec"]["volumeName"] == f"{ns}-agent-2" and pvc["status"]["capacity"] == {"storage": "5Gi"}
        assert "volume.kubernetes.io/selected-node" not in pvc["metadata"]["annotations"]  # nothing to provision
        pv = get(runtime_lab, "get", "pv", f"{ns}-agent-2")
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        k(runtime_lab, "-n", ns, "exec", "-i", "fits", "--", "tee", "/data/f", input="local\n")
        assert (tmp_path / "agent-2" / "f").read_text() == "local\n"
        expected = (f"0/{NODES} nodes are available: 2 node(s) didn't find available persistent volumes to bind, 3 "
                    "node(s) had untolerated taint {CriticalAddonsOnly: true}. preemption: "
                    f"0/{NODES} nodes are available: {NODES} Preemption is not helpful for scheduling.")
        until(lambda: expected in [e[2] for e in events(runtime_lab, ns, "Pod", "nowhere")], what="FailedScheduling")
        assert get(runtime_lab, "-n", ns, "get", "pvc", "huge")["status"]["phase"] == "Pending"
    finally:
        k(runtime_lab, "-n", ns, "delete", "pod", "--all", "--wait=false")
        k(runtime_lab, "delete", "sc", sc)
