"""The HorizontalPodAutoscaler controller, as kube-controller-manager's ``horizontal-pod-autoscaler`` runs it.

Every sync period each HPA reads its target's ``scale`` subresource, computes a replica count per metric
from metrics.k8s.io (what metrics-server serves: the kubelets' measurements) and the pods' requests, takes
the largest, bounds it by min/max and by the ``behavior`` (stabilization windows, scaling policies), writes
the target's scale, and records status, conditions and events with the real reasons and messages. The
algorithm follows upstream's ``pkg/controller/podautoscaler`` (``horizontal.go``, ``replica_calculator.go``,
``metrics/utilization.go``): the tolerance, pods that are not Ready or have no metrics yet, the CPU
initialization period.

Resource and ContainerResource metrics are computed; Pods, Object and External metrics need a custom or
external metrics API, which the lab (like a cluster without an adapter) does not serve: they fail with the
error the real controller reports then.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...core.errors import ApiError
from ...core.timings import timings
from ..apiserver import quantity
from ..apiserver.defaults import HPA_SCALE_UP_RULES
from ..apiserver.objects import now
from ..apiserver.resources import ResourceType
from ..apiserver.scale import scale_of
from ..apiserver.selectors import label_matcher
from .base import MANAGER, Cluster, Controller, EventRecorder, Key, Obj, parse_time

COMPONENT = "horizontal-pod-autoscaler"
HPA_KEY = "autoscaling/horizontalpodautoscalers"
SYNC = timings("sim").hpa_sync_seconds  # --horizontal-pod-autoscaler-sync-period (stock 15 s)
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period (5 min)
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
DOWNSCALE_STABILIZATION = 300  # --horizontal-pod-autoscaler-downscale-stabilization (5 min)
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2.0, 4.0  # without a behavior: at most double, or 4

# (plural, namespace) -> metrics.k8s.io objects; the kube component wires the kubelets' measurements in
MetricsSource = Callable[[str, str], list[Obj]]
_CUSTOM = "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
_EXTERNAL = "unable to fetch metrics from external metrics API: the server could not find the requested resource"
# Metric types that need a custom or external metrics API (an adapter), which the lab does not serve: the
# condition reason, the error (its event), and how computeReplicasForMetric wraps it, as the real controller
# words them (upstream's argument order of the Object message included).
_UNSERVED = {
    "Pods": ("FailedGetPodsMetric", "unable to get metric {name}: " + _CUSTOM, "failed to get pods metric value: "),
    "Object": ("FailedGetObjectMetric", "unable to get metric {name}: {kind} on {namespace} {object}/" + _CUSTOM,
               "failed to get object metric value: "),
    "External": ("FailedGetExternalMetric", "unable to get external metric {namespace}/{name}/{selector}: "
                 + _EXTERNAL, "failed to get {name} external metric value: failed to get {name} external metric: "),
}


# the conditions' messages, by reason (AbleToScale after stabilization, ScalingLimited)
_MESSAGES = {
    "ReadyForNewScale": "recommended size matches current size",
    "ScaleUpStabilized": "recent recommendations were lower than current one, applying the lowest recent "
                         "recommendation",
    "ScaleDownStabilized": "recent recommendations were higher than current one, applying the highest recent "
                           "recommendation",
    "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
    "ScaleDownLimit": "the desired replica count is decreasing faster than the maximum scale rate",
    "TooManyReplicas": "the desired replica count is more than the maximum replica count",
    "TooFewReplicas": "the desired replica count is less than the minimum replica count",
    "DesiredWithinRange": "the desired count is within the acceptable range",
}


class SyncError(Exception):
    """A step of a sync that failed (getting the scale, computing a metric): the condition's reason, the error
    its event and condition tell (``detail``), and the same error as the controller passes it up (``str()``,
    ``wrap`` before it)."""

    def __init__(self, reason: str, detail: str, wrap: str = "") -> None:
        super().__init__(wrap + detail)
        self.reason, self.detail = reason, detail


@dataclass
class PodMetric:
    value: int  # milli-units (millicores, milli-bytes)
    timestamp: float = 0.0
    window: float = 0.0


@dataclass(frozen=True)
class Tolerances:
    down: float = TOLERANCE
    up: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        return 1.0 - self.down <= ratio <= 1.0 + self.up


@dataclass
class ScaleEvent:
    change: int  # replicas added or removed (non-negative)
    at: float
    outdated: bool = False


def _duration(text: str) -> float:
    """A metav1.Duration (``15s``, ``1m0.5s``, ``500ms``) in seconds."""
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    i = 0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next(u for u in sorted(units, key=len, reverse=True) if text.startswith(u, i))
        total += float(number or 0) * units[unit]
        number, i = "", i + len(unit)
    return total


def _set_condition(status: Obj, kind: str, value: bool, reason: str, message: str) -> None:
    """setCondition: the transition time moves only when the status changes."""
    conds = status.setdefault("conditions", [])
    i = next((i for i, c in enumerate(conds) if c["type"] == kind), None)
    old = conds[i] if i is not None else {}
    text = "True" if value else "False"
    cond = {"type": kind, "status": text,
            "lastTransitionTime": old["lastTransitionTime"] if old.get("status") == text else now(),
            "reason": reason, "message": message}
    if i is None:
        conds.append(cond)
    else:
        conds[i] = cond


def _condition(pod: Obj, kind: str) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


class HorizontalPodAutoscalerController(Controller):
    name = COMPONENT
    watches = (HPA_KEY,)
    resync = SYNC

    def __init__(self, objects: Any, recorder: EventRecorder) -> None:
        super().__init__(objects, recorder)
        self.metrics: MetricsSource = lambda plural, namespace: []
        self.recommendations: dict[Key, list[tuple[int, float]]] = {}  # unstabilized: (replicas, when)
        self.scale_ups: dict[Key, list[ScaleEvent]] = {}
        self.scale_downs: dict[Key, list[ScaleEvent]] = {}
        self.selectors: dict[Key, str] = {}  # each HPA's target selector, to find pods claimed twice

    def configure(self, cluster: Cluster) -> None:
        self.metrics = cluster.metrics  # metrics.k8s.io, as metrics-server serves it from the kubelets

    def keys_for(self, ev: Any) -> Iterable[Key]:
        return ()  # each HPA is synced once a sync period (a rate-limited queue), not on every change

    def all_keys(self) -> Iterable[Key]:
        keys = self.keys_of(HPA_KEY)
        for state in (self.recommendations, self.scale_ups, self.scale_downs, self.selectors):
            for gone in set(state) - set(keys):  # deleted HPAs: forget them, as reconcileKey does
                del state[gone]
        return keys

    # -- reconcileAutoscaler ---------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        stored = self.store.get(HPA_KEY, *key)
        if stored is None or stored["metadata"].get("deletionTimestamp"):
            return
        hpa = copy.deepcopy(stored)
        before = copy.deepcopy(hpa.get("status") or {})
        status = hpa["status"] = copy.deepcopy(before)
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        try:
            target_rt, target = self._target(ref, key[0])
        except SyncError as err:
            self.recorder.emit(hpa, "Warning", "FailedGetScale", str(err), COMPONENT)
            _set_condition(status, "AbleToScale", False, "FailedGetScale",
                           f"the HPA controller was unable to get the target's current scale: {err}")
            self._write_status(hpa, before)
            return
        scale = scale_of(target)
        _set_condition(status, "AbleToScale", True, "SucceededGetScale",
                       "the HPA controller was able to get the target's current scale")
        current = scale["spec"]["replicas"]
        self.recommendations.setdefault(key, [(current, time.monotonic())])
        low = spec.get("minReplicas", 1)
        high = spec.get("maxReplicas", 0)
        statuses: list[Obj] | None = None
        desired, reason, rescale = 0, "", True
        if current == 0 and low != 0:
            rescale = False
            _set_condition(status, "ScalingActive", False, "ScalingDisabled",
                           "scaling is disabled since the replica count of the target is zero")
        elif current > high:
            desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
        elif current < low:
            desired, reason = low, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric, statuses, error = self._replicas_for_metrics(hpa, key, scale)
            if error is not None and proposal == -1:
                self._set_status(hpa, current, status.get("desiredReplicas", 0), statuses, False)
                self._write_status(hpa, before)
                self.recorder.emit(hpa, "Warning", "FailedComputeMetricsReplicas", error, COMPONENT)
                return
            desired = proposal
            if desired > current:
                reason = f"{metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            desired = self._normalize(hpa, key, current, desired, low)
            rescale = desired != current
        if rescale:
            try:
                self._rescale(target_rt, target, desired)
            except ApiError as err:
                self.recorder.emit(hpa, "Warning", "FailedRescale",
                                   f"New size: {desired}; reason: {reason}; error: {err.message}", COMPONENT)
                _set_condition(status, "AbleToScale", False, "FailedUpdateScale",
                               f"the HPA controller was unable to update the target scale: {err.message}")
                self._set_status(hpa, current, status.get("desiredReplicas", 0), statuses, False)
                self._write_status(hpa, before)
                return
            _set_condition(status, "AbleToScale", True, "SucceededRescale",
                           f"the HPA controller was able to update the target scale to {desired}")
            self.recorder.emit(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}",
                               COMPONENT)
            self._store_scale_event(spec.get("behavior"), key, current, desired)
        else:
            desired = current
        self._set_status(hpa, current, desired, statuses, rescale)
        self._write_status(hpa, before)

    def _target(self, ref: Obj, namespace: str) -> tuple[ResourceType, Obj]:
        """The scale target (RESTMapper, then the scale subresource), or the error the real controller gets."""
        api_version = ref.get("apiVersion") or ""
        if api_version.count("/") > 1:
            raise SyncError("FailedGetScale", f"unexpected GroupVersion string: {api_version}")
        group = api_version.rpartition("/")[0]
        kind = ref.get("kind") or ""
        types = [rt for rt in self.objects.registry.all() if rt.group == group and rt.kind == kind]
        if not types:
            raise SyncError("FailedGetScale", f'no matches for kind "{kind}" in group "{group}"')
        rt = types[0]
        if "scale" not in rt.subresources:
            raise SyncError("FailedGetScale", "the server could not find the requested resource")
        obj = self.store.get(rt.key, namespace, ref.get("name") or "")
        if obj is None:
            raise SyncError("FailedGetScale", f'{rt.qualified} "{ref.get("name")}" not found')
        return rt, obj

    def _rescale(self, rt: ResourceType, target: Obj, replicas: int) -> None:
        """PUT the target's scale: its ``spec.replicas``."""
        ns, name = target["metadata"]["namespace"], target["metadata"]["name"]
        fresh = self.store.get(rt.key, ns, name) or target
        self.objects.update(rt, ns, name, {**fresh, "spec": {**fresh["spec"], "replicas": replicas}}, MANAGER)

    def _set_status(self, hpa: Obj, current: int, desired: int, statuses: list[Obj] | None, rescale: bool) -> None:
        old = hpa["status"]
        status: Obj = {"currentReplicas": current, "desiredReplicas": desired}
        if rescale:
            status["lastScaleTime"] = now()
        elif old.get("lastScaleTime"):
            status["lastScaleTime"] = old["lastScaleTime"]
        if statuses is not None:
            status["currentMetrics"] = statuses
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        hpa["status"] = status

    def _write_status(self, hpa: Obj, before: Obj) -> None:
        """updateStatusIfNeeded: write the status subresource only when it changed."""
        if hpa["status"] == before:
            return
        ns, name = hpa["metadata"]["namespace"], hpa["metadata"]["name"]
        fresh = self.store.get(HPA_KEY, ns, name)
        if fresh is None:
            return
        rt = self.objects.registry.find("autoscaling", "v2", "horizontalpodautoscalers")
        assert rt is not None
        try:
            self.objects.update(rt, ns, name, {**fresh, "status": hpa["status"]}, MANAGER, "status")
        except ApiError as err:
            self.recorder.emit(hpa, "Warning", "FailedUpdateStatus", err.message, COMPONENT)

    # -- computeReplicasForMetrics ---------------------------------------------------------------------
    def _replicas_for_metrics(self, hpa: Obj, key: Key, scale: Obj) -> tuple[int, str, list[Obj] | None, str | None]:
        """(replicas or -1, the metric that decided, one status per metric, the error of the invalid ones)."""
        status = hpa["status"]
        specs = hpa["spec"].get("metrics") or []
        selector = scale["status"]["selector"]
        if not selector:
            self.recorder.emit(hpa, "Warning", "SelectorRequired", "selector is required", COMPONENT)
            _set_condition(status, "ScalingActive", False, "InvalidSelector",
                           "the HPA target's scale is missing a selector")
            return -1, "", None, "selector is required"
        try:
            matcher = label_matcher(selector)
        except ApiError as err:
            text = f"couldn't convert selector into a corresponding internal selector object: {err.message}"
            self.recorder.emit(hpa, "Warning", "InvalidSelector", text, COMPONENT)
            _set_condition(status, "ScalingActive", False, "InvalidSelector", text)
            return -1, "", None, text
        pods = [p for p in self.store.items("/pods", key[0]) if matcher(p)]
        self.selectors[key] = selector
        others = sorted(f"{ns}/{name}" for (ns, name), sel in self.selectors.items()
                        if (ns, name) != key and ns == key[0] and any(label_matcher(sel)(p) for p in pods))
        if others:
            text = (f"pods by selector {selector} are controlled by multiple HPAs: "
                    f"[{' '.join(sorted([*others, f'{key[0]}/{key[1]}']))}]")
            self.recorder.emit(hpa, "Warning", "AmbiguousSelector", text, COMPONENT)
            _set_condition(status, "ScalingActive", False, "AmbiguousSelector", text)
            return -1, "", None, text
        spec_replicas = scale["spec"]["replicas"]
        replicas, metric, statuses = 0, "", []
        invalid: list[SyncError] = []
        tolerances = self._tolerances(hpa)
        for spec in specs:
            try:
                proposal, name, current = self._replicas_for_metric(hpa, spec, spec_replicas, pods, tolerances)
            except SyncError as err:
                invalid.append(err)
                statuses.append({"type": ""})  # a zero MetricStatus, as the real status shows it
                self.recorder.emit(hpa, "Warning", err.reason, err.detail, COMPONENT)
                continue
            statuses.append(current)
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        error = None
        if invalid:
            error = f"invalid metrics ({len(invalid)} invalid out of {len(specs)}), first error is: {invalid[0]}"
        if invalid and (len(invalid) >= len(specs) or replicas < spec_replicas):
            _set_condition(status, "ScalingActive", False, invalid[0].reason,
                           f"the HPA was unable to compute the replica count: {invalid[0].detail}")
            return -1, "", statuses, error
        _set_condition(status, "ScalingActive", True, "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from {metric}")
        return replicas, metric, statuses, error

    def _replicas_for_metric(self, hpa: Obj, spec: Obj, current: int, pods: list[Obj],
                             tolerances: Tolerances) -> tuple[int, str, Obj]:
        """computeReplicasForMetric: (replicas, metric name, its MetricStatus); SyncError when it fails."""
        kind = spec.get("type") or ""
        ns = hpa["metadata"]["namespace"]
        if kind in ("Resource", "ContainerResource"):
            field = "resource" if kind == "Resource" else "containerResource"
            src = spec.get(field) or {}
            container = src.get("container", "")
            reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
            wrap = (f"failed to get {src.get('name')} resource metric value: " if kind == "Resource"
                    else f"failed to get {container} container metric value: ")
            try:
                replicas, name, value = self._resource(current, src.get("target") or {}, src.get("name", ""), ns,
                                                       container, pods, kind, tolerances)
            except SyncError as err:
                raise SyncError(reason, str(err), wrap) from None
            return replicas, name, {"type": kind, field: {"name": src.get("name"), **(
                {"container": container} if container else {}), "current": value}}
        if kind in _UNSERVED:
            src = spec.get(kind.lower()) or {}
            metric, target = src.get("metric") or {}, src.get("describedObject") or {}
            names = {"name": metric.get("name", ""), "namespace": ns, "kind": target.get("kind", ""),
                     "object": target.get("name", ""), "selector": _go_selector(metric.get("selector"))}
            reason, detail, wrap = _UNSERVED[kind]
            raise SyncError(reason, detail.format(**names), wrap.format(**names))
        raise SyncError("InvalidMetricSourceType", f'unknown metric source type "{kind}"')

    def _resource(self, current: int, target: Obj, resource: str, ns: str, container: str, pods: list[Obj],
                  kind: str, tolerances: Tolerances) -> tuple[int, str, Obj]:
        """computeStatusForResourceMetricGeneric: an AverageValue or a Utilization target of one resource."""
        if target.get("averageValue") is not None:
            try:
                metrics = self._pod_metrics(resource, ns, pods, container)
                replicas, usage = _plain_replicas(metrics, current, quantity.milli(target["averageValue"]), pods,
                                                  resource, tolerances)
            except SyncError as err:
                raise SyncError("", f"failed to get {resource} usage: {err}") from None
            return replicas, f"{resource} resource", {"averageValue": quantity.format_milli(usage)}
        if target.get("averageUtilization") is None:
            raise SyncError("", "invalid resource metric source: neither an average utilization target nor an "
                                "average value (usage) target was set")
        try:
            metrics = self._pod_metrics(resource, ns, pods, container)
            replicas, percent, raw = _resource_replicas(metrics, current, target["averageUtilization"], pods,
                                                        resource, container, tolerances)
        except SyncError as err:
            raise SyncError("", f"failed to get {resource} utilization: {err}") from None
        what = "container resource" if kind == "ContainerResource" else "resource"
        return (replicas, f"{resource} {what} utilization (percentage of request)",
                {"averageUtilization": percent, "averageValue": quantity.format_milli(raw)})

    def _pod_metrics(self, resource: str, ns: str, pods: list[Obj], container: str) -> dict[str, PodMetric]:
        """GetResourceMetric: the pods' usage of ``resource`` from metrics.k8s.io (milli-units)."""
        names = {p["metadata"]["name"] for p in pods}
        items = [m for m in self.metrics("pods", ns) if m["metadata"]["name"] in names]
        prefix = f"unable to get metrics for resource {resource}: "
        if not items:
            raise SyncError("", prefix + "no metrics returned from resource metrics API")
        out: dict[str, PodMetric] = {}
        for m in items:
            stamp, window = parse_time(m.get("timestamp")), _duration(m.get("window") or "0s")
            usages = [c["usage"].get(resource) for c in m.get("containers") or []
                      if not container or c["name"] == container]
            if container and not usages:
                raise SyncError("", prefix + f"failed to get container metrics: container {container} not present "
                                             f"in metrics for pod {ns}/{m['metadata']['name']}")
            if usages and all(u is not None for u in usages):
                out[m["metadata"]["name"]] = PodMetric(sum(quantity.milli(u) for u in usages), stamp, window)
        return out

    def _tolerances(self, hpa: Obj) -> Tolerances:
        """The cluster's tolerance, or the behavior's own per direction (HPAConfigurableTolerance)."""
        behavior = hpa["spec"].get("behavior") or {}
        down = (behavior.get("scaleDown") or {}).get("tolerance")
        up = (behavior.get("scaleUp") or {}).get("tolerance")
        return Tolerances(TOLERANCE if down is None else float(quantity.parse(down)),
                          TOLERANCE if up is None else float(quantity.parse(up)))

    # -- normalizeDesiredReplicas (without a behavior) and ...WithBehaviors ---------------------------
    def _normalize(self, hpa: Obj, key: Key, current: int, desired: int, low: int) -> int:
        """Stabilize the recommendation, then bound it by min/max and the scaling rate; set the conditions."""
        status, high = hpa["status"], hpa["spec"]["maxReplicas"]
        behavior = hpa["spec"].get("behavior")
        if behavior is None:  # the downscale stabilization, and at most double (or 4) per sync
            stabilized = self._stabilize(key, desired, current, None, DOWNSCALE_STABILIZATION)
            limit = max(int(SCALE_UP_LIMIT_FACTOR * current), int(SCALE_UP_LIMIT_MINIMUM))
            ceiling = (limit, "ScaleUpLimit") if high > limit else (high, "TooManyReplicas")
            result, limited = ((low, "TooFewReplicas") if stabilized < low else
                               ceiling if stabilized > ceiling[0] else (stabilized, "DesiredWithinRange"))
        else:
            up, down = behavior.get("scaleUp") or HPA_SCALE_UP_RULES, behavior.get("scaleDown") or {}
            down_window = down.get("stabilizationWindowSeconds")
            stabilized = self._stabilize(key, desired, current, up.get("stabilizationWindowSeconds") or 0,
                                         DOWNSCALE_STABILIZATION if down_window is None else down_window)
            result, limited = self._behavior_rate(key, current, stabilized, low, high, up, down)
        stable = ("ReadyForNewScale" if stabilized == desired else
                  "ScaleUpStabilized" if behavior is not None and desired >= current else "ScaleDownStabilized")
        _set_condition(status, "AbleToScale", True, stable, _MESSAGES[stable])
        _set_condition(status, "ScalingLimited", result != stabilized, limited, _MESSAGES[limited])
        return result

    def _stabilize(self, key: Key, desired: int, current: int, up_window: float | None, down_window: float) -> int:
        """stabilizeRecommendation(WithBehaviors): the highest recommendation of the scale-down window and (with a
        behavior) the lowest of the scale-up window bound the new one, which is recorded, replacing one older than
        both windows."""
        stamp = time.monotonic()
        history = self.recommendations.setdefault(key, [])
        up_cutoff, down_cutoff = stamp - (up_window or 0), stamp - down_window
        upper, lower, old = desired, desired, None
        for i, (replicas, at) in enumerate(history):
            if at > up_cutoff:
                upper = min(upper, replicas)
            if at > down_cutoff:
                lower = max(lower, replicas)
            if at < up_cutoff and at < down_cutoff:
                old = i
        if old is not None:
            history[old] = (desired, stamp)
        else:
            history.append((desired, stamp))
        return lower if up_window is None else min(max(current, upper), lower)

    def _behavior_rate(self, key: Key, current: int, desired: int, low: int, high: int, up: Obj,
                       down: Obj) -> tuple[int, str]:
        """convertDesiredReplicasWithBehaviorRate: min/max and the policies' limit on the change in their periods."""
        ups, downs = self.scale_ups.get(key, []), self.scale_downs.get(key, [])
        if desired > current:
            limit = max(_policy_limit(current, ups, downs, up, True), current)
            ceiling = (limit, "ScaleUpLimit") if high > limit else (high, "TooManyReplicas")
            if desired > ceiling[0]:
                return ceiling
        elif desired < current:
            limit = min(_policy_limit(current, ups, downs, down, False), current)
            floor = (limit, "ScaleDownLimit") if low < limit else (low, "TooFewReplicas")
            if desired < floor[0]:
                return floor
        return desired, "DesiredWithinRange"

    def _store_scale_event(self, behavior: Obj | None, key: Key, before: int, after: int) -> None:
        """storeScaleEvent: remember a rescale for the policies' periods (only with a behavior)."""
        if behavior is None:
            return
        rules, events = ((behavior.get("scaleUp") or {}, self.scale_ups) if after > before
                         else (behavior.get("scaleDown") or {}, self.scale_downs))
        longest = max((p.get("periodSeconds", 0) for p in rules.get("policies") or []), default=0)
        stamp = time.monotonic()
        history = events.setdefault(key, [])
        for e in history:
            e.outdated = e.outdated or e.at < stamp - longest
        event = ScaleEvent(abs(after - before), stamp)
        old = next((i for i in reversed(range(len(history))) if history[i].outdated), None)
        if old is not None:
            history[old] = event
        else:
            history.append(event)


# -- replica_calculator.go --------------------------------------------------------------------------------

def _group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str
                ) -> tuple[int, set[str], set[str], set[str]]:
    """groupPods: (ready pod count, unready, missing metrics, ignored) as the real calculator sorts them."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    clock = time.time()
    for pod in pods:
        name, phase = pod["metadata"]["name"], (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond, started = _condition(pod, "Ready"), parse_time((pod.get("status") or {}).get("startTime"))
            if cond is None or not started:
                not_ready = True
            elif started + CPU_INITIALIZATION > clock:  # still initializing: a sample must postdate readiness
                not_ready = (cond.get("status") == "False"
                             or metric.timestamp < parse_time(cond.get("lastTransitionTime")) + metric.window)
            else:  # ignore a pod that has never been ready
                not_ready = (cond.get("status") == "False"
                             and started + INITIAL_READINESS_DELAY > parse_time(cond.get("lastTransitionTime")))
            if not_ready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _requests(pods: list[Obj], container: str, resource: str) -> dict[str, int]:
    """calculateRequests: each pod's request of ``resource`` (milli): its pod-level request, or the sum over its
    containers (and restartable init containers), or one container's."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        pod_level = ((spec.get("resources") or {}).get("requests") or {})
        if pod_level and not container:  # pod-level resources (KEP-2837) take precedence over the containers'
            if resource not in pod_level:
                raise SyncError("", f"missing pod-level request for {resource} in Pod {pod['metadata']['name']}")
            out[pod["metadata"]["name"]] = quantity.milli(pod_level[resource])
            continue
        containers = [*spec.get("containers", []),
                      *(c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always")]
        total, found = 0, not container
        for c in containers:
            if container and c["name"] != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise SyncError("", f"missing request for {resource} in container {c['name']} of Pod "
                                    f"{pod['metadata']['name']}")
            total += quantity.milli(request)
            found = True
        if not found:
            raise SyncError("", f"container {container} not found in Pod {pod['metadata']['name']}")
        out[pod["metadata"]["name"]] = total
    return out


def _utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int], target: int
                       ) -> tuple[float, int, int]:
    """GetResourceUtilizationRatio: (usage ratio, utilization %, raw average) in integer arithmetic."""
    used = [(m.value, requests[name]) for name, m in metrics.items() if name in requests]
    total, requested = sum(u for u, _ in used), sum(r for _, r in used)
    if requested == 0:
        raise SyncError("", "no metrics returned matched known pods")
    utilization = total * 100 // requested
    return utilization / target, utilization, total // len(used)


def _sorted_out(pods: list[Obj], metrics: dict[str, PodMetric], resource: str) -> tuple[int, set[str], set[str]]:
    """Group the pods and drop the metrics of the ignored and unready ones; (ready count, unready, missing)."""
    if not pods:
        raise SyncError("", "no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = _group_pods(pods, metrics, resource)
    for name in ignored | unready:
        metrics.pop(name, None)
    if not metrics:
        raise SyncError("", "did not receive metrics for targeted pods (pods might be unready)")
    return ready, unready, missing


def _rebalanced(current: int, ratio: float, ready: int, unready: set[str], missing: set[str],
                metrics: dict[str, PodMetric], fill_missing: Callable[[str], int],
                new_ratio: Callable[[], float], tolerances: Tolerances) -> int:
    """The shared end of GetResourceReplicas and calcPlainMetricReplicas: without unready or missing pods
    ``ceil(ratio * ready)``; else missing pods count as 100% of their request (or the target) when scaling down
    and 0 when scaling up, unready ones as 0 when scaling up, and a change of direction cancels the change."""
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        return current if tolerances.within(ratio) else math.ceil(ratio * ready)
    for name in missing:
        if ratio < 1.0:
            metrics[name] = PodMetric(fill_missing(name))
        elif ratio > 1.0:
            metrics[name] = PodMetric(0)
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0)
    after = new_ratio()
    if tolerances.within(after) or (ratio < 1.0 < after) or (ratio > 1.0 > after):
        return current
    replicas = math.ceil(after * len(metrics))
    if (after < 1.0 and replicas > current) or (after > 1.0 and replicas < current):
        return current
    return replicas


def _resource_replicas(metrics: dict[str, PodMetric], current: int, target: int, pods: list[Obj], resource: str,
                       container: str, tolerances: Tolerances) -> tuple[int, int, int]:
    """GetResourceReplicas: (replicas, utilization %, raw average) for a Utilization target."""
    ready, unready, missing = _sorted_out(pods, metrics, resource)
    requests = _requests(pods, container, resource)
    ratio, utilization, raw = _utilization_ratio(metrics, requests, target)
    fallback = max(100, target)
    replicas = _rebalanced(current, ratio, ready, unready, missing, metrics,
                           lambda name: requests[name] * fallback // 100,
                           lambda: _utilization_ratio(metrics, requests, target)[0], tolerances)
    return replicas, utilization, raw


def _plain_replicas(metrics: dict[str, PodMetric], current: int, target: int, pods: list[Obj], resource: str,
                    tolerances: Tolerances) -> tuple[int, int]:
    """calcPlainMetricReplicas: (replicas, average usage) for an AverageValue target."""
    ready, unready, missing = _sorted_out(pods, metrics, resource)

    def ratio() -> tuple[float, int]:
        usage = sum(m.value for m in metrics.values()) // len(metrics)
        return usage / target, usage

    first, usage = ratio()
    replicas = _rebalanced(current, first, ready, unready, missing, metrics, lambda _: target,
                           lambda: ratio()[0], tolerances)
    return replicas, usage


def _changes(period: float, events: list[ScaleEvent]) -> int:
    """getReplicasChangePerPeriod."""
    cutoff = time.monotonic() - period
    return sum(e.change for e in events if e.at > cutoff)


def _policy_limit(current: int, ups: list[ScaleEvent], downs: list[ScaleEvent], rules: Obj, up: bool) -> int:
    """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors: how far the policies let the
    replicas go from where each policy's period began (``Max`` picks the largest change, ``Min`` the smallest)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        start = current - _changes(policy["periodSeconds"], ups) + _changes(policy["periodSeconds"], downs)
        value = policy["value"]
        if up:
            proposals.append(start + value if policy["type"] == "Pods" else math.ceil(start * (1 + value / 100)))
        else:
            proposals.append(start - value if policy["type"] == "Pods" else int(start * (1 - value / 100)))
    if not proposals:
        return current
    largest_change = max if up else min
    return largest_change(proposals) if select == "Max" else (min if up else max)(proposals)


def _go_selector(selector: Obj | None) -> str:
    """A *metav1.LabelSelector as ``%+v`` prints it in the external metric's error."""
    if not selector:
        return "<nil>"
    labels = "".join(f"{k}: {v}," for k, v in sorted((selector.get("matchLabels") or {}).items()))
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            "MatchExpressions:[]LabelSelectorRequirement{},}")
