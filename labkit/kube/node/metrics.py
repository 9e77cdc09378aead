"""A node's kubelet metrics listener (the kubelet's port 10250, on the node's address): ``/metrics/cadvisor`` with
cAdvisor's ``container_cpu_usage_seconds_total`` (the cumulative CPU time of each container's process tree) and
``container_memory_working_set_bytes`` (its resident memory), labelled as the kubelet labels them (``container``,
``id``, ``image``, ``name``, ``namespace``, ``pod``); ``/metrics`` with the kubelet's own ``kubelet_running_pods``
and ``kubelet_running_containers``; ``/healthz``. Plain HTTP without authentication (the real kubelet serves TLS
with the API server's token review), which the chapter's scrape config does not rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ...core.http import Listeners

if TYPE_CHECKING:
    from .kubelet import Kubelet

LABELS = ["container", "id", "image", "name", "namespace", "pod"]
TEXT = "text/plain; version=0.0.4; charset=utf-8"


class _Families(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def _exposition(families: list[Any]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


class KubeletMetrics:
    """Serves one kubelet's metrics on ``address`` while its node runs."""

    def __init__(self, kubelet: Kubelet, address: tuple[str, int]) -> None:
        self.kubelet, self.address = kubelet, address
        self.listeners: Listeners | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics/cadvisor", self.cadvisor)
        app.router.add_get("/metrics", self.own)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def start(self) -> None:
        if self.listeners is None:
            self.listeners = Listeners(self.app(), [self.address])
            await self.listeners.start()

    async def stop(self) -> None:
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None

    def cadvisor_families(self) -> list[Any]:
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "Cumulative cpu time consumed in seconds.",
                                  labels=LABELS)
        memory = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set in bytes.",
                                   labels=LABELS)
        kubelet = self.kubelet
        by_uid = {p["metadata"]["uid"]: p for p in kubelet.objects.store.items("/pods")}
        kubelet.usage.sample(list(kubelet.pods.values()))
        for rt in list(kubelet.pods.values()):
            pod = by_uid.get(rt.uid)
            if pod is None:
                continue
            images = {c["name"]: c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []}
            for c in rt.containers.values():
                reading = kubelet.usage.cumulative(rt.uid, c.name)
                if reading is None:
                    continue
                seconds, resident = reading
                labels = [c.name, f"/kubepods/pod{rt.uid}/{c.name}", images.get(c.name, ""), c.name,
                          pod["metadata"]["namespace"], pod["metadata"]["name"]]
                cpu.add_metric(labels, seconds)
                memory.add_metric(labels, float(resident))
        return [cpu, memory]

    async def cadvisor(self, request: web.Request) -> web.Response:
        return web.Response(body=_exposition(self.cadvisor_families()), headers={"Content-Type": TEXT})

    async def own(self, request: web.Request) -> web.Response:
        pods = GaugeMetricFamily("kubelet_running_pods", "Number of pods that have a running pod sandbox")
        containers = GaugeMetricFamily("kubelet_running_containers", "Number of containers currently running",
                                       labels=["container_state"])
        running = [rt for rt in self.kubelet.pods.values() if not rt.terminating]
        pods.add_metric([], float(len(running)))
        containers.add_metric(["running"], float(sum(c.proc is not None for rt in running
                                                     for c in rt.containers.values())))
        return web.Response(body=_exposition([pods, containers]), headers={"Content-Type": TEXT})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")
