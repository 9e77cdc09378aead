"""The ReplicaSet controller: keep spec.replicas pods, report how many are ready and available."""

from __future__ import annotations

import copy
import time

from .base import MANAGER, Controller, Key, Obj, active, owned_by, owner_ref, pod_ready, ready_since


def pod_from_template(owner: Obj, template: Obj) -> Obj:
    meta = copy.deepcopy(template.get("metadata") or {})
    meta["generateName"] = owner["metadata"]["name"] + "-"
    meta["ownerReferences"] = [owner_ref(owner)]
    meta.pop("name", None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template["spec"])}


def deletion_rank(pod: Obj) -> tuple[int, int, float]:
    """Pods to remove first: unscheduled, then not ready, then the newest (as the real controller)."""
    return (0 if not pod["spec"].get("nodeName") else 1, 1 if pod_ready(pod) else 0,
            -ready_since(pod))


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    watches = ("apps/replicasets", "/pods")
    owner_kind = "ReplicaSet"

    def reconcile(self, key: Key) -> None:
        ns, name = key
        rs = self.store.get("apps/replicasets", ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods_rt = self.rt("", "v1", "pods")
        pods = [p for p in self.store.items("/pods", ns) if owned_by(p, rs)]
        alive = [p for p in pods if active(p)]
        want = rs["spec"].get("replicas", 1)
        if len(alive) < want:
            for _ in range(want - len(alive)):
                pod, _ = self.objects.create(pods_rt, ns, pod_from_template(rs, rs["spec"]["template"]), MANAGER)
                self.recorder.emit(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                   "replicaset-controller")
        elif len(alive) > want:
            for pod in sorted(alive, key=deletion_rank)[: len(alive) - want]:
                self.objects.delete(pods_rt, ns, pod["metadata"]["name"], {}, False)
                self.recorder.emit(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                   "replicaset-controller")
        self._status(rs)

    def _status(self, rs: Obj) -> None:
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        rs = self.store.get("apps/replicasets", ns, name) or rs
        alive = [p for p in self.store.items("/pods", ns) if owned_by(p, rs) and active(p)]
        min_ready = rs["spec"].get("minReadySeconds", 0)
        ready = [p for p in alive if pod_ready(p)]
        available = [p for p in ready if time.time() - ready_since(p) >= min_ready]
        status = {"replicas": len(alive), "fullyLabeledReplicas": len(alive), "readyReplicas": len(ready),
                  "availableReplicas": len(available), "observedGeneration": rs["metadata"]["generation"]}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if (rs.get("status") or {}) != status:
            self.objects.update(self.rt("apps", "v1", "replicasets"), ns, name, {**rs, "status": status},
                                MANAGER, "status")
