"""Strategic merge patch, server-side apply and managedFields."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from labkit.core.errors import ApiError
from labkit.kube.apiserver import merge

DEPLOYMENT = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: catalog
  namespace: shop
  labels: {app: catalog, team: shop}
  finalizers: [a, b]
spec:
  replicas: 2
  selector:
    matchLabels: {app: catalog}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: catalog}
    spec:
      containers:
      - name: catalog
        image: catalog:1.0
        args: [--port, "8080"]
        ports: [{containerPort: 8080, protocol: TCP}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: proxy
        image: envoy:1.0
      volumes:
      - {name: data, emptyDir: {}}
""")

CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": {"type": "object", "properties": {
                        "size": {"type": "integer"},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "properties": {
                                      "name": {"type": "string"}, "port": {"type": "integer"}}}}}}}}}}]}}


def smp(patch: dict[str, Any], original: dict[str, Any] | None = None) -> dict[str, Any]:
    return merge.strategic_merge_patch(original or DEPLOYMENT, patch, "apps/v1", "Deployment", [])


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------------ strategic merge


def test_containers_merge_by_name_and_env_by_name() -> None:
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "catalog", "image": "catalog:1.1", "env": [{"name": "C", "value": "3"}]}]}}}})
    catalog, proxy = pod_spec(out)["containers"]
    assert catalog["image"] == "catalog:1.1" and proxy == {"name": "proxy", "image": "envoy:1.0"}
    assert [e["name"] for e in catalog["env"]] == ["A", "B", "C"]
    assert catalog["args"] == ["--port", "8080"]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"] == "catalog:1.0"  # not mutated


def test_atomic_lists_are_replaced_and_new_items_appended() -> None:
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "catalog", "args": ["--port", "9090"]}, {"name": "metrics", "image": "exporter"}]}}}})
    names = [c["name"] for c in pod_spec(out)["containers"]]
    assert names == ["catalog", "proxy", "metrics"]
    assert pod_spec(out)["containers"][0]["args"] == ["--port", "9090"]


def test_patch_directives_delete_replace_and_null() -> None:
    out = smp({"metadata": {"labels": {"team": None}},
               "spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "proxy"}]}}}})
    assert out["metadata"]["labels"] == {"app": "catalog"}
    assert [c["name"] for c in pod_spec(out)["containers"]] == ["catalog"]
    out = smp({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"},
                                                              {"$patch": "replace"}]}}}})
    assert pod_spec(out)["containers"] == [{"name": "only", "image": "x"}]
    out = smp({"spec": {"selector": {"$patch": "replace", "matchLabels": {"app": "x"}}}})
    assert out["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    out = smp({"spec": {"template": {"spec": {"volumes": [{"name": "data", "$patch": "delete"}]}}}})
    assert pod_spec(out)["volumes"] == []


def test_retain_keys_clears_rolling_update() -> None:
    """What kubectl sends when a Deployment switches to Recreate."""
    out = smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(ApiError) as err:
        smp({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}})
    assert (err.value.status, err.value.message) == (400, "invalid patch format of retainKeys")


def test_set_element_order_and_delete_from_primitive_list() -> None:
    out = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]},
               "spec": {"template": {"spec": {
                   "$setElementOrder/containers": [{"name": "proxy"}, {"name": "catalog"}],
                   "containers": [{"name": "proxy", "image": "envoy:1.1"}]}}}})
    assert out["metadata"]["finalizers"] == ["c", "b"]  # patch items first, as apimachinery orders them
    assert [(c["name"], c["image"]) for c in pod_spec(out)["containers"]] == [
        ("proxy", "envoy:1.1"), ("catalog", "catalog:1.0")]


def test_kubectl_apply_three_way_patch() -> None:
    """The shape of the patch client-side ``kubectl apply`` sends after an edit of the manifest."""
    last = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment"})
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": last}},
             "spec": {"replicas": 3, "template": {"spec": {
                 "$setElementOrder/containers": [{"name": "catalog"}, {"name": "proxy"}],
                 "containers": [{"env": [{"name": "A", "value": "9"}],
                                 "$setElementOrder/env": [{"name": "A"}, {"name": "B"}], "name": "catalog"}]}}}}
    out = smp(patch)
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == last
    assert pod_spec(out)["containers"][0]["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]


def test_bad_patches_and_custom_resources() -> None:
    with pytest.raises(ApiError) as err:
        smp({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert err.value.status == 500
    assert err.value.message == "map: map[image:x] does not contain declared merge key: name"
    with pytest.raises(ApiError) as err:
        smp({"spec": {"$patch": "explode"}})
    assert err.value.message.startswith("unknown patch type: explode in map:")
    with pytest.raises(ApiError) as err:
        merge.strategic_merge_patch({}, {"spec": {}}, "example.com/v1", "Widget", [CRD])
    assert err.value.status == 415 and err.value.reason == "UnsupportedMediaType"
    assert err.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")


# ------------------------------------------------------------------------------------ managed fields


def _entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


def test_apply_creates_with_real_fields_v1() -> None:
    applied = copy.deepcopy(DEPLOYMENT)
    out = merge.server_side_apply(None, applied, "kubectl", False, "apps/v1", "Deployment", [])
    entry = _entries(out)[("kubectl", "Apply")]
    assert entry["apiVersion"] == "apps/v1" and entry["fieldsType"] == "FieldsV1" and entry["time"].endswith("Z")
    fields = entry["fieldsV1"]
    assert "f:name" not in fields["f:metadata"] and fields["f:metadata"]["f:labels"] == {"f:app": {}, "f:team": {}}
    spec = fields["f:spec"]
    assert spec["f:replicas"] == {} and spec["f:selector"] == {}  # LabelSelector is an atomic struct
    catalog = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"catalog"}']
    assert catalog["."] == {} and catalog["f:args"] == {} and catalog["f:image"] == {}
    assert catalog["f:env"]['k:{"name":"A"}'] == {".": {}, "f:name": {}, "f:value": {}}
    assert catalog["f:ports"]['k:{"containerPort":8080,"protocol":"TCP"}'] == {
        ".": {}, "f:containerPort": {}, "f:protocol": {}}
    assert out["spec"] == DEPLOYMENT["spec"]


def test_update_manager_conflicts_with_apply_and_force_takes_over() -> None:
    live = copy.deepcopy(DEPLOYMENT)
    merge.record_update(None, live, "kubectl-client-side-apply", "apps/v1")
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    merge.record_update(live, scaled, "kubectl-scale", "apps/v1", subresource="scale")
    entries = _entries(scaled)
    assert entries[("kubectl-scale", "Update")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert entries[("kubectl-scale", "Update")]["subresource"] == "scale"
    assert "f:replicas" not in entries[("kubectl-client-side-apply", "Update")]["fieldsV1"]["f:spec"]

    applied = copy.deepcopy(DEPLOYMENT)
    applied["spec"]["template"]["spec"]["containers"][0]["image"] = "catalog:2.0"
    with pytest.raises(ApiError) as err:
        merge.server_side_apply(scaled, applied, "kubectl", False, "apps/v1", "Deployment", [])
    e = err.value
    assert (e.status, e.reason) == (409, "Conflict")
    assert e.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        '- .spec.template.spec.containers[name="catalog"].image\n'
        'conflicts with "kubectl-scale" with subresource "scale" using apps/v1:\n- .spec.replicas')
    assert {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": '.spec.template.spec.containers[name="catalog"].image'} in e.details["causes"]

    out = merge.server_side_apply(scaled, applied, "kubectl", True, "apps/v1", "Deployment", [])
    assert out["spec"]["replicas"] == 2 and pod_spec(out)["containers"][0]["image"] == "catalog:2.0"
    entries = _entries(out)
    assert ("kubectl-scale", "Update") not in entries
    csa = entries[("kubectl-client-side-apply", "Update")]["fieldsV1"]
    assert "f:image" not in csa["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"catalog"}']


def test_single_conflict_message() -> None:
    live = merge.server_side_apply(None, copy.deepcopy(DEPLOYMENT), "kubectl", False, "apps/v1", "Deployment", [])
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 4
    merge.record_update(live, scaled, "kubectl-client-side-apply", "apps/v1")
    with pytest.raises(ApiError) as err:
        merge.server_side_apply(scaled, copy.deepcopy(DEPLOYMENT), "kubectl", False, "apps/v1", "Deployment", [])
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas')


def test_reapply_is_a_no_op_and_dropped_fields_are_pruned() -> None:
    first = merge.server_side_apply(None, copy.deepcopy(DEPLOYMENT), "kubectl", False, "apps/v1",
                                    "Deployment", [])
    again = merge.server_side_apply(first, copy.deepcopy(DEPLOYMENT), "kubectl", False, "apps/v1",
                                    "Deployment", [])
    assert again == first
    # another manager adds a label; kubectl then stops applying "team" and the proxy container
    labelled = copy.deepcopy(first)
    labelled["metadata"]["labels"]["owner"] = "ops"
    merge.record_update(first, labelled, "ops-tool", "apps/v1")
    smaller = copy.deepcopy(DEPLOYMENT)
    del smaller["metadata"]["labels"]["team"]
    del smaller["spec"]["template"]["spec"]["containers"][1]
    out = merge.server_side_apply(labelled, smaller, "kubectl", False, "apps/v1", "Deployment", [])
    assert out["metadata"]["labels"] == {"app": "catalog", "owner": "ops"}
    assert [c["name"] for c in pod_spec(out)["containers"]] == ["catalog"]
    assert _entries(out)[("ops-tool", "Update")]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:owner": {}}}}


def test_two_appliers_share_a_field_without_conflict_when_values_agree() -> None:
    first = merge.server_side_apply(None, copy.deepcopy(DEPLOYMENT), "alice", False, "apps/v1", "Deployment", [])
    mine = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "catalog"},
            "spec": {"replicas": 2}}
    shared = merge.server_side_apply(first, mine, "bob", False, "apps/v1", "Deployment", [])
    assert set(_entries(shared)) == {("alice", "Apply"), ("bob", "Apply")}
    mine["spec"]["replicas"] = 7
    with pytest.raises(ApiError) as err:
        merge.server_side_apply(shared, mine, "bob", False, "apps/v1", "Deployment", [])
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'


def test_apply_custom_resource_with_list_types() -> None:
    cr = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
          "spec": {"size": 1, "tags": ["a"], "ports": [{"name": "http", "port": 80}]}}
    out = merge.server_side_apply(None, cr, "me", False, "example.com/v1", "Widget", [CRD])
    fields = _entries(out)[("me", "Apply")]["fieldsV1"]["f:spec"]
    assert fields["f:tags"] == {'v:"a"': {}}
    assert fields["f:ports"] == {'k:{"name":"http"}': {".": {}, "f:name": {}, "f:port": {}}}
    more = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"tags": ["b"], "ports": [{"name": "grpc", "port": 90}]}}
    out = merge.server_side_apply(out, more, "other", False, "example.com/v1", "Widget", [CRD])
    assert out["spec"]["tags"] == ["a", "b"]
    assert [p["name"] for p in out["spec"]["ports"]] == ["http", "grpc"]


def test_record_update_for_client_side_apply() -> None:
    created = copy.deepcopy(DEPLOYMENT)
    merge.record_update(None, created, "kubectl-client-side-apply", "apps/v1")
    entry = _entries(created)[("kubectl-client-side-apply", "Update")]
    assert entry["operation"] == "Update" and entry["apiVersion"] == "apps/v1"
    assert entry["fieldsV1"]["f:metadata"]["f:labels"] == {".": {}, "f:app": {}, "f:team": {}}
    unchanged = copy.deepcopy(created)
    merge.record_update(created, unchanged, "kubectl-client-side-apply", "apps/v1")
    assert unchanged["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    assert merge.path_string((("f", "spec"), ("f", "ports"), ("k", '{"port":80,"protocol":"TCP"}'))) == (
        '.spec.ports[port=80,protocol="TCP"]')
