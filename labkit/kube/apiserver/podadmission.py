"""The ServiceAccount admission plugin: every new pod runs as a service account and, unless told not to, gets
the ``kube-api-access-*`` projected volume (a bound token, the cluster CA, the namespace) mounted read-only at
``/var/run/secrets/kubernetes.io/serviceaccount`` in each of its containers, as the real API server adds it.
"""

from __future__ import annotations

import random
from typing import Any

from ...core.errors import ApiError
from .admission import Plugin, Request
from .tokens import MOUNTED_SECONDS

Obj = dict[str, Any]
DEFAULT = "default"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA = "kube-root-ca.crt"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet


def default_service_account(namespace: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT, "namespace": namespace}}


def ensure_default_service_account(objects: Any, namespace: str) -> Obj | None:
    """The namespace's ``default`` ServiceAccount, created if the namespace is active and lacks it."""
    sa = objects.store.get("/serviceaccounts", namespace, DEFAULT)
    if sa is not None:
        return sa
    ns = objects.store.get("/namespaces", "", namespace)
    if ns is None or ns["metadata"].get("deletionTimestamp"):
        return None
    from .objects import WriteOptions  # objects imports this module

    rt = objects.registry.find("", "v1", "serviceaccounts")
    created, _ = objects.create(rt, namespace, default_service_account(namespace), WriteOptions())
    return objects.store.get("/serviceaccounts", namespace, DEFAULT) or created


def token_volume(name: str) -> Obj:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": MOUNTED_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


class ServiceAccountAdmission(Plugin):
    """Defaults ``serviceAccountName``, refuses an unknown service account, mounts its token."""

    name = "ServiceAccount"

    def admit(self, req: Request) -> list[str]:
        if req.rt.key != "/pods" or req.old is not None:
            return []
        pod, ns = req.obj, req.namespace
        spec = pod.setdefault("spec", {})
        if (pod["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror"):
            return []  # a static pod's mirror: no service account
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        sa = req.objects.store.get("/serviceaccounts", ns, name)
        if sa is None and name == DEFAULT and not req.dry_run:
            # The real plugin retries its lookup of "default" for a moment, waiting for the service account
            # controller of a namespace just created; the sim's controllers share this thread, so it does
            # what that controller would do in the meantime.
            sa = ensure_default_service_account(req.objects, ns)
        if sa is None:
            raise ApiError(403, "Forbidden", f'pods "{pod["metadata"].get("name", "")}" is forbidden: error looking '
                                             f'up service account {ns}/{name}: serviceaccount "{name}" not found',
                           {"name": pod["metadata"].get("name", ""), "kind": "pods"})
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):  # as the real plugin: the SA's, copied
            spec["imagePullSecrets"] = [{"name": r["name"]} for r in sa["imagePullSecrets"] if r.get("name")]
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa.get("automountServiceAccountToken")
        if automount is False:
            return []
        volumes = spec.setdefault("volumes", [])
        volume = next((v["name"] for v in volumes if v.get("name", "").startswith(VOLUME_PREFIX)), None)
        if volume is None:
            taken = {v.get("name") for v in volumes}
            while volume is None or volume in taken:
                volume = VOLUME_PREFIX + "".join(random.choices(_ALPHABET, k=5))
            volumes.append(token_volume(volume))
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(group) or []:
                mounts = c.setdefault("volumeMounts", [])
                if not any(m.get("mountPath") == TOKEN_MOUNT for m in mounts):
                    mounts.append({"name": volume, "readOnly": True, "mountPath": TOKEN_MOUNT})
        return []
