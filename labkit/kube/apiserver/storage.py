"""Storage objects as the API server treats them: what StorageClasses, PersistentVolumes and claims mean
(their class, access modes, the default class), the registry checks of the three kinds, and the admission
plugins DefaultStorageClass and StorageObjectInUseProtection.

The plugins follow ``admission.Plugin`` (``name``, ``admit``, ``validate``) and take their place in
``plugins.CHAIN``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import ApiError
from . import quantity
from .fielderrors import Cause, dns1123_subdomain, forbidden, invalid, not_supported, required
from .status import invalid as invalid_object
from .store import Store

if TYPE_CHECKING:
    from .admission import Request

Obj = dict[str, Any]
SC_KEY = "storage.k8s.io/storageclasses"
PV_KEY = "/persistentvolumes"
PVC_KEY = "/persistentvolumeclaims"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
VOLUME_MODES = ("Block", "Filesystem")
# The volume sources of a PersistentVolumeSpec (one is required); the sim mounts hostPath and local ones.
VOLUME_SOURCES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc", "flexVolume",
                  "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local", "nfs",
                  "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
                  "vsphereVolume")


def access_modes(modes: list[str] | None) -> str:
    """``GetAccessModesAsString``: ``RWO,ROX`` in the fixed order RWO, ROX, RWX, RWOP."""
    given = set(modes or [])
    return ",".join(short for mode, short in ACCESS_MODES.items() if mode in given)


def claim_class(pvc: Obj) -> str:
    """The class of a claim (the beta annotation wins over ``spec.storageClassName``); '' for none."""
    beta = (pvc["metadata"].get("annotations") or {}).get(BETA_CLASS)
    return beta if beta is not None else (pvc.get("spec") or {}).get("storageClassName") or ""


volume_class = claim_class  # a PersistentVolume names its class the same way


def is_default_class(sc: Obj) -> bool:
    annotations = sc["metadata"].get("annotations") or {}
    return annotations.get(DEFAULT_CLASS) == "true" or annotations.get(BETA_DEFAULT_CLASS) == "true"


def default_class(store: Store) -> Obj | None:
    """The default StorageClass: of several, the newest (then the first by name), as the admission plugin picks."""
    defaults = [sc for sc in store.items(SC_KEY) if is_default_class(sc)]
    defaults.sort(key=lambda sc: sc["metadata"]["name"])
    defaults.sort(key=lambda sc: sc["metadata"].get("creationTimestamp") or "", reverse=True)
    return defaults[0] if defaults else None


def storage_request(pvc: Obj) -> str | None:
    return (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def size(value: Any) -> float:
    """A storage quantity in bytes (0 when it is not one)."""
    try:
        return float(quantity.parse(value))
    except (ValueError, TypeError):
        return 0.0


# ------------------------------------------------------------------------------------ registry checks


def _storage_quantity(value: Any, field: str) -> list[Cause]:
    if value is None:
        return [required(field)]
    try:
        parsed = quantity.parse(value)
    except ValueError:
        return []  # the decoder already refused it
    return [invalid(field, str(value), "must be greater than zero")] if parsed <= 0 else []


def _modes(modes: Any, field: str, detail: str) -> list[Cause]:
    if not modes:
        return [required(field, detail)]
    return [not_supported(field, m, sorted(ACCESS_MODES)) for m in modes if m not in ACCESS_MODES]


def claim_causes(pvc: Obj, old: Obj | None) -> list[Cause]:
    """ValidatePersistentVolumeClaim (and its update rule: the spec is immutable but for the requests)."""
    spec = pvc.get("spec") or {}
    out = _modes(spec.get("accessModes"), "spec.accessModes", "at least 1 access mode is required")
    out += _storage_quantity(storage_request(pvc), "spec.resources[storage]")
    if spec.get("storageClassName"):
        out += [invalid("spec.storageClassName", spec["storageClassName"], m)
                for m in dns1123_subdomain(spec["storageClassName"])]
    if old is not None:
        bound = (old.get("status") or {}).get("phase") == "Bound"

        def frozen(s: Obj) -> Obj:
            resources = {k: v for k, v in (s.get("resources") or {}).items() if k != "requests" or not bound}
            rest = {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName")}
            if not (old.get("spec") or {}).get("volumeName"):
                rest.pop("volumeName", None)  # binding sets it
            if (old.get("spec") or {}).get("storageClassName") is None:
                rest.pop("storageClassName", None)  # the retroactive default class sets it
            return {**rest, "resources": resources}

        if frozen(spec) != frozen(old.get("spec") or {}):
            out.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                         "volumeAttributesClassName for bound claims"))
        elif bound and size(storage_request(pvc)) < size(storage_request(old)) and \
                size(storage_request(pvc)) <= size(((old.get("status") or {}).get("capacity") or {}).get("storage")):
            # a smaller request only back down towards a failed expansion (RecoverVolumeExpansionFailure)
            out.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    return out


def resize_refusal(store: Store, pvc: Obj, old: Obj) -> str:
    """The PersistentVolumeClaimResize admission plugin's refusal of a bound claim's growth ('' if it does not
    grow); the sim expands no volume, so a class that allows expansion is refused as not supported."""
    if size(storage_request(pvc)) <= size(storage_request(old)) or not (old.get("spec") or {}).get("volumeName"):
        return ""
    sc = store.get(SC_KEY, "", claim_class(pvc))
    if sc is None or not sc.get("allowVolumeExpansion"):
        return "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must " \
               "support resize"
    return "expanding a volume is not supported by the labkit simulator"


def volume_causes(pv: Obj, old: Obj | None) -> list[Cause]:
    """ValidatePersistentVolume: capacity, access modes, exactly one volume source, a local volume's affinity."""
    spec = pv.get("spec") or {}
    out: list[Cause] = []
    capacity = spec.get("capacity")
    out += [required("spec.capacity")] if not capacity else _storage_quantity(capacity.get("storage"),
                                                                               "spec.capacity[storage]")
    out += _modes(spec.get("accessModes"), "spec.accessModes", "")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        out.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    sources = [s for s in VOLUME_SOURCES if spec.get(s) is not None]
    if not sources:
        out.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        out.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    if spec.get("hostPath") is not None and not spec["hostPath"].get("path"):
        out.append(required("spec.hostPath.path"))
    if spec.get("local") is not None:
        if not spec["local"].get("path"):
            out.append(required("spec.local.path"))
        if not spec.get("nodeAffinity"):
            out.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    if old is not None and (old.get("spec") or {}).get("nodeAffinity") and \
            spec.get("nodeAffinity") != old["spec"]["nodeAffinity"]:
        out.append(invalid("nodeAffinity.required.nodeSelectorTerms", spec.get("nodeAffinity"),
                           "field is immutable"))
    return out


def class_causes(sc: Obj, old: Obj | None) -> list[Cause]:
    """ValidateStorageClass and ValidateStorageClassUpdate."""
    out: list[Cause] = []
    if not sc.get("provisioner"):
        out.append(required("provisioner"))
    if sc.get("reclaimPolicy") not in (None, "Delete", "Retain"):
        out.append(not_supported("reclaimPolicy", sc["reclaimPolicy"], ("Delete", "Retain")))
    if sc.get("volumeBindingMode") not in (None, *BINDING_MODES):
        out.append(not_supported("volumeBindingMode", sc["volumeBindingMode"], BINDING_MODES))
    if old is not None:
        for field in ("parameters", "provisioner", "reclaimPolicy"):
            if sc.get(field) != old.get(field):
                out.append(forbidden(field, f"updates to {field} are forbidden."))
        if sc.get("volumeBindingMode") != old.get("volumeBindingMode"):
            out.append(invalid("volumeBindingMode", sc.get("volumeBindingMode"), "field is immutable"))
    return out


_CHECKS = {PVC_KEY: claim_causes, PV_KEY: volume_causes, SC_KEY: class_causes}


# ------------------------------------------------------------------------------------ admission plugins


class StorageValidation:
    """The registry strategies of the storage kinds: a new volume's phase time, and the validation of create and
    update, with their messages."""

    name = "StorageValidation"

    def admit(self, req: Request) -> list[str]:
        if req.rt.key == PV_KEY and req.old is None:  # PrepareForCreate: Pending since now
            from .objects import now  # objects imports admission, which imports this module

            req.obj.setdefault("status", {})["lastPhaseTransitionTime"] = now()
        return []

    def validate(self, req: Request) -> list[str]:
        check = _CHECKS.get(req.rt.key)
        if check is None:
            return []
        name = req.obj["metadata"].get("name", "")
        causes = check(req.obj, req.old)
        if causes:
            raise invalid_object(req.rt, name, causes)
        refusal = resize_refusal(req.objects.store, req.obj, req.old) if req.old and req.rt.key == PVC_KEY else ""
        if refusal:
            raise ApiError(403, "Forbidden", f'persistentvolumeclaims "{name}" is forbidden: {refusal}',
                           {"name": name, "kind": "persistentvolumeclaims"})
        return []


class DefaultStorageClass:
    """A claim created without ``storageClassName`` gets the default StorageClass, if there is one."""

    name = "DefaultStorageClass"

    def admit(self, req: Request) -> list[str]:
        if req.rt.key != PVC_KEY or req.old is not None:
            return []
        spec = req.obj.setdefault("spec", {})
        if spec.get("storageClassName") is not None or BETA_CLASS in (req.obj["metadata"].get("annotations") or {}):
            return []
        found = default_class(req.objects.store)
        if found is not None:
            spec["storageClassName"] = found["metadata"]["name"]
        return []

    def validate(self, req: Request) -> list[str]:
        return []


class StorageObjectInUseProtection:
    """New claims and volumes carry the protection finalizers that the protection controllers remove."""

    name = "StorageObjectInUseProtection"
    FINALIZERS = {PVC_KEY: PVC_PROTECTION, PV_KEY: PV_PROTECTION}

    def admit(self, req: Request) -> list[str]:
        finalizer = self.FINALIZERS.get(req.rt.key)
        if finalizer is None or req.old is not None:
            return []
        finalizers = req.obj["metadata"].setdefault("finalizers", [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)
        return []

    def validate(self, req: Request) -> list[str]:
        return []

