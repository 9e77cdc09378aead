"""Conversion between the versions of a built-in kind that share one stored object.

A kind served in several versions is stored in one of them (its storage version); a request in another
version is decoded against that version's schema, converted for storage, and every answer is converted
back, as the API server's codecs do. Today: HorizontalPodAutoscaler, stored as ``autoscaling/v2`` and also
served as ``autoscaling/v1``, where what v1 cannot hold (other metrics, their status, the conditions and
the behavior) travels in the ``autoscaling.alpha.kubernetes.io/*`` annotations, as upstream's
``pkg/apis/autoscaling/v1/conversion.go`` does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]

HPA = "HorizontalPodAutoscaler"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
DEFAULT_CPU_UTILIZATION = 80  # autoscaling.DefaultCPUUtilization: v1's implicit target

# (apiVersion, kind) of a served, non-storage version -> its storage apiVersion
STORAGE: dict[tuple[str, str], str] = {("autoscaling/v1", HPA): "autoscaling/v2"}


def storage_version(api_version: str, kind: str) -> str | None:
    """The apiVersion objects of ``kind`` served as ``api_version`` are stored in, when it is another one."""
    return STORAGE.get((api_version, kind))


def convert(obj: Obj, api_version: str) -> Obj:
    """``obj`` (a stored object, or one in a served version) as ``api_version`` shows it."""
    have = obj.get("apiVersion", "")
    if have == api_version:
        return obj
    kind = obj.get("kind", "")
    if storage_version(api_version, kind) == have:
        return _TO_SERVED[(api_version, kind)](obj)
    if storage_version(have, kind) == api_version:
        return _TO_STORAGE[(have, kind)](obj)
    return {**obj, "apiVersion": api_version}


def to_storage(obj: Obj) -> Obj:
    """A written object in its storage version (unchanged when it is in it already)."""
    target = storage_version(obj.get("apiVersion", ""), obj.get("kind", ""))
    return convert(obj, target) if target else obj


# ------------------------------------------------------------------------------- metric sources (v1 <-> v2)

def _some(**fields: Any) -> Obj:
    return {k: v for k, v in fields.items() if v is not None}


def _target(utilization: Any = None, average: Any = None, value: Any = None) -> Obj:
    kind = "Utilization" if utilization is not None else "Value" if value is not None else "AverageValue"
    return _some(type=kind, value=value, averageValue=average, averageUtilization=utilization)


def _metric_to_v1(m: Obj) -> Obj:
    kind, t = m.get("type"), lambda src: (src or {}).get("target") or {}
    if kind in ("Resource", "ContainerResource"):
        src = m.get("resource" if kind == "Resource" else "containerResource") or {}
        body = _some(name=src.get("name"), targetAverageUtilization=t(src).get("averageUtilization"),
                     targetAverageValue=t(src).get("averageValue"), container=src.get("container"))
        return {"type": kind, kind[0].lower() + kind[1:]: body}
    if kind == "Pods":
        src = m.get("pods") or {}
        return {"type": kind, "pods": _some(metricName=(src.get("metric") or {}).get("name"),
                                            targetAverageValue=t(src).get("averageValue"),
                                            selector=(src.get("metric") or {}).get("selector"))}
    if kind == "Object":
        src = m.get("object") or {}
        return {"type": kind, "object": _some(target=src.get("describedObject"),
                                              metricName=(src.get("metric") or {}).get("name"),
                                              targetValue=t(src).get("value"),
                                              selector=(src.get("metric") or {}).get("selector"),
                                              averageValue=t(src).get("averageValue"))}
    if kind == "External":
        src = m.get("external") or {}
        return {"type": kind, "external": _some(metricName=(src.get("metric") or {}).get("name"),
                                                metricSelector=(src.get("metric") or {}).get("selector"),
                                                targetValue=t(src).get("value"),
                                                targetAverageValue=t(src).get("averageValue"))}
    return copy.deepcopy(m)


def _metric_to_v2(m: Obj) -> Obj:
    kind = m.get("type")
    if kind in ("Resource", "ContainerResource"):
        key = kind[0].lower() + kind[1:]
        src = m.get(key) or {}
        return {"type": kind, key: _some(name=src.get("name"), container=src.get("container"),
                                         target=_target(src.get("targetAverageUtilization"),
                                                        src.get("targetAverageValue")))}
    if kind == "Pods":
        src = m.get("pods") or {}
        return {"type": kind, "pods": {"metric": _some(name=src.get("metricName"), selector=src.get("selector")),
                                       "target": _target(average=src.get("targetAverageValue"))}}
    if kind == "Object":
        src = m.get("object") or {}
        return {"type": kind, "object": _some(
            describedObject=src.get("target"), metric=_some(name=src.get("metricName"), selector=src.get("selector")),
            target=_target(average=src.get("averageValue"),
                           value=src.get("targetValue") if src.get("averageValue") is None else None))}
    if kind == "External":
        src = m.get("external") or {}
        return {"type": kind, "external": {
            "metric": _some(name=src.get("metricName"), selector=src.get("metricSelector")),
            "target": _target(average=src.get("targetAverageValue"), value=src.get("targetValue"))}}
    return copy.deepcopy(m)


def _status_to_v1(m: Obj) -> Obj:
    kind = m.get("type")
    key = (kind or "")[:1].lower() + (kind or "")[1:]
    src = m.get(key) or {}
    cur = src.get("current") or {}
    metric = src.get("metric") or {}
    if kind in ("Resource", "ContainerResource"):
        body = _some(name=src.get("name"), currentAverageUtilization=cur.get("averageUtilization"),
                     currentAverageValue=cur.get("averageValue"), container=src.get("container"))
    elif kind == "Pods":
        body = _some(metricName=metric.get("name"), currentAverageValue=cur.get("averageValue"),
                     selector=metric.get("selector"))
    elif kind == "Object":
        body = _some(target=src.get("describedObject"), metricName=metric.get("name"),
                     currentValue=cur.get("value"), selector=metric.get("selector"),
                     averageValue=cur.get("averageValue"))
    elif kind == "External":
        body = _some(metricName=metric.get("name"), metricSelector=metric.get("selector"),
                     currentValue=cur.get("value"), currentAverageValue=cur.get("averageValue"))
    else:
        return copy.deepcopy(m)
    return {"type": kind, key: body}


def _status_to_v2(m: Obj) -> Obj:
    kind = m.get("type")
    key = (kind or "")[:1].lower() + (kind or "")[1:]
    src = m.get(key) or {}
    if kind in ("Resource", "ContainerResource"):
        body = _some(name=src.get("name"), container=src.get("container"),
                     current=_some(averageValue=src.get("currentAverageValue"),
                                   averageUtilization=src.get("currentAverageUtilization")))
    elif kind == "Pods":
        body = {"metric": _some(name=src.get("metricName"), selector=src.get("selector")),
                "current": _some(averageValue=src.get("currentAverageValue"))}
    elif kind == "Object":
        body = _some(describedObject=src.get("target"),
                     metric=_some(name=src.get("metricName"), selector=src.get("selector")),
                     current=_some(value=src.get("currentValue"), averageValue=src.get("averageValue")))
    elif kind == "External":
        body = {"metric": _some(name=src.get("metricName"), selector=src.get("metricSelector")),
                "current": _some(value=src.get("currentValue"), averageValue=src.get("currentAverageValue"))}
    else:
        return copy.deepcopy(m)
    return {"type": kind, key: body}


def _go_names(value: Any, upper: bool) -> Any:
    """The behavior annotation holds the internal Go type, marshalled without JSON tags (``ScaleUp``)."""
    if isinstance(value, dict):
        case: Callable[[str], str] = (lambda k: k[:1].upper() + k[1:]) if upper else (lambda k: k[:1].lower() + k[1:])
        return {case(k): _go_names(v, upper) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_names(v, upper) for v in value]
    return value


def _is_cpu_utilization(m: Obj) -> bool:
    res = m.get("resource") or {}
    return (m.get("type") == "Resource" and res.get("name") == "cpu"
            and (res.get("target") or {}).get("averageUtilization") is not None)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --------------------------------------------------------------------------------------- the HPA itself

def _hpa_to_v1(obj: Obj) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = copy.deepcopy(obj.get("metadata") or {})
    metrics = spec.get("metrics") or []
    out_spec = _some(scaleTargetRef=copy.deepcopy(spec.get("scaleTargetRef")), minReplicas=spec.get("minReplicas"),
                     maxReplicas=spec.get("maxReplicas"))
    cpu = next((m for m in metrics if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"),
               None)
    if cpu is not None and (cpu["resource"].get("target") or {}).get("averageUtilization") is not None:
        out_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    notes: dict[str, str] = {}
    others = [_metric_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        notes[METRICS_ANNOTATION] = _compact(others)
    out: Obj = {"apiVersion": "autoscaling/v1", "kind": HPA, "metadata": meta, "spec": out_spec}
    # v1's replica counts are not optional: 0 until the controller's first sync
    current = status.get("currentMetrics") or []
    out_status = _some(observedGeneration=status.get("observedGeneration"),
                       lastScaleTime=status.get("lastScaleTime"), currentReplicas=status.get("currentReplicas", 0),
                       desiredReplicas=status.get("desiredReplicas", 0))
    for m in current:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            util = (m["resource"].get("current") or {}).get("averageUtilization")
            if util is not None:
                out_status["currentCPUUtilizationPercentage"] = util
    if current:
        notes[CURRENT_METRICS_ANNOTATION] = _compact([_status_to_v1(m) for m in current])
    if status.get("conditions"):
        notes[CONDITIONS_ANNOTATION] = _compact(status["conditions"])
    out["status"] = out_status
    if spec.get("behavior") is not None:
        notes[BEHAVIOR_ANNOTATION] = _compact(_go_names(spec["behavior"], upper=True))
    if notes:
        meta["annotations"] = {**(meta.get("annotations") or {}), **notes}
    return out


def _hpa_to_v2(obj: Obj) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status")
    meta = copy.deepcopy(obj.get("metadata") or {})
    notes = dict(meta.get("annotations") or {})

    def take(key: str) -> Any:
        raw = notes.pop(key, None)
        return None if raw is None else json.loads(raw)

    others, current, conditions, behavior = (take(k) for k in (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION,
                                                               CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION))
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    metrics = [_metric_to_v2(m) for m in others or []]
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec["targetCPUUtilizationPercentage"]}}})
    if not metrics:
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    out_spec = _some(scaleTargetRef=copy.deepcopy(spec.get("scaleTargetRef")), minReplicas=spec.get("minReplicas"),
                     maxReplicas=spec.get("maxReplicas"), metrics=metrics,
                     behavior=_go_names(behavior, upper=False) if behavior is not None else None)
    out: Obj = {"apiVersion": "autoscaling/v2", "kind": HPA, "metadata": meta, "spec": out_spec}
    if status is not None:
        out_status = _some(observedGeneration=status.get("observedGeneration"),
                           lastScaleTime=status.get("lastScaleTime"), currentReplicas=status.get("currentReplicas"),
                           desiredReplicas=status.get("desiredReplicas", 0), conditions=conditions)
        if current is not None:
            out_status["currentMetrics"] = [_status_to_v2(m) for m in current]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            out_status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
        out["status"] = out_status
    return out


_TO_SERVED: dict[tuple[str, str], Callable[[Obj], Obj]] = {("autoscaling/v1", HPA): _hpa_to_v1}
_TO_STORAGE: dict[tuple[str, str], Callable[[Obj], Obj]] = {("autoscaling/v1", HPA): _hpa_to_v2}
