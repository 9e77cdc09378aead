"""The StatefulSet controller: pods with stable names and ordinals, created and removed in order (or in
parallel), a claim per volumeClaimTemplate and ordinal, ControllerRevisions for the template history, rolling
updates from the highest ordinal down (with a partition and maxUnavailable) or OnDelete, and the status
kubectl rollout reads."""

from __future__ import annotations

import copy
import re
import time

from ...core.errors import ApiError
from .base import MANAGER, Controller, Key, Obj, owned_by, owner_ref, pod_ready, ready_since
from .deployment import resolve, template_hash

COMPONENT = "statefulset-controller"
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
HASH_LABEL = "controller.kubernetes.io/hash"


def ordinal(sts: Obj, pod: Obj) -> int | None:
    """The ordinal of ``<sts>-<n>``, or None for a name that is not one of the set's."""
    m = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(\d+)", pod["metadata"]["name"])
    return int(m.group(1)) if m else None


def ordinals(sts: Obj) -> range:
    """The ordinals the set should have: ``spec.ordinals.start`` onwards, ``spec.replicas`` of them."""
    start = (sts["spec"].get("ordinals") or {}).get("start", 0)
    return range(start, start + sts["spec"].get("replicas", 1))


def running_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and pod_ready(pod)


def available(pod: Obj, min_ready: int) -> bool:
    return running_ready(pod) and time.time() - ready_since(pod) >= min_ready


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def failed(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def revision_data(sts: Obj) -> Obj:
    """What a ControllerRevision stores: the template as a patch that replaces it (what rollout undo applies)."""
    return {"spec": {"template": {**copy.deepcopy(sts["spec"]["template"]), "$patch": "replace"}}}


def revision_template(revision: Obj) -> Obj:
    template = copy.deepcopy(revision["data"]["spec"]["template"])
    template.pop("$patch", None)
    return template


def claim_name(template: Obj, sts: Obj, n: int) -> str:
    return f"{template['metadata']['name']}-{sts['metadata']['name']}-{n}"


class StatefulSetController(Controller):
    name = COMPONENT
    watches = ("apps/statefulsets", "/pods", "apps/controllerrevisions")
    owner_kind = "StatefulSet"

    # -- revisions ---------------------------------------------------------------------------------------------
    def _revisions(self, sts: Obj) -> list[Obj]:
        return sorted((r for r in self.store.items("apps/controllerrevisions", sts["metadata"]["namespace"])
                       if owned_by(r, sts)), key=lambda r: r.get("revision", 0))

    def _update_revision(self, sts: Obj, revisions: list[Obj]) -> Obj:
        """The revision of the current template: an existing one (raised to the newest number if it is an older
        one, as after a rollback) or a new one."""
        data = revision_data(sts)
        newest = max((r.get("revision", 0) for r in revisions), default=0)
        rt = self.rt("apps", "v1", "controllerrevisions")
        ns = sts["metadata"]["namespace"]
        same = next((r for r in revisions if r.get("data") == data), None)
        if same is not None:
            if same.get("revision", 0) < newest:
                out, _ = self.objects.update(rt, ns, same["metadata"]["name"], {**same, "revision": newest + 1},
                                             MANAGER)
                return out
            return same
        collisions = (sts.get("status") or {}).get("collisionCount", 0)
        h = template_hash({"data": data, "collisionCount": collisions})
        labels = {**((sts["spec"]["template"].get("metadata") or {}).get("labels") or {}), HASH_LABEL: h}
        revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": f"{sts['metadata']['name']}-{h}", "labels": labels,
                                 "ownerReferences": [owner_ref(sts)]},
                    "data": data, "revision": newest + 1}
        out, _ = self.objects.create(rt, ns, revision, MANAGER)
        return out

    def _truncate_history(self, sts: Obj, revisions: list[Obj], pods: list[Obj], keep: set[str]) -> None:
        live = keep | {(p["metadata"].get("labels") or {}).get(REVISION_LABEL, "") for p in pods}
        idle = [r for r in revisions if r["metadata"]["name"] not in live]
        limit = sts["spec"].get("revisionHistoryLimit", 10)
        for r in idle[: max(0, len(idle) - limit)]:
            self.objects.delete(self.rt("apps", "v1", "controllerrevisions"), r["metadata"]["namespace"],
                                r["metadata"]["name"], {}, False)

    # -- pods and claims ---------------------------------------------------------------------------------------
    def _new_pod(self, sts: Obj, n: int, revision: Obj) -> Obj:
        template = revision_template(revision)
        name = f"{sts['metadata']['name']}-{n}"
        meta = copy.deepcopy(template.get("metadata") or {})
        meta.pop("generateName", None)
        meta.update(name=name, ownerReferences=[owner_ref(sts)])
        meta["labels"] = {**(meta.get("labels") or {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(n),
                          REVISION_LABEL: revision["metadata"]["name"]}
        spec = copy.deepcopy(template["spec"])
        spec["hostname"] = name
        if sts["spec"].get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        claims = sts["spec"].get("volumeClaimTemplates") or []
        if claims:
            named = {c["metadata"]["name"] for c in claims}
            spec["volumes"] = [v for v in spec.get("volumes") or [] if v.get("name") not in named] + [
                {"name": c["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name(c, sts, n)}}
                for c in claims]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    def _ensure_claims(self, sts: Obj, n: int) -> None:
        """The pod's claims, before the pod (kept when it goes; the retention policy decides their end)."""
        ns = sts["metadata"]["namespace"]
        rt = self.rt("", "v1", "persistentvolumeclaims")
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        selector = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            name = claim_name(template, sts, n)
            if self.store.get("/persistentvolumeclaims", ns, name) is not None:
                continue
            meta = copy.deepcopy(template.get("metadata") or {})
            meta.update(name=name, labels={**(meta.get("labels") or {}), **selector})
            if policy.get("whenDeleted") == "Delete":
                meta["ownerReferences"] = [{**owner_ref(sts), "controller": False}]
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                     "spec": copy.deepcopy(template.get("spec") or {})}
            self.objects.create(rt, ns, claim, MANAGER)
            self.recorder.emit(sts, "Normal", "SuccessfulCreate",
                               f"create Claim {name} Pod {sts['metadata']['name']}-{n} in StatefulSet "
                               f"{sts['metadata']['name']} success", COMPONENT)

    def _release_claims(self, sts: Obj, alive: set[int]) -> None:
        """whenScaled: Delete — the claims of ordinals scaled away go once their pod is gone."""
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenScaled") != "Delete":
            return
        ns, wanted = sts["metadata"]["namespace"], ordinals(sts)
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            prefix = f"{template['metadata']['name']}-{sts['metadata']['name']}-"
            for claim in list(self.store.items("/persistentvolumeclaims", ns)):
                rest = claim["metadata"]["name"].removeprefix(prefix)
                if rest != claim["metadata"]["name"] and rest.isdigit() and int(rest) not in wanted \
                        and int(rest) not in alive:
                    self.objects.delete(self.rt("", "v1", "persistentvolumeclaims"), ns, claim["metadata"]["name"],
                                        {}, False)

    def _create(self, sts: Obj, n: int, revision: Obj) -> None:
        self._ensure_claims(sts, n)
        pod = self._new_pod(sts, n, revision)
        try:
            self.objects.create(self.rt("", "v1", "pods"), sts["metadata"]["namespace"], pod, MANAGER)
        except ApiError as err:
            self.recorder.emit(sts, "Warning", "FailedCreate", f"create Pod {pod['metadata']['name']} in "
                               f"StatefulSet {sts['metadata']['name']} failed error: {err.message}", COMPONENT)
            return
        self.recorder.emit(sts, "Normal", "SuccessfulCreate", f"create Pod {pod['metadata']['name']} in "
                           f"StatefulSet {sts['metadata']['name']} successful", COMPONENT)

    def _delete(self, sts: Obj, pod: Obj) -> None:
        self.objects.delete(self.rt("", "v1", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], {},
                            False)
        self.recorder.emit(sts, "Normal", "SuccessfulDelete", f"delete Pod {pod['metadata']['name']} in "
                           f"StatefulSet {sts['metadata']['name']} successful", COMPONENT)

    # -- the sync ----------------------------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        ns, name = key
        sts = self.store.get("apps/statefulsets", ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        revisions = self._revisions(sts)
        update = self._update_revision(sts, revisions)
        revisions = self._revisions(sts)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == current_name), update)
        pods = {n: p for p in self.store.items("/pods", ns) if owned_by(p, sts)
                and (n := ordinal(sts, p)) is not None}
        self._sync_pods(sts, pods, current, update)
        pods_now = [p for p in self.store.items("/pods", ns) if owned_by(p, sts)]
        self._release_claims(sts, {n for p in pods_now if (n := ordinal(sts, p)) is not None})
        self._status(sts, pods_now, current, update)
        self._truncate_history(sts, self._revisions(sts), pods_now,
                               {current["metadata"]["name"], update["metadata"]["name"]})

    def _sync_pods(self, sts: Obj, pods: dict[int, Obj], current: Obj, update: Obj) -> None:
        spec = sts["spec"]
        wanted = ordinals(sts)
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0) if rolling else 0
        for n, pod in sorted(pods.items()):  # finished pods are replaced
            if failed(pod) and not terminating(pod):
                self._delete(sts, pod)
                pods[n] = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "now"}}
        first_unhealthy = next((n for n, p in sorted(pods.items()) if not running_ready(p) or terminating(p)), None)
        for index, n in enumerate(wanted):
            pod = pods.get(n)
            if pod is None:
                self._create(sts, n, current if rolling and index < partition else update)
                if ordered:
                    return
                continue
            if ordered and (terminating(pod) or not available(pod, spec.get("minReadySeconds", 0))):
                return  # OrderedReady: wait for it (Running and Ready for minReadySeconds) before going on
        condemned = sorted((n for n in pods if n not in wanted), reverse=True)
        for n in condemned:
            pod = pods[n]
            if terminating(pod):
                if ordered:
                    return
                continue
            if ordered and first_unhealthy is not None and first_unhealthy != n:
                return  # scale down only when every other pod is healthy
            self._delete(sts, pod)
            if ordered:
                return
        if condemned and ordered:
            return
        if not rolling:
            return  # OnDelete: pods are replaced (at the update revision) when someone deletes them
        # highest ordinal first, at most maxUnavailable (default 1) pods unhealthy at a time
        budget = max(1, resolve((strategy.get("rollingUpdate") or {}).get("maxUnavailable"), len(wanted), True, "1"))
        budget -= sum(1 for n in wanted if n not in pods or terminating(pods[n]) or not running_ready(pods[n]))
        for n in reversed(wanted[partition:]):
            if budget <= 0:
                return
            pod = pods.get(n)
            stale = pod is not None and (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != \
                update["metadata"]["name"]
            if pod is not None and stale and not terminating(pod):
                self._delete(sts, pod)
                budget -= 1

    def _status(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj) -> None:
        spec = sts["spec"]
        min_ready = spec.get("minReadySeconds", 0)
        created = [p for p in pods if (p.get("status") or {}).get("phase")]
        ready = [p for p in created if running_ready(p)]
        ready_long_enough = [p for p in ready if available(p, min_ready)]
        revision_of = [(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in created if not terminating(p)]
        status = {"observedGeneration": sts["metadata"]["generation"], "replicas": len(created),
                  "readyReplicas": len(ready), "availableReplicas": len(ready_long_enough),
                  "currentReplicas": revision_of.count(current["metadata"]["name"]),
                  "updatedReplicas": revision_of.count(update["metadata"]["name"]),
                  "currentRevision": current["metadata"]["name"], "updateRevision": update["metadata"]["name"],
                  "collisionCount": (sts.get("status") or {}).get("collisionCount", 0)}
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]:
            status["currentRevision"] = status["updateRevision"]
            status["currentReplicas"] = status["updatedReplicas"]
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration", "collisionCount",
                                                                  "availableReplicas")}
        fresh = self.store.get("apps/statefulsets", sts["metadata"]["namespace"], sts["metadata"]["name"]) or sts
        if (fresh.get("status") or {}) != status:
            self.objects.update(self.rt("apps", "v1", "statefulsets"), sts["metadata"]["namespace"],
                                sts["metadata"]["name"], {**fresh, "status": status}, MANAGER, "status")
