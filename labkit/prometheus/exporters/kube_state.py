"""kube-state-metrics' series (as its v2 names and labels them) from the lab's API server, listed at each scrape:
pods (``kube_pod_info``, ``kube_pod_status_phase``, ``kube_pod_status_ready``,
``kube_pod_container_status_restarts_total``, ``kube_pod_container_status_ready``), deployments
(``kube_deployment_spec_replicas``, ``kube_deployment_status_replicas``, ``..._available``, ``..._unavailable``,
``..._updated``) and nodes (``kube_node_info``, ``kube_node_status_condition``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..scrape.kubernetes import KubeLister

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_VALUES = ("true", "false", "unknown")


def _gauge(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=labels)


def pod_families(pods: list[dict[str, Any]]) -> list[GaugeMetricFamily | CounterMetricFamily]:
    info = _gauge("kube_pod_info", "Information about pod.",
                  ["namespace", "pod", "uid", "host_ip", "pod_ip", "node", "created_by_kind", "created_by_name"])
    phase = _gauge("kube_pod_status_phase", "The pods current phase.", ["namespace", "pod", "uid", "phase"])
    ready = _gauge("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.",
                   ["namespace", "pod", "uid", "condition"])
    restarts = CounterMetricFamily("kube_pod_container_status_restarts",
                                   "The number of container restarts per container.",
                                   labels=["namespace", "pod", "uid", "container"])
    container_ready = _gauge("kube_pod_container_status_ready",
                             "Describes whether the containers readiness check succeeded.",
                             ["namespace", "pod", "uid", "container"])
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        key = [meta["namespace"], meta["name"], meta.get("uid", "")]
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), {})
        info.add_metric([*key, status.get("hostIP", ""), status.get("podIP", ""), spec.get("nodeName", ""),
                         owner.get("kind", "<none>"), owner.get("name", "<none>")], 1)
        for p in PHASES:
            phase.add_metric([*key, p], 1.0 if status.get("phase") == p else 0.0)
        cond = next((c.get("status", "Unknown").lower() for c in status.get("conditions") or []
                     if c.get("type") == "Ready"), None)
        if cond is not None:
            for value in CONDITION_VALUES:
                ready.add_metric([*key, value], 1.0 if cond == value else 0.0)
        for c in status.get("containerStatuses") or []:
            restarts.add_metric([*key, c["name"]], float(c.get("restartCount", 0)))
            container_ready.add_metric([*key, c["name"]], 1.0 if c.get("ready") else 0.0)
    return [info, phase, ready, restarts, container_ready]


def deployment_families(deployments: list[dict[str, Any]]) -> list[GaugeMetricFamily]:
    fields = {"kube_deployment_spec_replicas": ("spec", "replicas", "Number of desired pods for a deployment."),
              "kube_deployment_status_replicas": ("status", "replicas",
                                                  "The number of replicas per deployment."),
              "kube_deployment_status_replicas_available": ("status", "availableReplicas",
                                                            "The number of available replicas per deployment."),
              "kube_deployment_status_replicas_unavailable": ("status", "unavailableReplicas",
                                                              "The number of unavailable replicas per deployment."),
              "kube_deployment_status_replicas_updated": ("status", "updatedReplicas",
                                                          "The number of updated replicas per deployment.")}
    out = []
    for name, (section, field, help_text) in fields.items():
        family = _gauge(name, help_text, ["namespace", "deployment"])
        for d in deployments:
            default = 1 if (section, field) == ("spec", "replicas") else 0
            family.add_metric([d["metadata"]["namespace"], d["metadata"]["name"]],
                              float((d.get(section) or {}).get(field, default)))
        out.append(family)
    return out


def node_families(nodes: list[dict[str, Any]]) -> list[GaugeMetricFamily]:
    info = _gauge("kube_node_info", "Information about a cluster node.",
                  ["node", "kubelet_version", "internal_ip", "provider_id"])
    condition = _gauge("kube_node_status_condition", "The condition of a cluster node.",
                       ["node", "condition", "status"])
    for n in nodes:
        status = n.get("status") or {}
        ip = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        info.add_metric([n["metadata"]["name"], (status.get("nodeInfo") or {}).get("kubeletVersion", ""), ip,
                         (n.get("spec") or {}).get("providerID", "")], 1)
        for c in status.get("conditions") or []:
            for value in CONDITION_VALUES:
                condition.add_metric([n["metadata"]["name"], c["type"], value],
                                     1.0 if c.get("status", "Unknown").lower() == value else 0.0)
    return [info, condition]


class Snapshot(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


class KubeStateMetrics:
    """``GET /metrics``: the cluster's objects as kube-state-metrics exposes them (listed on each request)."""

    def __init__(self, kubeconfig: str) -> None:
        self.lister = KubeLister(kubeconfig)

    async def render(self) -> bytes:
        pods = await self.lister.list("pods")
        deployments = await self.lister.list("deployments", group="/apis/apps/v1")
        nodes = await self.lister.list("nodes")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Snapshot([*pod_families(pods), *deployment_families(deployments),
                                    *node_families(nodes)]))
        return generate_latest(registry)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=await self.render(), headers={"Content-Type": "text/plain; version=0.0.4"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", lambda r: _ok())
        return app

    async def close(self) -> None:
        await self.lister.close()


async def _ok() -> web.Response:
    return web.Response(text="OK")
