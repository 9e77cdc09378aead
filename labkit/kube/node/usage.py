"""What metrics-server would report for a node's pods (``kubectl top``): CPU and memory of their processes."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterable

from ..apiserver.objects import Objects, now
from ..controllers.base import Obj
from .containers import PodRuntime


def pod_metrics(objects: Objects, pods: Iterable[PodRuntime]) -> list[Obj]:
    """PodMetrics of this node's pods: CPU (nanocores) and memory of each container's processes."""
    out = []
    stamp = now()
    for rt in pods:
        pod = next((p for p in objects.store.items("/pods") if p["metadata"]["uid"] == rt.uid), None)
        if pod is None:
            continue
        containers = [{"name": c.name, "usage": _usage(c.proc)} for c in rt.containers.values()
                      if c.proc is not None]
        out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                                 "labels": pod["metadata"].get("labels") or {}, "creationTimestamp": stamp},
                    "timestamp": stamp, "window": "10s", "containers": containers})
    return out

def node_metrics(node: str, pods: list[Obj]) -> Obj:
    cpu = mem = 0
    for pod in pods:
        for c in pod["containers"]:
            cpu += int(c["usage"]["cpu"].rstrip("n"))
            mem += int(c["usage"]["memory"].rstrip("Ki"))
    stamp = now()
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": node, "creationTimestamp": stamp,
                         "labels": {"kubernetes.io/hostname": node}},
            "timestamp": stamp, "window": "10s", "usage": {"cpu": f"{cpu}n", "memory": f"{mem}Ki"}}



def _usage(proc: subprocess.Popen[bytes] | None) -> dict[str, str]:
    """CPU since start as an average rate (nanocores) and resident memory of a container's processes."""
    import psutil

    cpu_ns, mem = 0.0, 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(proc.pid) if proc else None
        for p in [root, *root.children(recursive=True)] if root else []:
            t = p.cpu_times()
            age = max(time.time() - p.create_time(), 1e-3)
            cpu_ns += (t.user + t.system) / age * 1e9
            mem += p.memory_info().rss
    return {"cpu": f"{int(cpu_ns)}n", "memory": f"{mem // 1024}Ki"}


