"""The Deployment controller: ReplicaSets per pod template, rolling updates, revisions, conditions."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time

from ..apiserver.objects import now
from .base import MANAGER, Controller, Key, Obj, owned_by, owner_ref, parse_time

REVISION = "deployment.kubernetes.io/revision"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    """A short, stable, DNS-safe hash of a pod template (like pod-template-hash)."""
    digest = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    out = ""
    for _ in range(10):
        digest, r = divmod(digest, len(_ALPHABET))
        out += _ALPHABET[r]
    return out


def resolve(value: int | str | None, total: int, round_up: bool, default: str = "25%") -> int:
    """An int-or-percent (maxSurge/maxUnavailable) as a pod count."""
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def revision(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def _condition(kind: str, status: str, reason: str, message: str, old: list[Obj], progressed: bool) -> Obj:
    stamp = now()
    prev = next((c for c in old if c["type"] == kind), None)
    same = prev is not None and prev["status"] == status
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": stamp if progressed or not same or prev["reason"] != reason else prev["lastUpdateTime"],
            "lastTransitionTime": prev["lastTransitionTime"] if same and prev else stamp}


class DeploymentController(Controller):
    name = "deployment-controller"
    watches = ("apps/deployments", "apps/replicasets")
    owner_kind = "Deployment"

    def _scale(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        old = rs["spec"].get("replicas", 0)
        if old == replicas:
            return rs
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = replicas
        ann = new["metadata"].setdefault("annotations", {})
        ann["deployment.kubernetes.io/desired-replicas"] = str(d["spec"].get("replicas", 1))
        out, _ = self.objects.update(self.rt("apps", "v1", "replicasets"), rs["metadata"]["namespace"],
                                     rs["metadata"]["name"], new, MANAGER)
        direction = "up" if replicas > old else "down"
        self.recorder.emit(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {replicas}",
                           "deployment-controller")
        return out

    def _new_rs(self, d: Obj, h: str, rev: int, replicas: int) -> Obj:
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = h
        ann = {REVISION: str(rev), "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
               "deployment.kubernetes.io/max-replicas": str(d["spec"].get("replicas", 1))}
        cause = (d["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause")
        if cause:
            ann["kubernetes.io/change-cause"] = cause
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "labels": template["metadata"]["labels"],
                           "annotations": ann, "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        created, _ = self.objects.create(self.rt("apps", "v1", "replicasets"), d["metadata"]["namespace"], rs,
                                         MANAGER)
        return self._scale(d, created, replicas) if replicas else created

    def reconcile(self, key: Key) -> None:
        ns, name = key
        d = self.store.get("apps/deployments", ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        replicas = spec.get("replicas", 1)
        h = template_hash(spec["template"])
        rss = sorted((rs for rs in self.store.items("apps/replicasets", ns) if owned_by(rs, d)),
                     key=lambda rs: rs["metadata"]["creationTimestamp"])
        new = next((rs for rs in rss if rs["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        old = [rs for rs in rss if rs is not new]
        max_rev = max((revision(rs) for rs in rss), default=0)
        created = False
        if spec.get("paused"):
            self._status(d, new, rss, created)
            return
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve(rolling.get("maxSurge"), replicas, True) if strategy == "RollingUpdate" else 0
        unavail = resolve(rolling.get("maxUnavailable"), replicas, False) if strategy == "RollingUpdate" else 0
        if strategy == "RollingUpdate" and surge == 0 and unavail == 0:
            unavail = 1
        if new is None:
            total = sum(rs["spec"].get("replicas", 0) for rs in rss)
            first = replicas if not old else (max(0, min(replicas, replicas + surge - total))
                                              if strategy == "RollingUpdate" else 0)
            new = self._new_rs(d, h, max_rev + 1, first)
            created = True
            rss.append(new)
        elif revision(new) < max_rev:  # rolled back to an older template: it becomes the newest revision
            bumped = copy.deepcopy(new)
            bumped["metadata"].setdefault("annotations", {})[REVISION] = str(max_rev + 1)
            new, _ = self.objects.update(self.rt("apps", "v1", "replicasets"), ns, new["metadata"]["name"], bumped,
                                         MANAGER)
            self.recorder.emit(d, "Normal", "DeploymentRollback",
                               f"Rolled back deployment {name} to revision {revision(bumped)}",
                               "deployment-controller")
        if strategy == "Recreate":
            self._recreate(d, new, old, replicas)
        else:
            self._rolling(d, new, old, replicas, surge, unavail)
        self._cleanup(d)
        rss = [rs for rs in self.store.items("apps/replicasets", ns) if owned_by(rs, d)]
        new = next((rs for rs in rss if rs["metadata"]["name"] == new["metadata"]["name"]), new)
        self._status(d, new, rss, created)

    def _recreate(self, d: Obj, new: Obj, old: list[Obj], replicas: int) -> None:
        for rs in old:
            self._scale(d, rs, 0)
        if any((rs.get("status") or {}).get("replicas", 0) for rs in old):
            return  # wait for the old pods to go before starting new ones
        self._scale(d, new, replicas)

    def _rolling(self, d: Obj, new: Obj, old: list[Obj], replicas: int, surge: int, unavail: int) -> None:
        total = sum(rs["spec"].get("replicas", 0) for rs in [new, *old])
        current = new["spec"].get("replicas", 0)
        if current > replicas:
            new = self._scale(d, new, replicas)
        elif current < replicas:
            allowed = replicas + surge - total
            if allowed > 0:
                new = self._scale(d, new, min(replicas, current + allowed))
        # old replicas that are not available anyway can go at once
        for i, rs in enumerate(old):
            unhealthy = rs["spec"].get("replicas", 0) - (rs.get("status") or {}).get("availableReplicas", 0)
            if unhealthy > 0 and rs["spec"].get("replicas", 0) > 0:
                old[i] = self._scale(d, rs, rs["spec"]["replicas"] - unhealthy)
        total = sum(rs["spec"].get("replicas", 0) for rs in [new, *old])
        new_unavailable = new["spec"].get("replicas", 0) - (new.get("status") or {}).get("availableReplicas", 0)
        budget = total - (replicas - unavail) - new_unavailable
        for rs in old:  # oldest first
            if budget <= 0:
                break
            n = min(budget, rs["spec"].get("replicas", 0))
            if n:
                self._scale(d, rs, rs["spec"]["replicas"] - n)
                budget -= n

    def _cleanup(self, d: Obj) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        ns = d["metadata"]["namespace"]
        h = template_hash(d["spec"]["template"])
        idle = [rs for rs in self.store.items("apps/replicasets", ns) if owned_by(rs, d)
                and rs["metadata"].get("labels", {}).get("pod-template-hash") != h
                and not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")]
        for rs in sorted(idle, key=revision)[: max(0, len(idle) - limit)]:
            self.objects.delete(self.rt("apps", "v1", "replicasets"), ns, rs["metadata"]["name"], {}, False)

    def _status(self, d: Obj, new: Obj | None, rss: list[Obj], created: bool) -> None:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        d = self.store.get("apps/deployments", ns, name) or d
        replicas = d["spec"].get("replicas", 1)
        st = [rs.get("status") or {} for rs in rss]
        new_st = (new or {}).get("status") or {}
        counts = {"replicas": sum(s.get("replicas", 0) for s in st),
                  "updatedReplicas": new_st.get("replicas", 0),
                  "readyReplicas": sum(s.get("readyReplicas", 0) for s in st),
                  "availableReplicas": sum(s.get("availableReplicas", 0) for s in st)}
        counts["unavailableReplicas"] = max(0, replicas - counts["availableReplicas"])
        old_status = d.get("status") or {}
        old_conds = old_status.get("conditions") or []
        progressed = created or any(old_status.get(k, 0) != v for k, v in counts.items())
        rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        unavail = resolve(rolling.get("maxUnavailable"), replicas, False)
        available = counts["availableReplicas"] >= replicas - unavail
        conds = [_condition("Available", "True" if available else "False",
                            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if available
                            else "Deployment does not have minimum availability.", old_conds, False)]
        rs_name = (new or {}).get("metadata", {}).get("name", "")
        complete = (counts["updatedReplicas"] == replicas and counts["replicas"] == replicas
                    and counts["availableReplicas"] >= replicas)
        prev = next((c for c in old_conds if c["type"] == "Progressing"), None)
        deadline = d["spec"].get("progressDeadlineSeconds", 600)
        if complete:
            prog = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif created:
            prog = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        elif not progressed and prev and time.time() - parse_time(prev.get("lastUpdateTime")) > deadline:
            prog = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        elif prev and prev["reason"] == "ProgressDeadlineExceeded" and not progressed:
            prog = (prev["status"], prev["reason"], prev["message"])
        else:
            prog = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conds.append(_condition("Progressing", *prog, old_conds, progressed))
        status = {"observedGeneration": d["metadata"]["generation"], **counts, "conditions": conds}
        status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "replicas")}
        if prog[1] == "ProgressDeadlineExceeded" and (prev or {}).get("reason") != prog[1]:
            self.recorder.emit(d, "Warning", "ProgressDeadlineExceeded", prog[2], "deployment-controller")
        if _comparable(old_status) != _comparable(status):
            self.objects.update(self.rt("apps", "v1", "deployments"), ns, name, {**d, "status": status}, MANAGER,
                                "status")
        if new is not None and revision(new):
            self._sync_revision(d, new)

    def _sync_revision(self, d: Obj, new: Obj) -> None:
        """The Deployment carries its newest revision number, as kubectl rollout history expects."""
        ann = d["metadata"].get("annotations") or {}
        if ann.get(REVISION) == str(revision(new)):
            return
        fresh = self.store.get("apps/deployments", d["metadata"]["namespace"], d["metadata"]["name"])
        if fresh is None:
            return
        fresh = copy.deepcopy(fresh)
        fresh["metadata"].setdefault("annotations", {})[REVISION] = str(revision(new))
        self.objects.update(self.rt("apps", "v1", "deployments"), d["metadata"]["namespace"],
                            d["metadata"]["name"], fresh, MANAGER)


def _comparable(status: Obj) -> Obj:
    """A status without its timestamps, to skip writes that change nothing."""
    conds = [{k: v for k, v in c.items() if not k.endswith("Time")} for c in status.get("conditions") or []]
    return {**status, "conditions": conds}
