"""The lab's nodes: three RKE2 "server" nodes and two "agent" nodes, each with a heartbeat.

A node's agent registers the Node object and renews its Lease in
kube-node-lease, as a kubelet does; stopping it (``labkit node stop``) stops
the heartbeat, so the node lifecycle controller marks it NotReady.
"""

from __future__ import annotations

import asyncio
import copy
import os
import platform
from dataclasses import dataclass
from typing import Any

from ...core.addresses import NODES, SERVERS, node_address
from ...core.tasks import cancel
from ...core.timings import timings
from ..apiserver.objects import Objects, now
from ..controllers.base import MANAGER

KUBELET_VERSION = "v1.37.0+rke2r1"
HEARTBEAT = timings("sim").heartbeat_seconds  # between Lease renewals (10 s in a stock kubelet)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str  # server or agent
    address: str


def node_specs(address: Any) -> list[NodeSpec]:
    """The lab's nodes (``core.addresses``); ``address(third, fourth)`` gives a loopback address of its block."""
    return [NodeSpec(name, "server" if name in SERVERS else "agent", address(*node_address(name))) for name in NODES]


def node_object(spec: NodeSpec) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
              "node.kubernetes.io/instance-type": "rke2"}
    taints = []
    if spec.role == "server":
        labels.update({"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true",
                       "node-role.kubernetes.io/master": "true"})
        taints.append({"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"})
    resources = {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": spec.name, "labels": labels,
                         "annotations": {"rke2.io/node-args": f'["{spec.role}"]'}},
            "spec": {"taints": taints} if taints else {},
            "status": {"capacity": resources, "allocatable": resources,
                       "addresses": [{"type": "InternalIP", "address": spec.address},
                                     {"type": "Hostname", "address": spec.name}],
                       "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                                    "containerRuntimeVersion": "labkit://0.1", "operatingSystem": "linux",
                                    "architecture": "amd64", "osImage": "labkit sim (" + platform.system() + ")",
                                    "kernelVersion": platform.release(), "machineID": spec.name,
                                    "systemUUID": spec.name, "bootID": str(os.getpid())},
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}


def ready_conditions(ready: bool) -> list[dict[str, Any]]:
    stamp = now()

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}

    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
                 "kubelet is posting ready status" if ready else "kubelet is stopped")]


class NodeAgent:
    """One node's heartbeat: registers the Node, posts Ready, renews the Lease."""

    def __init__(self, objects: Objects, spec: NodeSpec) -> None:
        self.objects = objects
        self.spec = spec
        self.task: asyncio.Task[None] | None = None
        self.metrics: Any = None  # the kubelet's metrics listener (node/metrics.py), served while the node runs
        self._metrics_start: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        if self.running:
            return
        nodes = self.objects.registry.find("", "v1", "nodes")
        assert nodes is not None
        current = self.objects.store.get("/nodes", "", self.spec.name)
        if current is None:
            obj = node_object(self.spec)
            created, _ = self.objects.create(nodes, "", obj, MANAGER)
            current = created
        ready = copy.deepcopy(current)
        ready["status"] = {**node_object(self.spec)["status"], "conditions": ready_conditions(True)}
        self.objects.update(nodes, "", self.spec.name, ready, MANAGER, "status")
        self.task = asyncio.get_running_loop().create_task(self._beat())
        if self.metrics is not None:
            self._metrics_start = asyncio.get_running_loop().create_task(self.metrics.start())

    async def stop(self) -> None:
        await cancel(self.task)
        self.task = None
        if self.metrics is not None:
            if self._metrics_start is not None:
                await asyncio.gather(self._metrics_start, return_exceptions=True)
            await self.metrics.stop()

    async def _beat(self) -> None:
        leases = self.objects.registry.find("coordination.k8s.io", "v1", "leases")
        assert leases is not None
        while True:
            lease = self.objects.store.get(leases.key, "kube-node-lease", self.spec.name)
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.spec.name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": self.spec.name, "leaseDurationSeconds": 40,
                             "renewTime": now_micro()}}
            if lease is None:
                self.objects.create(leases, "kube-node-lease", body, MANAGER)
            else:
                self.objects.update(leases, "kube-node-lease", self.spec.name,
                                    {**lease, "spec": body["spec"]}, MANAGER)
            await asyncio.sleep(HEARTBEAT)


def now_micro() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
