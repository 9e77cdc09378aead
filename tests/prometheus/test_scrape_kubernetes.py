"""The lab's Prometheus discovering the lab's pods through its API server (kubernetes_sd_configs with the
chapter's prometheus.io/* annotation config, unchanged): every running shop pod a target that is up with its
namespace/pod/node/app labels; the endpoints, service and node roles' meta labels; kube-state-metrics' series
matching the API's objects; a deleted pod's target goes away and its series end (stale markers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from labkit import control
from labkit.core.checkout import Checkout
from labkit.core.paths import LabPaths
from labkit.lab import Lab
from labkit.prometheus.scrape.kubernetes import KubeLister, discover

from ..conftest import kubectl
from .peer import wait_until


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab with the shop deployed from manifests/apps."""
    paths = LabPaths.resolve(tmp_path_factory.mktemp("prometheus-sd") / "home")
    lab = Lab.connect(home=paths.home)
    try:
        kubectl(lab, "apply", "-k", str(Checkout.find().root / "manifests" / "apps"), timeout=120)
        kubectl(lab, "-n", "shop", "rollout", "status", "deployment/catalog", "--timeout=180s", timeout=200)
        yield lab
    finally:
        control.down(paths)


def api(lab: Lab, path: str, **params: Any) -> Any:
    answer = requests.get(f"{lab.prometheus.url}{path}", params=params, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def running_pods(lab: Lab) -> dict[str, dict[str, Any]]:
    pods = json.loads(kubectl(lab, "-n", "shop", "get", "pods", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def shop_targets(lab: Lab) -> dict[str, dict[str, Any]]:
    return {t["labels"]["pod"]: t for t in api(lab, "/api/v1/targets")["activeTargets"]
            if t["scrapePool"] == "kubernetes-pods" and t["labels"].get("namespace") == "shop"}


def test_every_running_shop_pod_is_a_target_that_is_up(lab: Lab) -> None:
    def all_up() -> bool:
        targets = shop_targets(lab)
        return set(running_pods(lab)) <= set(targets) and all(targets[p]["health"] == "up" for p in running_pods(lab))

    wait_until(all_up, 120, "every shop pod scraped")
    targets = shop_targets(lab)
    for name, pod in running_pods(lab).items():
        t = targets[name]
        assert t["labels"]["node"] == pod["spec"]["nodeName"]
        assert t["labels"]["app"] == pod["metadata"]["labels"]["app"]
        assert t["labels"]["instance"] == f"{pod['status']['podIP']}:8080"
        assert t["scrapeUrl"] == f"http://{pod['status']['podIP']}:8080/metrics"
        assert t["discoveredLabels"]["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] == "true"
    up = api(lab, "/api/v1/query", query='up{job="kubernetes-pods",namespace="shop"}')["result"]
    assert {r["metric"]["pod"] for r in up} >= set(running_pods(lab)) and all(r["value"][1] == "1" for r in up)


def test_roles_endpoints_service_node(lab: Lab) -> None:
    async def roles() -> dict[str, list[dict[str, str]]]:
        lister = KubeLister(lab.kubeconfig)
        try:
            return {role: await discover(lister, role, ("shop",) if role != "node" else ())
                    for role in ("endpoints", "service", "node")}
        finally:
            await lister.close()

    found = asyncio.run(roles())
    catalog = [t for t in found["endpoints"] if t["__meta_kubernetes_endpoints_name"] == "catalog"]
    assert catalog and all(t["__meta_kubernetes_service_name"] == "catalog" for t in catalog)
    assert {t["__meta_kubernetes_pod_name"] for t in catalog if t["__meta_kubernetes_endpoint_ready"] == "true"} \
        <= {n for n in running_pods(lab) if n.startswith("catalog-")}
    assert all(t["__meta_kubernetes_endpoint_address_target_kind"] == "Pod" for t in catalog)
    services = {t["__meta_kubernetes_service_name"]: t for t in found["service"]}
    assert services["catalog"]["__address__"].startswith("catalog.shop.svc:")
    nodes = {t["__meta_kubernetes_node_name"]: t for t in found["node"]}
    node_names = json.loads(kubectl(lab, "get", "nodes", "-o", "json").stdout)["items"]
    assert set(nodes) == {n["metadata"]["name"] for n in node_names}
    assert all(t["__address__"].endswith(":10250") and t["instance"] in nodes for t in nodes.values())


def test_kube_state_metrics(lab: Lab) -> None:
    deployment = json.loads(kubectl(lab, "-n", "shop", "get", "deployment", "catalog", "-o", "json").stdout)

    def available() -> list[dict[str, Any]]:
        return api(lab, "/api/v1/query",
                   query='kube_deployment_status_replicas_available{namespace="shop",deployment="catalog"}')["result"]

    result = wait_until(available, 60, "kube-state-metrics scraped")
    assert float(result[0]["value"][1]) == deployment["status"]["availableReplicas"]

    def ready_pods_scraped() -> bool:  # a pod that just became ready shows at the next scrape
        ready = api(lab, "/api/v1/query",
                    query='kube_pod_status_ready{namespace="shop",condition="true"} == 1')["result"]
        return {r["metric"]["pod"] for r in ready} >= {n for n, p in running_pods(lab).items()
                                                       if any(c["type"] == "Ready" and c["status"] == "True"
                                                              for c in p["status"].get("conditions", []))}

    wait_until(ready_pods_scraped, 30, "every ready shop pod ready in kube_pod_status_ready")
    restarts = api(lab, "/api/v1/query", query='kube_pod_container_status_restarts_total{namespace="shop"}')["result"]
    assert restarts and all(r["metric"]["container"] in ("catalog", "gateway", "orders") for r in restarts)


def test_kubelet_cadvisor_metrics_per_container(lab: Lab) -> None:
    def cpu() -> list[dict[str, Any]]:
        result = api(lab, "/api/v1/query", query='container_cpu_usage_seconds_total{namespace="shop"}')["result"]
        return result if {r["metric"]["pod"] for r in result} >= set(running_pods(lab)) else []

    result = wait_until(cpu, 60, "cAdvisor series of every shop pod")
    pods = running_pods(lab)
    for r in result:
        pod = pods.get(r["metric"]["pod"])
        if pod is not None:
            assert r["metric"]["job"] == "kubelet" and r["metric"]["instance"] == pod["spec"]["nodeName"]
            assert float(r["value"][1]) > 0  # the process tree has used CPU
    memory = api(lab, "/api/v1/query", query='container_memory_working_set_bytes{namespace="shop"} > 1e6')["result"]
    assert {r["metric"]["pod"] for r in memory} >= set(pods)
    targets = [t for t in api(lab, "/api/v1/targets")["activeTargets"] if t["scrapePool"] == "kubelet"]
    assert targets and all(t["health"] == "up" for t in targets)


def test_api_server_request_metrics(lab: Lab) -> None:
    def lists() -> list[dict[str, Any]]:
        query = 'sum by (instance) (apiserver_request_total{resource="pods",verb="LIST",code="200"})'
        return api(lab, "/api/v1/query", query=query)["result"]

    result = wait_until(lists, 60, "the API servers' request counts")
    assert all(float(r["value"][1]) > 0 for r in result)
    def scraped() -> list[dict[str, Any]]:
        found = [t for t in api(lab, "/api/v1/targets")["activeTargets"] if t["scrapePool"] == "apiserver"]
        return found if all(t["health"] != "unknown" for t in found) else []

    targets = wait_until(scraped, 30, "every API server scraped once")
    assert len(targets) == 3 and all(t["health"] == "up" for t in targets), targets
    p95 = api(lab, "/api/v1/query", query="histogram_quantile(0.95, sum by (le) "
              "(apiserver_request_duration_seconds_bucket{verb=\"GET\"}))")["result"]
    assert p95 and 0 < float(p95[0]["value"][1]) <= 60
    server = lab.endpoints.products["kubernetes"].servers[0]
    denied = requests.get(f"{server}/metrics", verify=False, timeout=10)
    assert denied.status_code == 403  # anonymous may not read /metrics (RBAC), as on the real API server


def test_a_deleted_pods_target_goes_away_and_its_series_end(lab: Lab) -> None:
    wait_until(lambda: set(running_pods(lab)) <= set(shop_targets(lab)), 120, "every shop pod scraped")
    victim = sorted(n for n in running_pods(lab) if n.startswith("orders-"))[0]
    query = f'up{{pod="{victim}"}}'
    assert api(lab, "/api/v1/query", query=query)["result"]
    kubectl(lab, "-n", "shop", "delete", "pod", victim, "--wait=true", timeout=120)
    wait_until(lambda: victim not in shop_targets(lab), 60, "the deleted pod's target to go")
    assert api(lab, "/api/v1/query", query=query)["result"] == []  # stale: gone at once, not after 5 minutes
