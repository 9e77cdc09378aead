"""Where a pod's PersistentVolumeClaim lives on its node: the claim's bound volume's host folder.

The contract between the storage controllers (which bind claims and provision volumes as folders, the way
the local-path provisioner does) and the kubelet (which mounts them): a bound PersistentVolume names its
folder in ``spec.hostPath.path`` or ``spec.local.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PVC_KEY = "/persistentvolumeclaims"
PV_KEY = "/persistentvolumes"


class ClaimNotReady(Exception):
    """The claim is missing or not bound yet: the pod waits (ContainerCreating, a FailedMount event)."""


def claim_path(store: Any, namespace: str, claim: str) -> Path:
    """The host folder of ``claim``'s volume; raises ClaimNotReady with the kubelet's words (its volume manager's
    desired-state populator) if it has none."""
    pvc = store.get(PVC_KEY, namespace, claim)
    if pvc is None:
        raise ClaimNotReady(f'error processing PVC {namespace}/{claim}: persistentvolumeclaim "{claim}" not found')
    if pvc["metadata"].get("deletionTimestamp"):
        raise ClaimNotReady(f"can't start pod because PVC {namespace}/{claim} is being deleted")
    volume = (pvc.get("spec") or {}).get("volumeName") or ""
    phase = (pvc.get("status") or {}).get("phase") or ""
    if not volume or phase != "Bound":
        raise ClaimNotReady(f'error processing PVC {namespace}/{claim}: PVC {namespace}/{claim} has non-bound phase '
                            f'("{phase}") or empty pvc.Spec.VolumeName ("{volume}")')
    pv = store.get(PV_KEY, "", volume)
    if pv is None:
        raise ClaimNotReady(f'error processing PVC {namespace}/{claim}: failed to fetch PV "{volume}" from API '
                            f'server: persistentvolume "{volume}" not found')
    spec = pv.get("spec") or {}
    if (spec.get("claimRef") or {}).get("uid") != pvc["metadata"].get("uid"):
        raise ClaimNotReady(f'error processing PVC {namespace}/{claim}: failed to fetch PV "{volume}" from API '
                            f'server: pvc.UID ("{pvc["metadata"].get("uid")}") != pv.Spec.ClaimRef.UID '
                            f'("{(spec.get("claimRef") or {}).get("uid", "")}")')
    path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
    if not path:
        source = next((k for k in spec if k not in _NOT_SOURCES), "?")
        raise ClaimNotReady(f'persistentvolume "{volume}": volume type {source!r} is not supported by the labkit '
                            "simulator (it mounts hostPath and local volumes)")
    return Path(path)


_NOT_SOURCES = {"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy",
                "storageClassName", "volumeMode", "volumeAttributesClassName"}
