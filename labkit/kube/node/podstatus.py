"""The pod status a kubelet posts: phase, conditions and one status per init container and container."""

from __future__ import annotations

import copy

from ..apiserver.objects import Objects, now
from ..controllers.base import MANAGER, Obj
from .agent import NodeSpec
from .containers import Container, PodRuntime

TERMINAL = ("Succeeded", "Failed")


def container_status(c: Container, rt: PodRuntime, default_waiting: str) -> Obj:
    """One container's status: its state, its last termination, readiness and restarts."""
    st: Obj = {"name": c.name, "image": c.spec["image"], "imageID": "", "ready": c.ready,
               "restartCount": c.restarts, "started": c.running and c.started}
    if c.spec["image"] in rt.image_refs:
        st["imageID"] = f"{c.spec['image'].split(':')[0]}@{rt.image_refs[c.spec['image']].digest}"
    if c.proc is not None:
        st["containerID"] = f"labkit://{c.proc.pid}"
    if c.running:
        st["state"] = {"running": {"startedAt": c.started_at}}
    elif c.proc is not None:  # its postStart hook runs: not started yet
        st["state"] = {"waiting": {"reason": default_waiting}}
    elif c.waiting is not None:
        reason = default_waiting if c.waiting == ("ContainerCreating", "") else c.waiting[0]
        st["state"] = {"waiting": {"reason": reason, **({"message": c.waiting[1]} if c.waiting[1] else {})}}
    elif c.last_exit is not None:
        st["state"] = {"terminated": c.last_exit}
        st["containerID"] = c.last_exit["containerID"]
    if c.last_exit is not None and "terminated" not in st.get("state", {}):
        st["lastState"] = {"terminated": c.last_exit}
    else:
        st["lastState"] = {}
    return st


def phase(rt: PodRuntime) -> str:
    """The kubelet's getPhase: init containers first, then the app containers (sidecars do not count)."""
    if rt.init_failed:
        return "Failed"
    if not rt.initialized:
        return "Pending"
    apps = rt.of("app")
    waiting = sum(1 for c in apps if not c.running and c.last_exit is None)
    running = sum(1 for c in apps if c.running)
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if not rt.finished:
        return "Running"  # restarting (Always, or OnFailure after a failure)
    return "Succeeded" if all(c.succeeded for c in apps) else "Failed"


def post_status(objects: Objects, node: NodeSpec, pod: Obj, rt: PodRuntime) -> None:
    """Write the pod's status (phase, conditions, container states) when it changed."""
    has_init = bool(rt.of("init", "sidecar"))
    default_waiting = "PodInitializing" if has_init else "ContainerCreating"
    init_statuses = [container_status(c, rt, default_waiting) for c in rt.of("init", "sidecar")]
    statuses = [container_status(c, rt, default_waiting) for c in rt.of("app")]
    current = phase(rt)
    old = pod.get("status") or {}
    conds = {c["type"]: c for c in old.get("conditions") or []}
    stamp = now()

    def cond(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
        prev = conds.get(kind)
        status = "True" if ok else "False"
        keep = prev is not None and prev.get("status") == status
        out: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": prev["lastTransitionTime"] if keep else stamp}
        if reason and not ok:
            out["reason"] = reason
            if message:
                out["message"] = message
        return out

    incomplete = [c.name for c in rt.of("init") if not c.succeeded]
    incomplete += [c.name for c in rt.of("sidecar") if not (c.running and c.started)]
    unready = [c.name for c in rt.of("sidecar", "app") if not c.ready]
    if current in TERMINAL:
        ready_reason, unready_msg = "PodCompleted", ""
    else:
        ready_reason, unready_msg = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    sandbox = rt.volumes is not None and rt.volumes.ready and current not in TERMINAL
    new_conds = [cond("PodReadyToStartContainers", sandbox),
                 cond("Initialized", rt.initialized or (current in TERMINAL and not rt.init_failed),
                      "PodCompleted" if current in TERMINAL else "ContainersNotInitialized",
                      "" if current in TERMINAL else f"containers with incomplete status: [{' '.join(incomplete)}]"),
                 cond("Ready", not unready and current not in TERMINAL, ready_reason, unready_msg),
                 cond("ContainersReady", not unready and current not in TERMINAL, ready_reason, unready_msg),
                 conds.get("PodScheduled") or cond("PodScheduled", True)]
    status = {**old, "phase": current, "conditions": new_conds, "hostIP": node.address,
              "hostIPs": [{"ip": node.address}], "podIP": rt.ip, "podIPs": [{"ip": rt.ip}],
              "startTime": old.get("startTime") or stamp, "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
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
