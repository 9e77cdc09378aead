"""Resource health as gitops-engine's ``pkg/health`` assesses it (Deployment, StatefulSet, DaemonSet, ReplicaSet,
Pod, Service, Ingress, Job, PersistentVolumeClaim) and an Application's health as the worst of its resources'."""

from __future__ import annotations

from typing import Any

HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN = (
    "Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
ORDER = (HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN)  # gitops-engine's healthOrder

Health = dict[str, str]


def _h(status: str, message: str = "") -> Health:
    return {"status": status, "message": message} if message else {"status": status}


def _generation_observed(obj: dict[str, Any]) -> bool:
    return int(obj["metadata"].get("generation") or 0) <= int((obj.get("status") or {}).get("observedGeneration") or 0)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def deployment(obj: dict[str, Any]) -> Health:
    spec, st, name = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]["name"]
    if spec.get("paused"):
        return _h(SUSPENDED, "Deployment is paused")
    if not _generation_observed(obj):
        return _h(PROGRESSING, "Waiting for rollout to finish: observed deployment generation less than desired "
                               "generation")
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _h(DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    replicas, updated = int(spec.get("replicas", 1)), int(st.get("updatedReplicas") or 0)
    total, available = int(st.get("replicas") or 0), int(st.get("availableReplicas") or 0)
    if updated < replicas:
        return _h(PROGRESSING, f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been "
                               "updated...")
    if total > updated:
        return _h(PROGRESSING, f"Waiting for rollout to finish: {total - updated} old replicas are pending "
                               "termination...")
    if available < updated:
        return _h(PROGRESSING, f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
                               "available...")
    return _h(HEALTHY)


def statefulset(obj: dict[str, Any]) -> Health:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if not st.get("observedGeneration") or not _generation_observed(obj):
        return _h(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas, ready = spec.get("replicas"), int(st.get("readyReplicas") or 0)
    if replicas is not None and ready < int(replicas):
        return _h(PROGRESSING, f"Waiting for {int(replicas) - ready} pods to be ready...")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and replicas is not None:
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if partition and int(st.get("updatedReplicas") or 0) < int(replicas) - partition:
            return _h(PROGRESSING, f"Waiting for partitioned roll out to finish: {st.get('updatedReplicas', 0)} "
                                   f"out of {int(replicas) - partition} new pods have been updated...")
        if partition:
            return _h(HEALTHY, f"partitioned roll out complete: {st.get('updatedReplicas', 0)} new pods have been "
                               "updated...")
    if strategy.get("type") == "OnDelete":
        return _h(HEALTHY, f"statefulset has {ready} ready pods")
    if st.get("updateRevision") != st.get("currentRevision"):
        return _h(PROGRESSING, f"waiting for statefulset rolling update to complete {st.get('updatedReplicas', 0)} "
                               f"pods at revision {st.get('updateRevision')}...")
    return _h(HEALTHY, f"statefulset rolling update complete {st.get('currentReplicas', 0)} pods at revision "
                       f"{st.get('currentRevision')}...")


def daemonset(obj: dict[str, Any]) -> Health:
    spec, st, name = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]["name"]
    if not st.get("observedGeneration") or not _generation_observed(obj):
        return _h(PROGRESSING, "Waiting for rollout to finish: observed daemon set generation less than desired "
                               "generation")
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return _h(HEALTHY, f"daemon set {st.get('currentNumberScheduled', 0)} out of "
                           f"{st.get('desiredNumberScheduled', 0)} new pods have been updated")
    desired, updated = int(st.get("desiredNumberScheduled") or 0), int(st.get("updatedNumberScheduled") or 0)
    available = int(st.get("numberAvailable") or 0)
    if updated < desired:
        return _h(PROGRESSING, f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new '
                               "pods have been updated...")
    if available < desired:
        return _h(PROGRESSING, f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} '
                               "updated pods are available...")
    return _h(HEALTHY)


def replicaset(obj: dict[str, Any]) -> Health:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if not _generation_observed(obj):
        return _h(PROGRESSING, "Waiting for rollout to finish: observed replica set generation less than desired "
                               "generation")
    failure = _condition(obj, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return _h(DEGRADED, str(failure.get("message", "")))
    replicas, available = int(spec.get("replicas", 1)), int(st.get("availableReplicas") or 0)
    if available < replicas:
        return _h(PROGRESSING, f"Waiting for rollout to finish: {available} out of {replicas} new replicas are "
                               "available...")
    return _h(HEALTHY)


def _waiting_error(st: dict[str, Any]) -> str:
    """A container waiting for a reason that means it will not start (Err*, *Error, *BackOff)."""
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason", ""))
        if reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff"):
            return str(waiting.get("message") or reason)
    return ""


def pod(obj: dict[str, Any]) -> Health:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if obj["metadata"].get("deletionTimestamp"):
        return _h(PROGRESSING, "Pending deletion")
    phase, message = st.get("phase", ""), str(st.get("message", ""))
    if phase == "Succeeded":
        return _h(HEALTHY, message)
    if phase == "Failed":
        return _h(DEGRADED, message or _waiting_error(st))
    if phase == "Pending":
        error = _waiting_error(st)
        return _h(DEGRADED, error) if error else _h(PROGRESSING, message)
    if phase == "Running":
        if spec.get("restartPolicy", "Always") == "Always":
            ready = _condition(obj, "Ready")
            if ready and ready.get("status") == "True":
                return _h(HEALTHY, message)
            error = _waiting_error(st)
            return _h(DEGRADED, error) if error else _h(PROGRESSING, message)
        return _h(PROGRESSING, message)
    return _h(UNKNOWN, message)


def _load_balanced(obj: dict[str, Any]) -> Health:
    ingress = (((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    return _h(HEALTHY) if ingress else _h(PROGRESSING)


def service(obj: dict[str, Any]) -> Health:
    return _load_balanced(obj) if (obj.get("spec") or {}).get("type") == "LoadBalancer" else _h(HEALTHY)


def job(obj: dict[str, Any]) -> Health:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Failed":
            return _h(DEGRADED, str(cond.get("message") or cond.get("reason", "")))
        if cond.get("type") == "Complete":
            return _h(HEALTHY, str(cond.get("message", "")))
        if cond.get("type") == "Suspended":
            return _h(SUSPENDED, str(cond.get("message", "")))
    if (obj.get("spec") or {}).get("suspend"):
        return _h(SUSPENDED, "Job is suspended")
    return _h(PROGRESSING, "")


def pvc(obj: dict[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase", "")
    return {"Lost": _h(DEGRADED), "Pending": _h(PROGRESSING), "Bound": _h(HEALTHY)}.get(phase, _h(UNKNOWN))


CHECKS = {("apps", "Deployment"): deployment, ("apps", "StatefulSet"): statefulset,
          ("apps", "DaemonSet"): daemonset, ("apps", "ReplicaSet"): replicaset, ("", "Pod"): pod,
          ("", "Service"): service, ("networking.k8s.io", "Ingress"): _load_balanced, ("batch", "Job"): job,
          ("", "PersistentVolumeClaim"): pvc}


def group_of(obj: dict[str, Any]) -> str:
    api = str(obj.get("apiVersion", ""))
    return api.rsplit("/", 1)[0] if "/" in api else ""


def resource_health(obj: dict[str, Any] | None) -> Health | None:
    """The health of a live object (None: a kind without a health check, which does not count)."""
    if obj is None:
        return _h(MISSING)
    check = CHECKS.get((group_of(obj), obj.get("kind", "")))
    return check(obj) if check else None


def worst(statuses: list[str]) -> str:
    """The Application's health: its least healthy resource's (Healthy when none has a health check)."""
    return max(statuses, key=ORDER.index, default=HEALTHY)
