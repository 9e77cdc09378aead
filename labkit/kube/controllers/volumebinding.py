"""The scheduler's VolumeBinding plugin: a pod's PersistentVolumeClaims as scheduling constraints.

PreFilter: a claim that is missing or being deleted, or an unbound claim of an ``Immediate`` class, keeps the
pod Pending with the real message. Filter: a node must satisfy the node affinity of every bound claim's volume,
and offer each unbound ``WaitForFirstConsumer`` claim a matching volume or a provisioner. Once a node is chosen,
those claims are bound to it (a matching volume's claimRef, or ``volume.kubernetes.io/selected-node`` for the
provisioner) and the pod is bound when its claims are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..apiserver.storage import PV_KEY, PVC_KEY, SC_KEY, claim_class
from ..apiserver.store import Store
from .base import Obj
from .volumes import (
    BOUND_BY_CONTROLLER,
    SELECTED_NODE,
    WAIT_FOR_FIRST_CONSUMER,
    annotations,
    binding_mode,
    claim_ref,
    find_volume,
    fully_bound,
)

NO_PROVISIONER = "kubernetes.io/no-provisioner"
NODE_CONFLICT = "node(s) had volume node affinity conflict"
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
PV_MISSING = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"


def _requirement(req: Obj, value: str | None) -> bool:
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def node_selector_matches(selector: Obj | None, node: Obj) -> bool:
    """A NodeSelector: any term matches, when all its label expressions and field expressions do."""
    if not selector:
        return True
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        (term.get("matchExpressions") or term.get("matchFields"))
        and all(_requirement(r, labels.get(r["key"])) for r in term.get("matchExpressions") or [])
        and all(_requirement(r, fields.get(r["key"])) for r in term.get("matchFields") or [])
        for term in selector.get("nodeSelectorTerms") or [])


def volume_fits(pv: Obj, node: Obj) -> bool:
    """The volume's ``nodeAffinity.required`` admits the node."""
    return node_selector_matches(((pv["spec"].get("nodeAffinity") or {}).get("required")), node)


def _topology_allows(sc: Obj, node: Obj) -> bool:
    """A class's allowedTopologies (label expressions with values) admit the node."""
    terms = sc.get("allowedTopologies") or []
    labels = node["metadata"].get("labels") or {}
    return not terms or any(all(labels.get(e["key"]) in (e.get("values") or []) for e in t.get("matchLabelExpressions")
                                or []) for t in terms)


class PodVolumes:
    """The claims of one pod, read once per scheduling attempt."""

    def __init__(self, store: Store, pod: Obj) -> None:
        self.store = store
        self.problem = ""  # a PreFilter rejection: the pod fits no node
        self.bound: list[Obj] = []  # the volumes of the bound claims
        self.missing_volume = False
        self.delayed: list[Obj] = []  # unbound claims of WaitForFirstConsumer classes
        ns = pod["metadata"]["namespace"]
        immediate = False
        for v in pod["spec"].get("volumes") or []:
            name = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not name:
                continue
            pvc = store.get(PVC_KEY, ns, name)
            if pvc is None:
                self.problem = f'persistentvolumeclaim "{name}" not found'
                return
            if pvc["metadata"].get("deletionTimestamp"):
                self.problem = f'persistentvolumeclaim "{name}" is being deleted'
                return
            if fully_bound(pvc):
                pv = store.get(PV_KEY, "", pvc["spec"]["volumeName"])
                self.missing_volume |= pv is None
                self.bound += [pv] if pv is not None else []
            elif binding_mode(store, pvc) == WAIT_FOR_FIRST_CONSUMER:
                self.delayed.append(pvc)
            else:
                immediate = True
        if immediate:
            self.problem = "pod has unbound immediate PersistentVolumeClaims"

    def conflict(self, node: Obj) -> str:
        """Why the node cannot serve the pod's claims ('' when it can)."""
        if self.missing_volume:
            return PV_MISSING
        if not all(volume_fits(pv, node) for pv in self.bound):
            return NODE_CONFLICT
        for pvc in self.delayed:
            selected = annotations(pvc).get(SELECTED_NODE)
            if selected and selected != node["metadata"]["name"]:
                return BIND_CONFLICT  # provisioning for the node chosen before is under way
            if (selected or self._volume_for(pvc, node) is None) and not self._provisionable(pvc, node):
                return BIND_CONFLICT
        return ""

    def _volume_for(self, pvc: Obj, node: Obj) -> Obj | None:
        return find_volume(pvc, self.store.items(PV_KEY), delayed=True, fits_node=lambda pv: volume_fits(pv, node))

    def _provisionable(self, pvc: Obj, node: Obj) -> bool:
        sc = self.store.get(SC_KEY, "", claim_class(pvc))
        return (sc is not None and sc.get("provisioner") not in (None, "", NO_PROVISIONER)
                and _topology_allows(sc, node))

    def bind_to(self, node: Obj, write: Callable[[str, Obj], None]) -> None:
        """Assume the claims on ``node``: pre-bind a matching volume, else ask for one there.
        ``write(plural, obj)`` stores an updated claim or volume."""
        for pvc in self.delayed:
            pv = self._volume_for(pvc, node)
            if pv is not None and not pv["spec"].get("claimRef"):
                new = copy.deepcopy(pv)
                new["spec"]["claimRef"] = claim_ref(pvc)
                new["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
                write("persistentvolumes", new)
            elif pv is None and annotations(pvc).get(SELECTED_NODE) != node["metadata"]["name"]:
                new = copy.deepcopy(pvc)
                new["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node["metadata"]["name"]
                write("persistentvolumeclaims", new)
