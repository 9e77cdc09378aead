"""kube-scheduler: bind each pending pod to a node that fits (its claims' volumes included), spreading replicas."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable

from ..apiserver.objects import now
from ..apiserver.selectors import selector_matches
from ..apiserver.store import Event
from .base import MANAGER, Controller, Key, Obj, active
from .volumebinding import PodVolumes

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}


def quantity(value: str | int | float | None) -> float:
    """A Kubernetes quantity (``250m``, ``128Mi``, ``2``) as a number."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", value.strip())
    if not m:
        return 0.0
    return float(m.group(1)) * _UNITS.get(m.group(2), 1)


def requests_of(pod: Obj) -> dict[str, float]:
    out = {"cpu": 0.0, "memory": 0.0}
    for c in pod["spec"].get("containers", []):
        for k in out:
            out[k] += quantity(((c.get("resources") or {}).get("requests") or {}).get(k))
    return out


def tolerates(pod: Obj, taint: Obj) -> bool:
    for t in pod["spec"].get("tolerations") or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _eligible(pod: Obj, node: Obj, constraint: Obj) -> bool:
    """Whether a node is one of a spread constraint's domains (nodeAffinityPolicy, nodeTaintsPolicy)."""
    labels = node["metadata"].get("labels") or {}
    if constraint["topologyKey"] not in labels:
        return False
    if constraint.get("nodeAffinityPolicy", "Honor") == "Honor" and any(
            labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()):
        return False
    return constraint.get("nodeTaintsPolicy", "Ignore") != "Honor" or all(
        tolerates(pod, t) for t in node["spec"].get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute"))


def spread_counts(pod: Obj, constraint: Obj, nodes: list[Obj], placed: list[Obj]) -> dict[str, int]:
    """Matching pods per topology domain over the constraint's eligible nodes (PodTopologySpread)."""
    key = constraint["topologyKey"]
    selector = constraint.get("labelSelector")
    domain_of = {n["metadata"]["name"]: n["metadata"]["labels"][key] for n in nodes if _eligible(pod, n, constraint)}
    counts = dict.fromkeys(domain_of.values(), 0)
    for p in placed:
        domain = domain_of.get(p["spec"]["nodeName"])
        if (domain is not None and p["metadata"].get("namespace") == pod["metadata"].get("namespace")
                and p["metadata"].get("deletionTimestamp") is None
                and selector_matches(selector, p["metadata"].get("labels"))):
            counts[domain] += 1
    return counts


def fit_error(nodes: int, reasons: dict[str, int], prefilter: str = "") -> str:
    """FitError's message: a PreFilter rejection or the sorted ``<count> <reason>`` histogram, then preemption's."""
    detail = prefilter or ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    return (f"0/{nodes} nodes are available: {detail}. preemption: 0/{nodes} nodes are available: {nodes} "
            "Preemption is not helpful for scheduling.")


def node_ready(node: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (node.get("status") or {}).get("conditions", []))


class Scheduler(Controller):
    name = "default-scheduler"
    watches = ("/pods", "/nodes", "/persistentvolumeclaims", "/persistentvolumes")
    resync = 2.0

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key != "/pods":
            return self.all_keys()
        if ev.obj["spec"].get("nodeName") or ev.type == "DELETED":
            return []
        return super().keys_for(ev)

    def all_keys(self) -> Iterable[Key]:
        return [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.store.items("/pods")
                if not p["spec"].get("nodeName") and active(p)]

    def reconcile(self, key: Key) -> None:
        pod = self.store.get("/pods", *key)
        if pod is None or pod["spec"].get("nodeName") or not active(pod):
            return
        if pod["spec"].get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        nodes = list(self.store.items("/nodes"))
        volumes = PodVolumes(self.store, pod)
        if volumes.problem:
            self._unschedulable(pod, fit_error(len(nodes), {}, volumes.problem))
            return
        reasons: dict[str, int] = {}
        fits = []
        need = requests_of(pod)
        placed = [p for p in self.store.items("/pods") if p["spec"].get("nodeName") and active(p)]
        constraints = pod["spec"].get("topologySpreadConstraints") or []
        spreads = [(c, spread_counts(pod, c, nodes, placed)) for c in constraints]
        for node in nodes:
            why = (self._why_not(pod, node, need, placed) or volumes.conflict(node)
                   or self._spread_violated(node, spreads))
            if why:
                reasons[why] = reasons.get(why, 0) + 1
            else:
                fits.append(node)
        if not fits:
            self._unschedulable(pod, fit_error(len(nodes), reasons))
            return
        owner = next((r["uid"] for r in pod["metadata"].get("ownerReferences") or []), None)

        def score(node: Obj) -> tuple[int, int, int, str]:
            here = [p for p in placed if p["spec"]["nodeName"] == node["metadata"]["name"]]
            siblings = sum(1 for p in here if owner and any(r["uid"] == owner
                                                            for r in p["metadata"].get("ownerReferences") or []))
            labels = node["metadata"].get("labels") or {}
            spread = sum(counts.get(labels.get(c["topologyKey"], ""), 0) for c, counts in spreads)
            return spread, siblings, len(here), node["metadata"]["name"]

        chosen = min(fits, key=score)
        target = chosen["metadata"]["name"]
        if volumes.delayed:  # PreBind: the claims are bound for this node first; the pod follows when they are
            volumes.bind_to(chosen, self._write)
            return
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = target
        self.objects.update(self.rt("", "v1", "pods"), key[0], key[1], bound, MANAGER)
        fresh = self.store.get("/pods", *key)
        if fresh is not None:
            self._set_condition(fresh, {"type": "PodScheduled", "status": "True"})
        self.recorder.emit(pod, "Normal", "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to {target}",
                           "default-scheduler")

    def _why_not(self, pod: Obj, node: Obj, need: dict[str, float], placed: list[Obj]) -> str:
        if node["spec"].get("unschedulable"):
            return "node(s) were unschedulable"
        for taint in node["spec"].get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod, taint):
                return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        selector = pod["spec"].get("nodeSelector") or {}
        labels = node["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return "node(s) didn't match Pod's node affinity/selector"
        alloc = (node.get("status") or {}).get("allocatable") or {}
        used = {"cpu": 0.0, "memory": 0.0}
        here = [p for p in placed if p["spec"]["nodeName"] == node["metadata"]["name"]]
        if len(here) >= quantity(alloc.get("pods", "110")):
            return "Too many pods"
        for p in here:
            for k, v in requests_of(p).items():
                used[k] += v
        for k in ("cpu", "memory"):
            if need[k] and used[k] + need[k] > quantity(alloc.get(k)):
                return f"Insufficient {k}"
        return ""

    @staticmethod
    def _spread_violated(node: Obj, spreads: list[tuple[Obj, dict[str, int]]]) -> str:
        """The ``DoNotSchedule`` spread constraint this node would break: placing the pod there would make
        its domain more than ``maxSkew`` above the least loaded eligible domain."""
        labels = node["metadata"].get("labels") or {}
        for constraint, counts in spreads:
            if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
                continue
            domain = labels.get(constraint["topologyKey"])
            if domain is None:
                return "node(s) didn't match pod topology spread constraints (missing required label)"
            if counts.get(domain, 0) + 1 - min(counts.values(), default=0) > constraint.get("maxSkew", 1):
                return "node(s) didn't match pod topology spread constraints"
        return ""

    def _write(self, plural: str, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects.update(self.rt("", "v1", plural), meta.get("namespace", ""), meta["name"], obj, MANAGER)

    def _unschedulable(self, pod: Obj, message: str) -> None:
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("reason") == "Unschedulable" and c.get("message") == message for c in conds):
            return
        self._set_condition(pod, {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                  "message": message})
        self.recorder.emit(pod, "Warning", "FailedScheduling", message, "default-scheduler")

    def _set_condition(self, pod: Obj, cond: Obj) -> None:
        new = copy.deepcopy(pod)
        status = new.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c["type"] != cond["type"]]
        conds.append({**cond, "lastProbeTime": None, "lastTransitionTime": now()})
        status["conditions"] = conds
        self.objects.update(self.rt("", "v1", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], new,
                            MANAGER, "status")
