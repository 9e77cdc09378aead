"""OpenAPI documents, validation and defaulting of the emulated Kubernetes API server."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.core.errors import ApiError
from labkit.kube.apiserver import openapi
from labkit.kube.apiserver.defaults import apply_defaults
from labkit.kube.apiserver.validation import validate

KUBECTL = Path(sys.executable).parent / "kubectl"

DEPLOYMENT = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: catalog
  namespace: shop
  labels: {app: catalog}
spec:
  replicas: 3
  selector:
    matchLabels: {app: catalog}
  template:
    metadata:
      labels: {app: catalog, tier: backend}
    spec:
      containers:
      - name: catalog
        image: registry.lab/shop/catalog:1.0
        ports: [{containerPort: 8080, name: http}]
        env: [{name: LOG_LEVEL, value: info}]
        readinessProbe:
          httpGet: {path: /readyz, port: http}
""")

CRD = yaml.safe_load("""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, green]}
              name: {type: string, pattern: '^[a-z]+$', maxLength: 8}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              port: {x-kubernetes-int-or-string: true}
          status:
            type: object
            properties:
              ready: {type: boolean}
""")


def _widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": spec}


# ------------------------------------------------------------------------------------ OpenAPI


def test_index_lists_group_versions_and_hash_follows_crds() -> None:
    index = openapi.v3_index([])
    for path in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/discovery.k8s.io/v1",
                 "apis/networking.k8s.io/v1", "apis/apiextensions.k8s.io/v1", "apis/autoscaling/v1"):
        url = index["paths"][path]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=") and len(url.split("=")[1]) == 128
    with_crd = openapi.v3_index([CRD])["paths"]
    first = with_crd["apis/example.com/v1"]["serverRelativeURL"]
    changed = copy.deepcopy(CRD)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = {
        "type": "string"}
    assert openapi.v3_index([changed])["paths"]["apis/example.com/v1"]["serverRelativeURL"] != first
    assert with_crd["api/v1"] == index["paths"]["api/v1"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_apps_document_has_schemas_with_extensions_and_patch_operations() -> None:
    doc = openapi.v3_document("apis/apps/v1", [])
    assert doc is not None and doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert dep["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert dep["properties"]["apiVersion"] == {"description": dep["properties"]["apiVersion"]["description"],
                                               "type": "string"}
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map" and containers["type"] == "array"
    assert schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"][
        "x-kubernetes-patch-strategy"] == "retainKeys"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    missing = {r for r in _refs(doc) if r.rsplit("/", 1)[-1] not in schemas}
    assert not missing
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert {p["name"] for p in patch["parameters"] if p["in"] == "query"} == {
        "dryRun", "fieldManager", "fieldValidation", "force"}
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert openapi.v3_document("apis/nope/v1", []) is None


def test_core_document_and_cluster_scoped_paths() -> None:
    doc = json.loads(openapi.v3_document_json("/openapi/v3/api/v1", []) or b"{}")
    assert "/api/v1/namespaces/{name}" in doc["paths"] and "/api/v1/nodes/{name}/status" in doc["paths"]
    pods = doc["paths"]["/api/v1/namespaces/{namespace}/pods"]
    assert pods["get"]["x-kubernetes-action"] == "list" and pods["post"]["x-kubernetes-action"] == "post"
    assert "io.k8s.api.core.v1.Pod" in doc["components"]["schemas"]


def test_crd_document_uses_its_schema_and_no_strategic_merge() -> None:
    doc = openapi.v3_document("apis/example.com/v1", [CRD])
    assert doc is not None
    widget = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [{"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert widget["properties"]["spec"]["required"] == ["size"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status" in doc["paths"]


def test_documents_are_fast_to_build() -> None:
    import time

    start = time.perf_counter()
    for path in openapi.v3_index([CRD])["paths"]:
        assert openapi.v3_document_json(path, [CRD])
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------------------------ kubectl explain


def _discovery() -> dict[str, Any]:
    def resources(gv: str, items: list[tuple[str, str, bool]]) -> dict[str, Any]:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": ns, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for plural, kind, ns in items]}
    return {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in ("apps", "example.com")]},
        "/api/v1": resources("v1", [("pods", "Pod", True), ("services", "Service", True)]),
        "/apis/apps/v1": resources("apps/v1", [("deployments", "Deployment", True)]),
        "/apis/example.com/v1": resources("example.com/v1", [("widgets", "Widget", True)]),
    }


@pytest.fixture
def schema_server(tmp_path: Path) -> Iterator[Path]:
    """A tiny HTTP server with discovery and /openapi/v3; yields a kubeconfig pointing at it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    routes = _discovery()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/openapi/v3":
                body: bytes | None = json.dumps(openapi.v3_index([CRD])).encode()
            elif path.startswith("/openapi/v3/"):
                body = openapi.v3_document_json(path, [CRD])
            else:
                body = json.dumps(routes[path]).encode() if path in routes else None
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b'{"kind":"Status","code":404}')

        def log_message(self, *args: Any) -> None:
            pass

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {}}]}))
    yield config
    server.shutdown()


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl from PyPI not installed")
def test_kubectl_explain_reads_the_documents(schema_server: Path, tmp_path: Path) -> None:
    def explain(*args: str) -> str:
        env = {"KUBECONFIG": str(schema_server), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([str(KUBECTL), "explain", *args], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = explain("deployment.spec.strategy")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out and "type\t<string>" in out
    assert "containers\t<[]Container> -required-" in explain("pods.spec")
    widget = explain("widgets.spec")
    assert "size\t<integer> -required-" in widget and "enum: red, green" in widget


# ------------------------------------------------------------------------------------ validation


def test_valid_deployment_has_no_causes() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    assert validate(obj, [], strict=True) == ([], [])
    assert obj == DEPLOYMENT


def test_selector_must_match_template_labels() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "orders"}
    causes, _ = validate(obj, [], strict=False)
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                       "message": 'Invalid value: {"app":"orders"}: `selector` does not match template `labels`'}]


def test_missing_selector_and_container_errors() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    del obj["spec"]["selector"]
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container.update(name="Catalog", imagePullPolicy="Sometimes")
    del container["image"]
    container["ports"][0]["protocol"] = "tcp"
    causes = {c["field"]: c for c in validate(obj, [], strict=False)[0]}
    assert causes["spec.selector"] == {"reason": "FieldValueRequired", "field": "spec.selector",
                                       "message": "Required value"}
    prefix = "spec.template.spec.containers[0]"
    assert causes[f"{prefix}.image"]["message"] == "Required value"
    assert causes[f"{prefix}.name"]["message"].startswith(
        'Invalid value: "Catalog": a lowercase RFC 1123 label must consist of lower case alphanumeric characters '
        "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex")
    assert causes[f"{prefix}.imagePullPolicy"] == {
        "reason": "FieldValueNotSupported", "field": f"{prefix}.imagePullPolicy",
        "message": 'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'}
    assert causes[f"{prefix}.ports[0].protocol"]["message"] == (
        'Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"')


def test_unknown_fields_are_pruned_and_reported() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["replicasx"] = 3
    obj["spec"]["template"]["spec"]["containers"][0]["imagex"] = "x"
    causes, unknown = validate(obj, [], strict=True)
    assert causes == []
    assert unknown == ["spec.template.spec.containers[0].imagex", "spec.replicasx"]  # document order
    assert "replicasx" not in obj["spec"]


def test_wrong_type_is_a_decode_error() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["replicas"] = "three"
    with pytest.raises(ApiError) as err:
        validate(obj, [], strict=False)
    assert err.value.status == 400
    assert err.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go '
        "struct field DeploymentSpec.spec.replicas of type int32")


def test_names_labels_and_service_checks() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1catalog", "labels": {"a/b/c": "x"}},
           "spec": {"type": "Cluster", "ports": [{"port": 80}, {"port": 70000, "name": "b"}]}}
    causes = validate(svc, [], strict=False)[0]
    fields = [c["field"] for c in causes]
    assert "metadata.name" in fields and "metadata.labels" in fields
    assert {"reason": "FieldValueNotSupported", "field": "spec.type", "message":
            'Unsupported value: "Cluster": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
            '"NodePort"'} in causes
    assert {"reason": "FieldValueRequired", "field": "spec.ports[0].name", "message": "Required value"} in causes
    assert {"reason": "FieldValueInvalid", "field": "spec.ports[1].port",
            "message": "Invalid value: 70000: must be between 1 and 65535, inclusive"} in causes
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}
    assert validate(ns, [], False)[0] == [
        {"reason": "FieldValueInvalid", "field": "metadata.name",
         "message": 'Invalid value: "a.b": must not contain dots'}]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cm-"}, "data": {"a b": "x"}}
    assert [c["field"] for c in validate(cm, [], False)[0]] == ["data[a b]"]


def test_job_needs_restart_policy() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
           "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}}}}
    apply_defaults(job)
    assert validate(job, [], False)[0] == [
        {"reason": "FieldValueRequired", "field": "spec.template.spec.restartPolicy",
         "message": 'Required value: valid values: "OnFailure", "Never"'}]


def test_custom_resource_against_crd_schema() -> None:
    ok = _widget(size=3, color="red", extra={"anything": {"goes": 1}}, port="http")
    assert validate(ok, [CRD], strict=True) == ([], [])
    bad = _widget(size="big", color="blue", name="ABC", unknown=1)
    bad["status"] = {"ready": True, "stale": 1}
    causes, unknown = validate(bad, [CRD], strict=True)
    assert {"reason": "FieldValueTypeInvalid", "field": "spec.size",
            "message": 'Invalid value: "string": spec.size in body must be of type integer: "string"'} in causes
    assert {"reason": "FieldValueNotSupported", "field": "spec.color",
            "message": 'Unsupported value: "blue": supported values: "red", "green"'} in causes
    assert {"reason": "FieldValueInvalid", "field": "spec.name",
            "message": "Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"} in causes
    assert unknown == ["spec.unknown", "status.stale"]
    assert "unknown" not in bad["spec"]
    low = _widget(size=0)
    assert validate(low, [CRD], False)[0] == [
        {"reason": "FieldValueInvalid", "field": "spec.size",
         "message": "Invalid value: 0: spec.size in body should be greater than or equal to 1"}]
    missing = _widget(color="red")
    assert validate(missing, [CRD], False)[0] == [
        {"reason": "FieldValueRequired", "field": "spec.size", "message": "Required value"}]
    top = _widget(size=1)
    top["bogus"] = True
    assert validate(top, [CRD], True) == ([], ["bogus"]) and "bogus" not in top


# ------------------------------------------------------------------------------------ defaulting


def test_deployment_defaults() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    del obj["spec"]["replicas"]
    obj["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy"})
    apply_defaults(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"], pod["terminationGracePeriodSeconds"],
            pod["securityContext"]) == ("Always", "ClusterFirst", "default-scheduler", 30, {})
    first, proxy = pod["containers"]
    assert first["imagePullPolicy"] == "IfNotPresent" and proxy["imagePullPolicy"] == "Always"
    assert first["terminationMessagePath"] == "/dev/termination-log"
    assert first["terminationMessagePolicy"] == "File"
    assert first["ports"][0]["protocol"] == "TCP"
    assert first["readinessProbe"]["periodSeconds"] == 10 and first["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    recreate = {"kind": "Deployment", "spec": {"strategy": {"type": "Recreate"}}}
    apply_defaults(recreate)
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}


def test_service_namespace_secret_defaults() -> None:
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80}, {"port": 90, "targetPort": "http"}]}}
    apply_defaults(svc)
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["sessionAffinity"] == "None"
    assert svc["spec"]["ipFamilies"] == ["IPv4"] and svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                                    {"port": 90, "targetPort": "http", "protocol": "TCP"}]
    ns = {"kind": "Namespace", "metadata": {"name": "shop"}}
    apply_defaults(ns)
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    secret = {"kind": "Secret"}
    apply_defaults(secret)
    assert secret["type"] == "Opaque"
