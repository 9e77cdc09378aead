"""The pod status a kubelet posts: phase, conditions and one status per container."""

from __future__ import annotations

import copy

from ..apiserver.objects import Objects, now
from ..controllers.base import MANAGER, Obj
from .agent import NodeSpec
from .containers import PodRuntime


def post_status(objects: Objects, node: NodeSpec, pod: Obj, rt: PodRuntime) -> None:
    """Write the pod's status (phase, conditions, container states) when it changed."""
    statuses = []
    for c in rt.containers.values():
        st: Obj = {"name": c.name, "image": c.spec["image"], "imageID": "", "ready": c.ready,
                   "restartCount": c.restarts, "started": c.proc is not None and c.started}
        if c.spec["image"] in rt.image_refs:
            st["imageID"] = f"{c.spec['image'].split(':')[0]}@{rt.image_refs[c.spec['image']].digest}"
        if c.proc is not None:
            st["state"] = {"running": {"startedAt": c.started_at}}
            st["containerID"] = f"labkit://{c.proc.pid}"
        elif c.waiting is not None:
            st["state"] = {"waiting": {"reason": c.waiting[0], **({"message": c.waiting[1]} if c.waiting[1]
                                                                   else {})}}
        elif c.last_exit is not None:
            st["state"] = {"terminated": c.last_exit}
        if (c.last_exit is not None and c.proc is not None) or (c.waiting and c.last_exit):
            st["lastState"] = {"terminated": c.last_exit}
        statuses.append(st)
    exits = [c.last_exit for c in rt.containers.values()]
    if all(c.proc is None and c.waiting is None and c.last_exit for c in rt.containers.values()):
        phase = "Succeeded" if all(e and e["exitCode"] == 0 for e in exits) else "Failed"
    elif any(c.proc is not None or c.last_exit for c in rt.containers.values()):
        phase = "Running"
    else:
        phase = "Pending"
    ready = all(c.ready for c in rt.containers.values())
    old = pod.get("status") or {}
    conds = {c["type"]: c for c in old.get("conditions") or []}
    stamp = now()

    def cond(kind: str, ok: bool, reason: str = "") -> Obj:
        prev = conds.get(kind)
        status = "True" if ok else "False"
        keep = prev is not None and prev.get("status") == status
        out: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": prev["lastTransitionTime"] if keep else stamp}
        if reason and not ok:
            out["reason"] = reason
        return out

    new_conds = [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                 cond("Ready", ready, "ContainersNotReady"), cond("ContainersReady", ready, "ContainersNotReady"),
                 conds.get("PodScheduled") or cond("PodScheduled", True)]
    status = {**old, "phase": phase, "conditions": new_conds, "hostIP": node.address,
              "hostIPs": [{"ip": node.address}], "podIP": rt.ip, "podIPs": [{"ip": rt.ip}],
              "startTime": old.get("startTime") or stamp, "containerStatuses": statuses}
    if _comparable(status) != _comparable(old):
        fresh = objects.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if fresh is None or fresh["metadata"]["uid"] != rt.uid:
            return
        pods = objects.registry.find("", "v1", "pods")
        assert pods is not None
        objects.update(pods, pod["metadata"]["namespace"], pod["metadata"]["name"],
                            {**copy.deepcopy(fresh), "status": status}, MANAGER, "status")



def _comparable(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if k not in ("conditions",)} | {
        "conditions": [{k: v for k, v in c.items() if not k.endswith("Time")} for c in status.get("conditions") or []]}

