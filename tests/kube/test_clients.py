"""The `kubernetes` and `pykube-ng` Python clients against the sim API server, unchanged."""

from __future__ import annotations

import threading
import time
import uuid

import pykube
import pytest
import requests
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from labkit.lab import Lab


@pytest.fixture
def api(shared_lab: Lab) -> client.ApiClient:
    return config.new_client_from_config(config_file=shared_lab.kubeconfig)


@pytest.fixture
def ns(api: client.ApiClient) -> str:
    name = f"py-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="shop/app:1")]))))


def test_crud_with_optimistic_concurrency(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(ns, deployment("orders", 2))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    conflicts = 0
    while True:  # read-modify-write, as client code must: the deployment controller writes too
        got = apps.read_namespaced_deployment("orders", ns)
        got.spec.replicas = 3
        try:
            updated = apps.replace_namespaced_deployment("orders", ns, got)
            break
        except ApiException as exc:
            assert exc.status == 409 and conflicts < 20
            conflicts += 1
    assert updated.spec.replicas == 3 and updated.metadata.generation == 2
    assert int(updated.metadata.resource_version) > int(got.metadata.resource_version)
    got.spec.replicas = 4  # stale resourceVersion: the real 409
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("orders", ns, got)
    assert err.value.status == 409 and "the object has been modified" in err.value.body
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(ns, deployment("orders"))
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body.replace(" ", "")
    listed = apps.list_namespaced_deployment(ns, label_selector="app in (orders)")
    assert [d.metadata.name for d in listed.items] == ["orders"]
    apps.delete_namespaced_deployment("orders", ns)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("orders", ns)
    assert err.value.status == 404


def test_patch_types(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"),
                                                             data={"a": "1", "b": "2"}))
    core.patch_namespaced_config_map("cfg", ns, {"data": {"b": None, "c": "3"}})  # strategic by default
    assert core.read_namespaced_config_map("cfg", ns).data == {"a": "1", "c": "3"}
    core.patch_namespaced_config_map("cfg", ns, [{"op": "replace", "path": "/data/a", "value": "9"}])
    assert core.read_namespaced_config_map("cfg", ns).data == {"a": "9", "c": "3"}
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web"))
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 5 and scale.status.selector == "app=web"


def test_watch_streams_events_in_order(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def follow() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=start_rv, timeout_seconds=10,
                           field_selector="metadata.name=w"):  # not kube-root-ca.crt, published meanwhile
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.3)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w")))
    core.patch_namespaced_config_map("w", ns, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("w", ns)
    t.join(15)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_from_before_a_restart_is_gone(lab: Lab) -> None:
    """The watch window starts afresh with the API server, as the real watch cache does: relist."""
    from labkit import control

    core = client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))
    old_rv = core.list_namespace().metadata.resource_version
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="before")))
    control.down(lab.paths)
    control.up(lab.paths)
    core = client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_namespace, resource_version=old_rv, timeout_seconds=5):
            pass
    assert err.value.status == 410
    fresh_rv = core.list_namespace().metadata.resource_version
    assert int(fresh_rv) > int(old_rv)


def test_custom_objects(api: client.ApiClient, ns: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}}]}})
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"n": 1}}
    custom.create_namespaced_custom_object(group, "v1", ns, "gadgets", body)
    custom.patch_namespaced_custom_object(group, "v1", ns, "gadgets", "g1", {"spec": {"n": 2}})
    got = custom.get_namespaced_custom_object(group, "v1", ns, "gadgets", "g1")
    assert got["spec"] == {"n": 2}
    items = custom.list_namespaced_custom_object(group, "v1", ns, "gadgets")["items"]
    assert [i["metadata"]["name"] for i in items] == ["g1"]
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(group, "v1", ns, "gadgets",
                                               {**body, "metadata": {"name": "g2"}, "spec": {"n": "x"}})
    assert err.value.status == 422


def test_wrong_token_is_401_and_no_token_is_anonymous(shared_lab: Lab) -> None:
    url = shared_lab.url("kubernetes")
    ca = str(shared_lab.paths.tls / "ca.crt")
    anonymous = requests.get(f"{url}/api/v1/namespaces", verify=ca, timeout=5)
    assert anonymous.status_code == 403 and anonymous.json()["message"] == (
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" '
        "at the cluster scope")
    bad = requests.get(f"{url}/api/v1/namespaces", verify=ca, timeout=5,
                       headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["reason"] == "Unauthorized"
    assert requests.get(f"{url}/healthz", verify=ca, timeout=5).text == "ok"


def test_pykube(shared_lab: Lab) -> None:
    kube = pykube.HTTPClient(pykube.KubeConfig.from_file(shared_lab.kubeconfig))
    name = f"pk-{uuid.uuid4().hex[:6]}"
    pykube.Namespace(kube, {"metadata": {"name": name}}).create()
    cm = pykube.ConfigMap(kube, {"metadata": {"name": "cfg", "namespace": name}, "data": {"k": "v"}})
    cm.create()
    cm.obj["data"]["k"] = "w"
    cm.update()
    assert pykube.ConfigMap.objects(kube, namespace=name).get(name="cfg").obj["data"] == {"k": "w"}
    dep = pykube.Deployment(kube, {**client.ApiClient().sanitize_for_serialization(deployment("api", 0)),
                                   "apiVersion": "apps/v1", "kind": "Deployment"})
    dep.obj["metadata"]["namespace"] = name
    dep.create()
    for _ in range(100):  # pykube's update sends the resourceVersion it read: let the controller settle first
        dep.reload()
        if dep.obj.get("status", {}).get("observedGeneration") == 1 and \
                "deployment.kubernetes.io/revision" in dep.annotations:
            break
        time.sleep(0.05)
    dep.scale(3)
    assert pykube.Deployment.objects(kube, namespace=name).get(name="api").replicas == 3
    assert [d.name for d in pykube.Deployment.objects(kube, namespace=name).filter(selector={"app": "api"})] == ["api"]
    dep.delete()
    pykube.Namespace.objects(kube).get(name=name).delete()
