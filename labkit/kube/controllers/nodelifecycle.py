"""The node lifecycle controller: a node whose Lease goes stale is NotReady and tainted unreachable;
pods that do not tolerate the taint (or stop tolerating it) are evicted."""

from __future__ import annotations

import copy
import time

from ...core.timings import timings
from ..apiserver.objects import now
from .base import MANAGER, Controller, Key, Obj, active, parse_time
from .scheduler import tolerates

GRACE = timings("sim").not_ready_seconds  # without a Lease renewal before NotReady (stock: 40-50 s)
UNREACHABLE = "node.kubernetes.io/unreachable"


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"
    watches = ("/nodes",)
    resync = 1.0

    def reconcile(self, key: Key) -> None:
        node = self.store.get("/nodes", "", key[1])
        if node is None:
            return
        lease = self.store.get("coordination.k8s.io/leases", "kube-node-lease", key[1])
        renewed = parse_time((lease or {}).get("spec", {}).get("renewTime"))
        stale = lease is not None and time.time() - renewed > GRACE
        taints = node["spec"].get("taints") or []
        tainted = any(t["key"] == UNREACHABLE for t in taints)
        if stale and not tainted:
            self._mark_unreachable(node)
        elif not stale and tainted and lease is not None:
            self._mark_reachable(node)
        node = self.store.get("/nodes", "", key[1]) or node
        self._evict(node)

    def _mark_unreachable(self, node: Obj) -> None:
        nodes = self.rt("", "v1", "nodes")
        new = copy.deepcopy(node)
        stamp = now()
        for c in new.get("status", {}).get("conditions", []):
            if c["status"] != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
        self.objects.update(nodes, "", node["metadata"]["name"], new, MANAGER, "status")
        fresh = copy.deepcopy(self.store.get("/nodes", "", node["metadata"]["name"]))
        fresh["spec"]["taints"] = [*(fresh["spec"].get("taints") or []),
                                   {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": stamp},
                                   {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp}]
        self.objects.update(nodes, "", node["metadata"]["name"], fresh, MANAGER)
        self.recorder.emit(fresh, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: "
                           "NodeNotReady", "node-controller")
        self._pods_not_ready(node["metadata"]["name"])

    def _pods_not_ready(self, node: str) -> None:
        """MarkPodsNotReady: nobody can vouch for the pods of an unreachable node."""
        pods = self.rt("", "v1", "pods")
        for pod in list(self.store.items("/pods")):
            if pod["spec"].get("nodeName") != node or not active(pod):
                continue
            new = copy.deepcopy(pod)
            for c in (new.get("status") or {}).get("conditions") or []:
                if c["type"] in ("Ready", "ContainersReady") and c["status"] == "True":
                    c.update(status="False", lastTransitionTime=now())
            for cs in (new.get("status") or {}).get("containerStatuses") or []:
                cs["ready"] = False
            if new != pod:
                self.objects.update(pods, pod["metadata"]["namespace"], pod["metadata"]["name"], new, MANAGER,
                                    "status")

    def _mark_reachable(self, node: Obj) -> None:
        new = copy.deepcopy(node)
        new["spec"]["taints"] = [t for t in new["spec"].get("taints") or [] if t["key"] != UNREACHABLE]
        if not new["spec"]["taints"]:
            new["spec"].pop("taints")
        self.objects.update(self.rt("", "v1", "nodes"), "", node["metadata"]["name"], new, MANAGER)
        self.recorder.emit(new, "Normal", "NodeReady", f"Node {node['metadata']['name']} status is now: NodeReady",
                           "kubelet", node["metadata"]["name"])

    def _evict(self, node: Obj) -> None:
        """The NoExecute taint manager."""
        taints = [t for t in node["spec"].get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        pods = self.rt("", "v1", "pods")
        for pod in list(self.store.items("/pods")):
            if pod["spec"].get("nodeName") != node["metadata"]["name"] or not active(pod):
                continue
            deadline = 0.0
            for taint in taints:
                if not tolerates(pod, taint):
                    deadline = 0.0
                    break
                seconds = max((t.get("tolerationSeconds") for t in pod["spec"].get("tolerations") or []
                               if t.get("key") in (taint["key"], None) and t.get("tolerationSeconds") is not None),
                              default=None)
                if seconds is None:
                    deadline = float("inf")
                else:
                    deadline = max(deadline, parse_time(taint.get("timeAdded")) + seconds)
            if time.time() >= deadline:
                self.recorder.emit(pod, "Normal", "TaintManagerEviction",
                                   f"Marking for deletion Pod {pod['metadata']['namespace']}/"
                                   f"{pod['metadata']['name']}", "taint-eviction-controller")
                self.objects.delete(pods, pod["metadata"]["namespace"], pod["metadata"]["name"], {}, False)
