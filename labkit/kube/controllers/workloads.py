"""The Job and DaemonSet controllers."""

from __future__ import annotations

from collections.abc import Iterable

from ..apiserver.objects import now
from ..apiserver.store import Event
from .base import MANAGER, Controller, Key, active, owned_by, pod_ready
from .replicaset import pod_from_template
from .scheduler import node_ready, tolerates


class JobController(Controller):
    """Runs pods to completion: parallelism, completions, backoffLimit, the Complete/Failed conditions."""

    name = "job-controller"
    watches = ("batch/jobs", "/pods")
    owner_kind = "Job"

    def reconcile(self, key: Key) -> None:
        job = self.store.get("batch/jobs", *key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, status = job["spec"], dict(job.get("status") or {})
        pods = [p for p in self.store.items("/pods", key[0]) if owned_by(p, job)]
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        running = [p for p in pods if active(p)]
        completions, limit = spec.get("completions", 1), spec.get("backoffLimit", 6)
        done = any(c["type"] in ("Complete", "Failed") for c in status.get("conditions") or [])
        if not done and succeeded >= completions:
            status["conditions"] = [{"type": "Complete", "status": "True", "lastProbeTime": now(),
                                     "lastTransitionTime": now()}]
            status["completionTime"] = now()
            self.recorder.emit(job, "Normal", "Completed", "Job completed", "job-controller")
        elif not done and failed > limit:
            status["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                     "message": "Job has reached the specified backoff limit",
                                     "lastProbeTime": now(), "lastTransitionTime": now()}]
            self.recorder.emit(job, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                               "job-controller")
        elif not done and not spec.get("suspend"):
            want = min(spec.get("parallelism", 1), completions - succeeded) - len(running)
            template = {**spec["template"], "metadata": {**(spec["template"].get("metadata") or {})}}
            for _ in range(max(0, want)):
                pod, _ = self.objects.create(self.rt("", "v1", "pods"), key[0], pod_from_template(job, template),
                                             MANAGER)
                self.recorder.emit(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                   "job-controller")
        status.update({"active": len(running), "succeeded": succeeded, "failed": failed,
                       "startTime": status.get("startTime") or now()})
        status = {k: v for k, v in status.items() if v or k in ("startTime",)}
        if status != (job.get("status") or {}):
            self.objects.update(self.rt("batch", "v1", "jobs"), *key, {**job, "status": status}, MANAGER, "status")


class DaemonSetController(Controller):
    """One pod per eligible node (tolerations and nodeSelector decide where)."""

    name = "daemonset-controller"
    watches = ("apps/daemonsets", "/pods", "/nodes")
    owner_kind = "DaemonSet"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        return self.all_keys() if ev.key == "/nodes" else super().keys_for(ev)

    def reconcile(self, key: Key) -> None:
        ds = self.store.get("apps/daemonsets", *key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        template = ds["spec"]["template"]
        probe = {"spec": template["spec"]}
        selector = template["spec"].get("nodeSelector") or {}
        nodes = [n for n in self.store.items("/nodes")
                 if all(tolerates(probe, t) for t in n["spec"].get("taints") or [] if t["effect"] != "PreferNoSchedule")
                 and all((n["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        pods = [p for p in self.store.items("/pods", key[0]) if owned_by(p, ds) and active(p)]
        placed = {p["spec"].get("nodeName") for p in pods}
        pods_rt = self.rt("", "v1", "pods")
        for node in nodes:
            name = node["metadata"]["name"]
            if name not in placed and node_ready(node):
                pod = pod_from_template(ds, template)
                pod["spec"]["nodeName"] = name  # DaemonSet pods are bound by their controller's affinity
                created, _ = self.objects.create(pods_rt, key[0], pod, MANAGER)
                self.recorder.emit(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                                   "daemonset-controller")
        wanted = {n["metadata"]["name"] for n in nodes}
        for pod in pods:
            if pod["spec"].get("nodeName") not in wanted:
                self.objects.delete(pods_rt, key[0], pod["metadata"]["name"], {}, False)
        pods = [p for p in self.store.items("/pods", key[0]) if owned_by(p, ds) and active(p)]
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"desiredNumberScheduled": len(nodes), "currentNumberScheduled": len(pods),
                  "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": len(pods),
                  "numberMisscheduled": 0, "observedGeneration": ds["metadata"]["generation"]}
        if status != (ds.get("status") or {}):
            self.objects.update(self.rt("apps", "v1", "daemonsets"), *key, {**ds, "status": status}, MANAGER,
                                "status")
