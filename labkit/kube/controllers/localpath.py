"""The local-path provisioner (rancher.io/local-path, as k3s, RKE2 and kind ship it).

For a claim handed to it (``volume.kubernetes.io/storage-provisioner``) once the scheduler has chosen a node
(``volume.kubernetes.io/selected-node``), it makes a folder for the volume on that node, under the lab home
(``<volumes>/<node>/pvc-<uid>_<namespace>_<claim>``), and creates the PersistentVolume ``pvc-<claim uid>``:
a ``hostPath`` with node affinity to that node, pre-bound to the claim, which the PV controller then binds.
A released volume of its own with reclaimPolicy Delete loses its folder, then its PersistentVolume.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from ..apiserver.objects import Objects
from ..apiserver.storage import PV_KEY, PVC_KEY, SC_KEY, claim_class, storage_request
from ..apiserver.store import Event
from .base import MANAGER, Cluster, EventRecorder, Key, Obj
from .volumes import PROVISIONED_BY, SELECTED_NODE, STORAGE_PROVISIONER, VolumeWriter, annotations, claim_ref

PROVISIONER = "rancher.io/local-path"
NODE_ANNOTATION = "local.path.provisioner/selected-node"
SUPPORTED_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


class LocalPathProvisioner(VolumeWriter):
    name = PROVISIONER
    watches = (PVC_KEY, PV_KEY)
    resync = 15.0

    def __init__(self, objects: Objects, recorder: EventRecorder) -> None:
        super().__init__(objects, recorder)
        self.root: Path | None = None  # where the nodes' volume folders live, from configure()
        # the event source, as the provisioner's leader names itself: <provisioner>_<pod>_<uuid>
        self.identity = f"{PROVISIONER}_local-path-provisioner_{uuid.uuid4()}"

    def configure(self, cluster: Cluster) -> None:
        self.root = cluster.volumes

    def keys_for(self, ev: Event) -> Iterable[Key]:
        meta = ev.obj["metadata"]
        return [(meta.get("namespace", ""), meta["name"])]

    def all_keys(self) -> Iterable[Key]:
        return self.keys_of(PVC_KEY) + self.keys_of(PV_KEY)

    def reconcile(self, key: Key) -> None:
        if self.root is None:
            return
        if key[0]:
            pvc = self.store.get(PVC_KEY, *key)
            if pvc is not None:
                self.provision(pvc, self.root)
        else:
            pv = self.store.get(PV_KEY, "", key[1])
            if pv is not None:
                self.delete(pv, self.root)

    def provision(self, pvc: Obj, root: Path) -> None:
        meta, spec = pvc["metadata"], pvc["spec"]
        if spec.get("volumeName") or meta.get("deletionTimestamp") or \
                annotations(pvc).get(STORAGE_PROVISIONER) != PROVISIONER:
            return
        class_name = claim_class(pvc)
        sc = self.store.get(SC_KEY, "", class_name)
        name = f"pvc-{meta['uid']}"
        if sc is None or sc.get("provisioner") != PROVISIONER or self.store.get(PV_KEY, "", name) is not None:
            return
        node = annotations(pvc).get(SELECTED_NODE)
        failure = ("configuration error, no node was specified" if not node else
                   "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes"
                   if any(m not in SUPPORTED_MODES for m in spec.get("accessModes") or []) else "")
        if failure:
            self.recorder.emit(pvc, "Warning", "ProvisioningFailed",
                               f'failed to provision volume with StorageClass "{class_name}": {failure}', self.identity)
            return
        claim = f'{meta["namespace"]}/{meta["name"]}'
        self.recorder.emit(pvc, "Normal", "Provisioning",
                           f'External provisioner is provisioning volume for claim "{claim}"', self.identity)
        folder = root / str(node) / f"{name}_{meta['namespace']}_{meta['name']}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # as the provisioner's helper pod makes it: any container user may write
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER, NODE_ANNOTATION: node}},
            "spec": {
                "accessModes": list(spec.get("accessModes") or []),
                "capacity": {"storage": storage_request(pvc)},
                "claimRef": claim_ref(pvc),
                "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "storageClassName": class_name,
                "volumeMode": spec.get("volumeMode") or "Filesystem",
            },
        }
        self.objects.create(self.rt("", "v1", "persistentvolumes"), "", pv, MANAGER)
        self.recorder.emit(pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}",
                           self.identity)

    def delete(self, pv: Obj, root: Path) -> None:
        """A released volume of ours with reclaimPolicy Delete: its folder, then the object."""
        if annotations(pv).get(PROVISIONED_BY) != PROVISIONER or pv["metadata"].get("deletionTimestamp") or \
                (pv.get("status") or {}).get("phase") != "Released" or \
                pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            return
        folder = Path((pv["spec"].get("hostPath") or {}).get("path") or "/")
        if folder.resolve().is_relative_to(root.resolve()) and folder.resolve() != root.resolve():
            shutil.rmtree(folder, ignore_errors=True)
        self.objects.delete(self.rt("", "v1", "persistentvolumes"), "", pv["metadata"]["name"], {}, False)
