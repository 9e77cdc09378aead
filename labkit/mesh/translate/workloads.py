"""A pod's sidecar identity as Istio derives it: the workload is the pod's controller (a Deployment from its
ReplicaSet, whose name ends with the ``pod-template-hash``; a StatefulSet, DaemonSet or Job by name; the pod itself
without one), ``app``/``version`` from the ``app.kubernetes.io/*`` labels or ``app``/``version``."""

from __future__ import annotations

from typing import Any

from ..identity import ProxyIdentity


def workload_name(pod: dict[str, Any]) -> str:
    """istio's ``GetDeployMetaFromPod``: the controller's name, a ReplicaSet's hash suffix removed."""
    meta = pod.get("metadata") or {}
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None:
        return str(meta.get("name", ""))
    name = str(owner.get("name", ""))
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if owner.get("kind") == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return name.removesuffix(f"-{template_hash}")
    return name


def proxy_identity(pod: dict[str, Any]) -> ProxyIdentity:
    """The :class:`ProxyIdentity` of the sidecar in ``pod`` (an API server's Pod with its ``status.podIP``)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    labels = dict(meta.get("labels") or {})
    return ProxyIdentity(
        pod=str(meta.get("name", "")), namespace=str(meta.get("namespace") or "default"),
        ip=str((pod.get("status") or {}).get("podIP") or ""), workload=workload_name(pod),
        app=labels.get("app.kubernetes.io/name") or labels.get("app", ""),
        version=labels.get("app.kubernetes.io/version") or labels.get("version", ""),
        service_account=str(spec.get("serviceAccountName") or "default"), labels=labels)
