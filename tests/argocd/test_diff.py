"""Argo CD's comparison rules on real-shaped objects: only the manifest's fields count, a field the last apply
set and Git dropped counts, ignoreDifferences (jsonPointers, plain jq paths, managedFieldsManagers), refusals."""

from __future__ import annotations

import json

import pytest

from labkit.argocd.diff import LAST_APPLIED, DiffError, diff, owner_app, tracking_id

TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
          "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}


def live(**spec: object) -> dict:
    obj = json.loads(json.dumps(TARGET))
    obj["metadata"].update(uid="u1", resourceVersion="7", generation=3, managedFields=[])
    obj["spec"].update(strategy={"type": "RollingUpdate"}, revisionHistoryLimit=10, **spec)
    obj["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy="IfNotPresent",
                                                            terminationMessagePath="/dev/termination-log")
    obj["status"] = {"replicas": 2}
    return obj


def test_defaults_and_server_fields_do_not_count() -> None:
    assert diff(TARGET, live(), []) == []


def test_a_changed_field_and_a_missing_object_count() -> None:
    assert diff(TARGET, live(replicas=3), []) == ["/spec/replicas"]
    changed = live()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    assert diff(TARGET, changed, []) == ["/spec/template/spec/containers/0/image"]
    assert diff(TARGET, None, []) == ["/"]


def test_a_field_git_dropped_counts_through_the_last_applied_configuration() -> None:
    obj = live()
    obj["metadata"]["labels"] = {"team": "a"}
    assert diff(TARGET, obj, []) == []  # someone else's label
    obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps({**TARGET, "metadata": {
        **TARGET["metadata"], "labels": {"team": "a"}}})}
    assert diff(TARGET, obj, []) == ["/metadata/labels"]  # the last apply set it, Git no longer does


def test_list_items_merged_by_key_count_as_kubectl_apply_merges_them() -> None:
    """An env var another writer added (``kubectl set env``) is not a difference; one Git dropped that the last
    apply set is; a container Git names that is not live is."""
    env = [{"name": "A", "value": "1"}]
    target = json.loads(json.dumps(TARGET))
    target["spec"]["template"]["spec"]["containers"][0]["env"] = env
    obj = live()
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "OTEL", "value": "x"}, *env]
    assert diff(target, obj, []) == []
    obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(target)}
    assert diff(TARGET, obj, []) == ["/spec/template/spec/containers/0/env"]  # Git dropped every env var
    dropped = json.loads(json.dumps(target))
    dropped["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "B", "value": "2"}]
    obj["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    assert diff(dropped, obj, []) == ["/spec/template/spec/containers/0/env/0"]  # A: applied before, dropped now
    target["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    assert diff(target, live(), []) == ["/spec/template/spec/containers/0/env", "/spec/template/spec/containers/1"]


def test_ignore_differences() -> None:
    rule = {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
    assert diff(TARGET, live(replicas=5), [rule]) == []
    assert diff(TARGET, live(replicas=5), [{**rule, "name": "other"}]) == ["/spec/replicas"]
    jq = {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.template.spec.containers[].image"]}
    changed = live()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    assert diff(TARGET, changed, [jq]) == []
    hpa = live(replicas=5)
    hpa["metadata"]["managedFields"] = [{"manager": "kube-controller-manager", "operation": "Update",
                                         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    managers = {"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["kube-controller-manager"]}
    assert diff(TARGET, hpa, [managers]) == []
    with pytest.raises(DiffError, match="not supported by the labkit simulator"):
        diff(TARGET, live(), [{"group": "apps", "kind": "Deployment",
                               "jqPathExpressions": ['.spec.template.spec.containers[] | select(.name == "web")']}])


def test_tracking_id() -> None:
    assert tracking_id("shop", TARGET) == "shop:apps/Deployment:shop/web"
    obj = live()
    obj["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}
    assert owner_app(obj) == "shop" and owner_app(TARGET) == ""
