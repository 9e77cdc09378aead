"""The ``scale`` subresource's view of a workload (autoscaling/v1 Scale), for its HTTP path and the autoscaler."""

from __future__ import annotations

from typing import Any

from .selectors import selector_string

Obj = dict[str, Any]


def scale_of(obj: Obj) -> Obj:
    """The Scale of a Deployment, ReplicaSet or StatefulSet (or a custom resource with ``spec.replicas``)."""
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    meta = {k: obj["metadata"][k] for k in keep if k in obj["metadata"]}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_string(obj.get("spec", {}).get("selector"))}}
