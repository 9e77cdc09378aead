"""The PersistentVolume controller and the storage protection controllers (kube-controller-manager).

The binder matches claims with volumes (class, volume mode, access modes, size, selector, ``volumeName`` and
``claimRef`` pre-binding), binds them both ways with the ``pv.kubernetes.io/*`` annotations, keeps the phases
(volumes: Pending, Available, Bound, Released, Failed; claims: Pending, Bound, Lost), hands claims of a class
with a provisioner to that provisioner (``volume.kubernetes.io/storage-provisioner``), leaves claims of a
``WaitForFirstConsumer`` class to the scheduler, and reclaims released volumes by their policy.

Keys: a claim is ``(namespace, name)``, a volume ``("", name)`` (claims are never cluster-scoped).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

from ..apiserver.objects import now
from ..apiserver.selectors import selector_matches
from ..apiserver.storage import (
    BETA_CLASS,
    PV_KEY,
    PV_PROTECTION,
    PVC_KEY,
    PVC_PROTECTION,
    SC_KEY,
    claim_class,
    default_class,
    size,
    storage_request,
    volume_class,
)
from ..apiserver.store import Event, Store
from .base import MANAGER, Controller, Key, Obj

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
COMPONENT = "persistentvolume-controller"


def annotations(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def claim_ref(pvc: Obj) -> Obj:
    meta = pvc["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]}


def bound_to(pv: Obj, pvc: Obj) -> bool:
    """IsVolumeBoundToClaim: the volume's claimRef names the claim (and its uid, once it has one)."""
    ref = pv["spec"].get("claimRef") or {}
    meta = pvc["metadata"]
    return (ref.get("namespace") == meta["namespace"] and ref.get("name") == meta["name"]
            and ref.get("uid", "") in ("", meta["uid"]))


def uses(pod: Obj, claim: str) -> bool:
    """The pod names the claim in a persistentVolumeClaim volume."""
    return any((v.get("persistentVolumeClaim") or {}).get("claimName") == claim
               for v in pod["spec"].get("volumes") or [])


def fully_bound(pvc: Obj) -> bool:
    return bool(pvc["spec"].get("volumeName")) and BIND_COMPLETED in annotations(pvc)


def binding_mode(store: Store, pvc: Obj) -> str:
    """The claim's class's volumeBindingMode; Immediate without a class."""
    name = claim_class(pvc)
    sc = store.get(SC_KEY, "", name) if name else None
    return (sc or {}).get("volumeBindingMode") or "Immediate"


def mismatch(pv: Obj, pvc: Obj) -> str:
    """checkVolumeSatisfyClaim: why the volume cannot serve the claim ('' when it can)."""
    if size(pv["spec"].get("capacity", {}).get("storage")) < size(storage_request(pvc)):
        return "requested PV is too small"
    if volume_class(pv) != claim_class(pvc):
        return "storageClassName does not match"
    if (pv["spec"].get("volumeMode") or "Filesystem") != (pvc["spec"].get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    if not set(pvc["spec"].get("accessModes") or []) <= set(pv["spec"].get("accessModes") or []):
        return "incompatible accessMode"
    return ""


def find_volume(pvc: Obj, volumes: Iterable[Obj], delayed: bool,
                fits_node: Callable[[Obj], bool] | None = None) -> Obj | None:
    """FindMatchingVolume: a volume pre-bound to the claim, else the smallest available one that satisfies it.

    ``delayed`` (a WaitForFirstConsumer class) leaves unbound volumes to the scheduler, which passes
    ``fits_node`` (the volume's node affinity against its candidate node)."""
    best: Obj | None = None
    for pv in volumes:
        if pv["metadata"].get("deletionTimestamp") or \
                (pv["spec"].get("volumeMode") or "Filesystem") != (pvc["spec"].get("volumeMode") or "Filesystem"):
            continue
        node_ok = fits_node is None or fits_node(pv)
        if pv["spec"].get("claimRef"):
            if bound_to(pv, pvc):
                return pv if node_ok else None
            continue
        if (delayed and fits_node is None) or not node_ok or (pv.get("status") or {}).get("phase") != "Available":
            continue
        selector = pvc["spec"].get("selector")  # none selects every volume
        if (selector is not None and not selector_matches(selector, pv["metadata"].get("labels"))) or \
                mismatch(pv, pvc):
            continue
        if best is None or size(pv["spec"]["capacity"].get("storage")) < size(best["spec"]["capacity"]["storage"]):
            best = pv
    return best


class VolumeWriter(Controller):
    """Writes of claims and volumes shared by the storage controllers."""

    def write(self, obj: Obj, status: bool = False) -> Obj:
        """Update ``obj`` (its status with ``status``); the stored object afterwards."""
        plural = "persistentvolumes" if obj["kind"] == "PersistentVolume" else "persistentvolumeclaims"
        meta = obj["metadata"]
        self.objects.update(self.rt("", "v1", plural), meta.get("namespace", ""), meta["name"], obj, MANAGER,
                            "status" if status else "")
        stored = self.store.get(PV_KEY if plural == "persistentvolumes" else PVC_KEY, meta.get("namespace", ""),
                                meta["name"])
        return stored if stored is not None else obj

    def set_phase(self, obj: Obj, phase: str, message: str = "", volume: Obj | None = None) -> Obj:
        """The phase in the object's status; a claim's status also shows its volume's access modes and capacity
        (none without a volume), as updateClaimStatus keeps them."""
        new = copy.deepcopy(obj)
        st = new.setdefault("status", {})
        if st.get("phase") != phase and obj["kind"] == "PersistentVolume":
            st["lastPhaseTransitionTime"] = now()
        st["phase"] = phase
        if obj["kind"] == "PersistentVolumeClaim":
            st.pop("accessModes", None)
            st.pop("capacity", None)
            if volume is not None:
                st["accessModes"] = list(volume["spec"].get("accessModes") or [])
                st["capacity"] = dict(volume["spec"].get("capacity") or {})
        if message:
            st["message"] = message
        else:
            st.pop("message", None)
            st.pop("reason", None)
        return obj if new == obj else self.write(new, status=True)

    def remove_finalizer(self, obj: Obj, finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        self.write(new)


class PersistentVolumeController(VolumeWriter):
    name = COMPONENT
    watches = (PVC_KEY, PV_KEY, SC_KEY)
    resync = 15.0  # the controller's --pvclaimbinder-sync-period

    def keys_for(self, ev: Event) -> Iterable[Key]:
        meta, spec = ev.obj["metadata"], ev.obj.get("spec") or {}
        if ev.key == PVC_KEY:
            keys = [(meta["namespace"], meta["name"])]
            if spec.get("volumeName"):
                keys.append(("", spec["volumeName"]))
            return keys + [("", pv["metadata"]["name"]) for pv in self.store.items(PV_KEY)
                           if (pv["spec"].get("claimRef") or {}).get("name") == meta["name"]]
        if ev.key == PV_KEY:
            ref = spec.get("claimRef") or {}
            return [("", meta["name"])] + ([(ref["namespace"], ref["name"])] if ref.get("name") else [])
        return self.keys_of(PVC_KEY)

    def all_keys(self) -> Iterable[Key]:
        return self.keys_of(PVC_KEY) + self.keys_of(PV_KEY)

    def reconcile(self, key: Key) -> None:
        if key[0]:
            pvc = self.store.get(PVC_KEY, *key)
            if pvc is not None:
                self.sync_claim(pvc)
        else:
            pv = self.store.get(PV_KEY, "", key[1])
            if pv is not None:
                self.sync_volume(pv)

    # -- claims ---------------------------------------------------------------------------------------------
    def sync_claim(self, pvc: Obj) -> None:
        name = pvc["spec"].get("volumeName")
        if not name and BIND_COMPLETED in annotations(pvc):
            self._lost(pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is "
                                         "lost!")
            return
        if not name:
            self._unbound_claim(pvc)
            return
        pv = self.store.get(PV_KEY, "", name)
        if BIND_COMPLETED not in annotations(pvc):  # pre-bound by its author to a volume
            if pv is None:
                self.set_phase(pvc, "Pending")
            elif not pv["spec"].get("claimRef") or bound_to(pv, pvc):
                why = mismatch(pv, pvc)
                if why:
                    self.recorder.emit(pvc, "Warning", "FailedBinding",
                                       f'Cannot bind to requested volume "{name}": {why}', COMPONENT)
                    self.set_phase(pvc, "Pending")
                else:
                    self.bind(pv, pvc)
            else:
                self.recorder.emit(pvc, "Warning", "FailedBinding",
                                   f'volume "{name}" already bound to a different claim.', COMPONENT)
                self.set_phase(pvc, "Pending")
            return
        if pv is None:
            self._lost(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
        elif not pv["spec"].get("claimRef") or bound_to(pv, pvc):
            self.bind(pv, pvc)
        else:
            self._lost(pvc, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")

    def _lost(self, pvc: Obj, reason: str, message: str) -> None:
        if (pvc.get("status") or {}).get("phase") != "Lost":
            self.recorder.emit(pvc, "Warning", reason, message, COMPONENT)
            self.set_phase(pvc, "Lost")

    def _unbound_claim(self, pvc: Obj) -> None:
        if pvc["spec"].get("storageClassName") is None and BETA_CLASS not in annotations(pvc):
            found = default_class(self.store)  # retroactive default StorageClass assignment
            if found is not None:
                new = copy.deepcopy(pvc)
                new["spec"]["storageClassName"] = found["metadata"]["name"]
                pvc = self.write(new)
        class_name = claim_class(pvc)
        sc = self.store.get(SC_KEY, "", class_name) if class_name else None
        delayed = binding_mode(self.store, pvc) == WAIT_FOR_FIRST_CONSUMER
        pv = find_volume(pvc, self.store.items(PV_KEY), delayed)
        if pv is not None:
            self.bind(pv, pvc)
            return
        pvc = self.set_phase(pvc, "Pending")
        if delayed and SELECTED_NODE not in annotations(pvc):
            waiting = self._unscheduled_users(pvc)
            if not waiting:
                self.recorder.emit(pvc, "Normal", WAIT_FOR_FIRST_CONSUMER,
                                   "waiting for first consumer to be created before binding", COMPONENT)
            else:
                self.recorder.emit(pvc, "Normal", "WaitForPodScheduled",
                                   f"waiting for pod{'s' if len(waiting) > 1 else ''} {','.join(waiting)} to be "
                                   "scheduled", COMPONENT)
        elif not class_name:
            self.recorder.emit(pvc, "Normal", "FailedBinding",
                               "no persistent volumes available for this claim and no storage class is set", COMPONENT)
        elif sc is None:
            self.recorder.emit(pvc, "Warning", "ProvisioningFailed",
                               f'storageclass.storage.k8s.io "{class_name}" not found', COMPONENT)
        else:
            self._external_provisioning(pvc, sc["provisioner"])

    def _unscheduled_users(self, pvc: Obj) -> list[str]:
        """The pods not yet scheduled that use the claim (the scheduler is choosing their node)."""
        return sorted(p["metadata"]["name"] for p in self.store.items("/pods", pvc["metadata"]["namespace"])
                      if not p["spec"].get("nodeName") and uses(p, pvc["metadata"]["name"]))

    def _external_provisioning(self, pvc: Obj, provisioner: str) -> None:
        """Hand the claim to its class's provisioner, which watches for its name in the claim's annotations."""
        if annotations(pvc).get(STORAGE_PROVISIONER) != provisioner:
            new = copy.deepcopy(pvc)
            new["metadata"].setdefault("annotations", {}).update(
                {STORAGE_PROVISIONER: provisioner, BETA_STORAGE_PROVISIONER: provisioner})
            pvc = self.write(new)
        self.recorder.emit(pvc, "Normal", "ExternalProvisioning",
                           f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                           "or manually by the system administrator. If volume creation is delayed, please verify "
                           "that the provisioner is running and correctly registered.", COMPONENT)

    def bind(self, pv: Obj, pvc: Obj) -> None:
        """Bind both ways: the volume's claimRef, the claim's volumeName, their annotations and phases."""
        if not bound_to(pv, pvc) or not pv["spec"]["claimRef"].get("uid"):
            new = copy.deepcopy(pv)
            by_controller = not pv["spec"].get("claimRef")
            new["spec"]["claimRef"] = claim_ref(pvc)
            if by_controller:
                new["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            pv = self.write(new)
        pv = self.set_phase(pv, "Bound")
        if pvc["spec"].get("volumeName") != pv["metadata"]["name"] or BIND_COMPLETED not in annotations(pvc):
            new = copy.deepcopy(pvc)
            notes = new["metadata"].setdefault("annotations", {})
            if not pvc["spec"].get("volumeName"):
                notes[BOUND_BY_CONTROLLER] = "yes"
            notes[BIND_COMPLETED] = "yes"
            new["spec"]["volumeName"] = pv["metadata"]["name"]
            pvc = self.write(new)
        self.set_phase(pvc, "Bound", volume=pv)

    # -- volumes --------------------------------------------------------------------------------------------
    def sync_volume(self, pv: Obj) -> None:
        ref = pv["spec"].get("claimRef")
        if not ref or not ref.get("uid"):  # unused, or pre-bound to a claim that has not come to bind yet
            self.set_phase(pv, "Available")
            return
        pvc = self.store.get(PVC_KEY, ref.get("namespace", ""), ref.get("name", ""))
        if pvc is None or pvc["metadata"]["uid"] != ref["uid"]:
            if (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
                pv = self.set_phase(pv, "Released")
                self._reclaim(pv)
            return
        volume_name = pvc["spec"].get("volumeName")
        if volume_name == pv["metadata"]["name"]:
            self.set_phase(pv, "Bound")
        elif volume_name and PROVISIONED_BY in annotations(pv) and \
                pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":  # provisioned for a claim bound elsewhere
            if (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
                pv = self.set_phase(pv, "Released")
            self._reclaim(pv)
        elif volume_name:  # the claim went to another volume: unbind this one (keep its author's pre-binding)
            new = copy.deepcopy(pv)
            if BOUND_BY_CONTROLLER in annotations(pv):
                new["spec"].pop("claimRef")
                new["metadata"]["annotations"].pop(BOUND_BY_CONTROLLER)
            else:
                new["spec"]["claimRef"].pop("uid", None)
            self.set_phase(self.write(new), "Available")

    def _reclaim(self, pv: Obj) -> None:
        """Act on a released volume's reclaim policy; Delete of a provisioned volume is its provisioner's work."""
        policy = pv["spec"].get("persistentVolumeReclaimPolicy") or "Retain"
        name = pv["metadata"]["name"]
        if policy == "Retain" or (policy == "Delete" and PROVISIONED_BY in annotations(pv)):
            return
        if policy == "Recycle":
            reason = "VolumeFailedRecycle"
            message = ("Recycle (deprecated) is not supported by the labkit simulator: use Delete with a provisioner, "
                       "or Retain" if pv["spec"].get("hostPath") or pv["spec"].get("nfs")
                       else "No recycler plugin found for the volume!")
        else:
            reason = "VolumeFailedDelete"
            host_path = (pv["spec"].get("hostPath") or {}).get("path")
            if host_path is None:
                message = f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
            elif not host_path.startswith("/tmp/") or len(host_path) == len("/tmp/"):
                message = f"host_path deleter only supports /tmp/.+ but received provided {host_path}"
            else:
                message = ("deleting a hostPath volume's folder is not supported by the labkit simulator: "
                           "delete it and the PersistentVolume yourself")
        self.recorder.emit(pv, "Warning", reason, message, COMPONENT)
        self.set_phase(pv, "Failed", message)


class StorageProtectionController(VolumeWriter):
    """The pvc-protection and pv-protection controllers: a claim a scheduled pod uses, and a bound volume,
    stay Terminating until they are not; then their finalizer goes and the deletion completes."""

    name = "storage-protection-controller"
    watches = (PVC_KEY, PV_KEY, "/pods")

    def keys_for(self, ev: Event) -> Iterable[Key]:
        meta = ev.obj["metadata"]
        if ev.key == "/pods":
            return [(meta["namespace"], v["persistentVolumeClaim"]["claimName"])
                    for v in ev.obj["spec"].get("volumes") or [] if v.get("persistentVolumeClaim")]
        return [(meta.get("namespace", ""), meta["name"])]

    def all_keys(self) -> Iterable[Key]:
        return [k for store_key in (PVC_KEY, PV_KEY) for k in self.keys_of(store_key)]

    def reconcile(self, key: Key) -> None:
        if key[0]:
            pvc = self.store.get(PVC_KEY, *key)
            if pvc is not None and self._deleting(pvc, PVC_PROTECTION) and not self.in_use(pvc):
                self.remove_finalizer(pvc, PVC_PROTECTION)
            return
        pv = self.store.get(PV_KEY, "", key[1])
        if pv is not None and self._deleting(pv, PV_PROTECTION) and (pv.get("status") or {}).get("phase") != "Bound":
            self.remove_finalizer(pv, PV_PROTECTION)

    @staticmethod
    def _deleting(obj: Obj, finalizer: str) -> bool:
        return bool(obj["metadata"].get("deletionTimestamp")) and finalizer in (obj["metadata"].get("finalizers")
                                                                                 or [])

    def in_use(self, pvc: Obj) -> bool:
        """A scheduled pod names the claim, finished or not (a kubelet has seen it); unscheduled ones do not count,
        since a kubelet never starts a pod whose claim is being deleted."""
        return any(pod["spec"].get("nodeName") and uses(pod, pvc["metadata"]["name"])
                   for pod in self.store.items("/pods", pvc["metadata"]["namespace"]))
