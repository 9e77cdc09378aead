"""PodDisruptionBudgets: the disruption controller's status (expected pods from the owning controllers' scale,
desired and current healthy pods, disruptions allowed) and the eviction API's check against it, as
``pods/<name>/eviction`` enforces it (429 while a budget allows no disruption, 500 for two budgets)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable

from ...core.errors import ApiError
from ..apiserver.objects import Objects, now
from ..apiserver.selectors import selector_matches, selector_string
from ..apiserver.store import Event
from .base import MANAGER, Controller, Key, Obj, parse_time, pod_ready

PDB_KEY = "policy/poddisruptionbudgets"
COMPONENT = "controllermanager"
DELETION_TIMEOUT = 120.0  # an eviction not followed by the pod's deletion within this long is forgotten
DENIED = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
# workloads whose pods a budget counts by their scale: kind -> (store key, the owner's owner to prefer)
SCALED = {"ReplicaSet": "apps/replicasets", "StatefulSet": "apps/statefulsets", "Deployment": "apps/deployments",
          "ReplicationController": "/replicationcontrollers"}


class SyncFailed(Exception):
    """The budget's status cannot be computed (its condition says why)."""


def scaled_value(value: int | str, total: int) -> int:
    """GetScaledValueFromIntOrPercent rounding up, as the disruption controller uses it."""
    if isinstance(value, str):
        if not value.endswith("%") or not value[:-1].isdigit():
            raise SyncFailed(f"invalid value for IntOrString: invalid value {value!r}")
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def budgets_for(objects: Objects, pod: Obj) -> list[Obj]:
    """The budgets whose selector matches ``pod`` (a pod without labels has none)."""
    labels = pod["metadata"].get("labels") or {}
    if not labels:
        return []
    return [b for b in objects.store.items(PDB_KEY, pod["metadata"]["namespace"])
            if selector_matches((b.get("spec") or {}).get("selector"), labels)]


def _condition(old: list[Obj], generation: int, allowed: int, failure: str = "") -> Obj:
    status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    if failure:
        status, reason = "False", "SyncFailed"
    prev = next((c for c in old if c.get("type") == "DisruptionAllowed"), None)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == status and prev.get("reason") == reason \
        else now()
    return {"type": "DisruptionAllowed", "status": status, "reason": reason, "message": failure,
            "observedGeneration": generation, "lastTransitionTime": since}


class DisruptionController(Controller):
    name = "disruption-controller"
    watches = (PDB_KEY, "/pods", "apps/deployments", "apps/replicasets", "apps/statefulsets")

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key == PDB_KEY:
            return super().keys_for(ev)
        ns = ev.obj["metadata"].get("namespace", "")
        return self.keys_of_ns(ns)

    def keys_of_ns(self, ns: str) -> list[Key]:
        return [(ns, b["metadata"]["name"]) for b in self.store.items(PDB_KEY, ns)]

    def _expected(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The sum of the scale of the controllers of ``pods`` (a Deployment's for its ReplicaSets' pods), and
        the pods no controller owns."""
        scales: dict[str, int] = {}
        unmanaged = []
        for pod in pods:
            ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("kind") not in SCALED:
                raise SyncFailed(f"pods of a {ref.get('kind')} have no scale to count: the labkit simulator "
                                 "counts the pods of Deployments, ReplicaSets and StatefulSets")
            owner = self._owner(pod["metadata"]["namespace"], ref)
            if owner is None:
                raise SyncFailed(f"found no controllers for pod {pod['metadata']['name']!r}")
            parent = next((r for r in owner["metadata"].get("ownerReferences") or []
                           if r.get("controller") and r.get("kind") == "Deployment"), None)
            if ref.get("kind") == "ReplicaSet" and parent is not None:
                deployment = self._owner(pod["metadata"]["namespace"], parent)
                owner = deployment or owner
            scales[owner["metadata"]["uid"]] = (owner.get("spec") or {}).get("replicas", 1)
        return sum(scales.values()), unmanaged

    def _owner(self, ns: str, ref: Obj) -> Obj | None:
        found = self.store.get(SCALED[ref["kind"]], ns, ref["name"])
        return found if found is not None and found["metadata"]["uid"] == ref.get("uid") else None

    def reconcile(self, key: Key) -> None:
        ns, name = key
        pdb = self.store.get(PDB_KEY, ns, name)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return
        spec = pdb.get("spec") or {}
        old = pdb.get("status") or {}
        pods = [p for p in self.store.items("/pods", ns)
                if selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
        stamp = time.time()
        disrupted = {p: t for p, t in (old.get("disruptedPods") or {}).items()
                     if (pod := next((x for x in pods if x["metadata"]["name"] == p), None)) is not None
                     and not pod["metadata"].get("deletionTimestamp") and parse_time(t) + DELETION_TIMEOUT > stamp}
        healthy = sum(1 for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted)
        failure = ""
        try:
            expected, desired = self._desired(pdb, pods)
        except SyncFailed as err:
            failure, expected, desired = str(err), 0, 0
        allowed = 0 if failure else max(0, healthy - desired)
        generation = pdb["metadata"].get("generation", 1)
        status: Obj = {"observedGeneration": generation, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                       "desiredHealthy": desired, "expectedPods": expected,
                       "conditions": [_condition(old.get("conditions") or [], generation, allowed, failure)]}
        if disrupted:
            status["disruptedPods"] = disrupted
        if status != old:
            self.objects.update(self.rt("policy", "v1", "poddisruptionbudgets"), ns, name, {**pdb, "status": status},
                                MANAGER, "status")

    def _desired(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expected pods, desired healthy pods), as the disruption controller rounds them."""
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = self._expected(pods)
            self._warn_unmanaged(pdb, unmanaged)
            return expected, max(0, expected - scaled_value(spec["maxUnavailable"], expected))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available
        if min_available is not None:
            expected, unmanaged = self._expected(pods)
            self._warn_unmanaged(pdb, unmanaged)
            return expected, scaled_value(min_available, expected)
        return len(pods), 0

    def _warn_unmanaged(self, pdb: Obj, unmanaged: list[str]) -> None:
        if unmanaged:
            selector = selector_string((pdb.get("spec") or {}).get("selector"))
            self.recorder.emit(pdb, "Warning", "UnmanagedPods",
                               f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
                               "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
                               "may result in undefined behavior. To account for these pods please set "
                               '".spec.minAvailable" field of the PDB to an integer value.', COMPONENT)


def _too_many_requests(cause: str) -> ApiError:
    return ApiError(429, "TooManyRequests", DENIED, {"causes": [{"reason": "DisruptionBudget", "message": cause}]})


def _denied_cause(pdb: Obj) -> str:
    status = pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), {})
    if cond.get("status") == "False" and cond.get("message") and cond.get("reason") == "SyncFailed":
        return f"The disruption budget {name} does not allow evicting pods currently because it failed sync: " \
               f"{cond['message']}"
    if status.get("currentHealthy", 0) <= status.get("desiredHealthy", 0):
        return f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods and has " \
               f"{status.get('currentHealthy', 0)} currently"
    return f"The disruption budget {name} does not allow evicting pods currently"


def check_eviction(objects: Objects, pod: Obj, dry_run: bool) -> None:
    """What the eviction subresource checks before it deletes ``pod``: its budget must allow one more disruption
    (which it then takes), unless the pod is not running, or is unhealthy and the budget lets it go."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
        return
    budgets = budgets_for(objects, pod)
    if len(budgets) > 1:
        raise ApiError(500, "InternalError", f"Internal error occurred: {MULTIPLE}",
                       {"causes": [{"message": MULTIPLE}]})
    if not budgets:
        return
    pdb = copy.deepcopy(budgets[0])
    spec, status = pdb.get("spec") or {}, pdb.setdefault("status", {})
    if not pod_ready(pod):
        policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if policy == "AlwaysAllow" or (status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0):
            return
    name = pdb["metadata"]["name"]
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.")
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise ApiError(403, "Forbidden", f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions '
                                         "allowed is negative", {"name": name, "group": "policy",
                                                                 "kind": "poddisruptionbudgets"})
    if allowed == 0:
        raise _too_many_requests(_denied_cause(pdb))
    status["disruptionsAllowed"] = allowed - 1
    if allowed == 1:
        status["conditions"] = [_condition(status.get("conditions") or [], status.get("observedGeneration", 1), 0)]
    if dry_run:
        return
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod["metadata"]["name"]: now()}
    rt = objects.registry.find("policy", "v1", "poddisruptionbudgets")
    assert rt is not None
    objects.update(rt, pdb["metadata"]["namespace"], name, pdb, MANAGER, "status")
