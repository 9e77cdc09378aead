"""Namespace policy with the real kubectl and the kubernetes client: LimitRange, ResourceQuota, PriorityClass,
and NetworkPolicy stored and validated but announced as not enforced."""

from __future__ import annotations

import json
import re

import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

from labkit.core.waiting import until
from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

# Pods that stay Pending (no node matches): admission and quota count them without starting processes.
PARKED = {"nodeSelector": {"labkit.test/nowhere": "true"}}


def client(lab: Lab) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=lab.kubeconfig))


def pod(name: str, resources: dict | None = None, **spec: object) -> dict:
    container: dict = {"name": "app", "image": "localhost:5001/test/web:1"}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], **PARKED, **spec}}


def refused(call: object, *args: object) -> ApiException:
    with pytest.raises(ApiException) as err:
        call(*args)  # type: ignore[operator]
    return err.value


def message(err: ApiException) -> str:
    return json.loads(err.body)["message"]


def test_limit_range_defaults_and_enforces_container_resources(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "500m", "memory": "256Mi"},
                             "defaultRequest": {"cpu": "100m"}}]}}))
    stored = json.loads(k(runtime_lab, "get", "limitrange", "limits", "-n", ns, "-o", "json"))
    item = stored["spec"]["limits"][0]
    assert item["default"] == {"cpu": "500m", "memory": "256Mi"}  # defaulted from max
    assert item["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}  # then from the default limit

    api = client(runtime_lab)
    created = api.create_namespaced_pod(ns, pod("plain"))
    resources = created.spec.containers[0].resources
    assert resources.limits == {"cpu": "500m", "memory": "256Mi"}
    assert resources.requests == {"cpu": "100m", "memory": "256Mi"}
    assert created.metadata.annotations["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app")

    err = refused(api.create_namespaced_pod, ns, pod("greedy", {"limits": {"cpu": "2"}}))
    assert err.status == 403
    assert message(err) == 'pods "greedy" is forbidden: maximum cpu usage per Container is 500m, but limit is 2'
    res = kubectl(runtime_lab, "run", "greedy2", "-n", ns, "--image=localhost:5001/test/web:1",
                  "--overrides", json.dumps({"spec": {"containers": [
                      {"name": "greedy2", "image": "localhost:5001/test/web:1",
                       "resources": {"limits": {"memory": "1Gi", "cpu": "2"}}}]}}), check=False)
    assert res.returncode != 0
    assert ('pods "greedy2" is forbidden: [maximum cpu usage per Container is 500m, but limit is 2, '
            "maximum memory usage per Container is 256Mi, but limit is 1Gi]") in res.stderr


def test_resource_quota_refuses_past_its_hard_limits_and_reports_usage(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "create", "quota", "compute", "-n", ns, "--hard=pods=2,requests.cpu=1,configmaps=20")
    api = client(runtime_lab)
    err = refused(api.create_namespaced_pod, ns, pod("bare"))
    assert err.status == 403
    assert message(err) == 'pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: app'

    small = {"requests": {"cpu": "300m"}}
    api.create_namespaced_pod(ns, pod("one", small))
    err = refused(api.create_namespaced_pod, ns, pod("big", {"requests": {"cpu": "800m"}}))
    assert message(err) == ('pods "big" is forbidden: exceeded quota: compute, requested: requests.cpu=800m, '
                            "used: requests.cpu=300m, limited: requests.cpu=1")
    api.create_namespaced_pod(ns, pod("two", small))
    err = refused(api.create_namespaced_pod, ns, pod("three", small))
    assert message(err) == ('pods "three" is forbidden: exceeded quota: compute, requested: pods=1, '
                            "used: pods=2, limited: pods=2")

    def used() -> dict:
        return json.loads(k(runtime_lab, "get", "quota", "compute", "-n", ns, "-o", "json")).get("status", {})

    assert until(lambda: used().get("used", {}).get("pods") == "2", timeout=15), used()
    assert used()["used"]["requests.cpu"] == "600m"
    described = k(runtime_lab, "describe", "quota", "compute", "-n", ns)
    assert re.search(r"\npods\s+2\s+2\n", described) and re.search(r"\nrequests.cpu\s+600m\s+1\n", described)
    k(runtime_lab, "create", "configmap", "settings", "-n", ns)
    configmaps = len(k(runtime_lab, "get", "configmaps", "-n", ns, "-o", "name").split())
    assert until(lambda: used().get("used", {}).get("configmaps") == str(configmaps), timeout=15), used()
    row = k(runtime_lab, "get", "quota", "compute", "-n", ns, "--no-headers")
    assert f"configmaps: {configmaps}/20, pods: 2/2, requests.cpu: 600m/1" in row

    api.delete_namespaced_pod("one", ns, grace_period_seconds=0)
    assert until(lambda: used().get("used", {}).get("pods") == "1", timeout=15), used()
    api.create_namespaced_pod(ns, pod("three", small))


def test_priority_class_sets_pod_priority(runtime_lab: Lab, ns: str) -> None:
    names = k(runtime_lab, "get", "priorityclasses", "-o", "name").split()
    assert {"priorityclass.scheduling.k8s.io/system-cluster-critical",
            "priorityclass.scheduling.k8s.io/system-node-critical"} <= set(names)
    name = f"{ns}-high"
    k(runtime_lab, "create", "priorityclass", name, "--value=1000", "--description=test")
    try:
        api = client(runtime_lab)
        created = api.create_namespaced_pod(ns, pod("urgent", priorityClassName=name))
        assert created.spec.priority == 1000
        assert created.spec.preemption_policy == "PreemptLowerPriority"
        plain = api.create_namespaced_pod(ns, pod("plain"))
        assert plain.spec.priority == 0
        err = refused(api.create_namespaced_pod, ns, pod("lost", priorityClassName="no-such-class"))
        assert err.status == 403
        assert message(err) == 'pods "lost" is forbidden: no PriorityClass with name no-such-class was found'
        res = kubectl(runtime_lab, "create", "priorityclass", f"{ns}-huge", "--value=2000000000", check=False)
        assert res.returncode != 0
        assert ("maximum allowed value of a user defined priority is 1000000000") in res.stderr
        row = k(runtime_lab, "get", "priorityclass", name, "--no-headers").split()
        assert row[:3] == [name, "1000", "false"]
    finally:
        k(runtime_lab, "delete", "priorityclass", name)


def test_network_policy_is_validated_and_announced_as_not_enforced(runtime_lab: Lab, ns: str) -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
              "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}
    res = kubectl(runtime_lab, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(policy))
    assert "networkpolicy.networking.k8s.io/deny created" in res.stdout
    assert "Warning: NetworkPolicy is stored and validated but not enforced by the labkit simulator" in res.stderr
    row = k(runtime_lab, "get", "netpol", "deny", "-n", ns, "--no-headers").split()
    assert row[:2] == ["deny", "app=web"]
    typo = {**policy, "metadata": {"name": "typo"}, "spec": {"podSelector": {}, "ingres": []}}
    bad = kubectl(runtime_lab, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(typo), check=False)
    assert bad.returncode != 0
    assert 'unknown field "spec.ingres"' in bad.stderr
    assert "NetworkPolicies are stored, not enforced" in runtime_lab.status().loc["kubernetes", "detail"]
