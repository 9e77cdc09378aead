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
    """The host folder of ``claim``'s volume; raises ClaimNotReady with the kubelet's words if it has none."""
    pvc = store.get(PVC_KEY, namespace, claim)
    if pvc is None:
        raise ClaimNotReady(f'persistentvolumeclaim "{claim}" not found')
    volume = (pvc.get("spec") or {}).get("volumeName")
    phase = (pvc.get("status") or {}).get("phase")
    if not volume or phase != "Bound":
        raise ClaimNotReady(f'persistentvolumeclaim "{claim}" is not bound')
    pv = store.get(PV_KEY, "", volume)
    if pv is None:
        raise ClaimNotReady(f'persistentvolume "{volume}" not found')
    spec = pv.get("spec") or {}
    path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
    if not path:
        raise ClaimNotReady(f'persistentvolume "{volume}" has no hostPath or local path the lab can mount')
    return Path(path)
