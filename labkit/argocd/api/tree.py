"""An Application's resource tree when the controller's cache has none to give: its managed resources
(``status.resources``) and, through ``ownerReferences``, what they own (ReplicaSets, Pods, EndpointSlices), read
from the Kubernetes API: the nodes of Argo CD's ``ApplicationTree``."""

from __future__ import annotations

from typing import Any

from .kubeapi import KubeApi, KubeError

# Where child kinds live: (group, version, plural, kind), listed per destination namespace
CHILDREN = (("apps", "v1", "replicasets", "ReplicaSet"), ("", "v1", "pods", "Pod"),
            ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"))
PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
           "ReplicaSet": "replicasets", "Service": "services", "ConfigMap": "configmaps", "Secret": "secrets",
           "Pod": "pods", "Job": "jobs", "CronJob": "cronjobs", "Ingress": "ingresses",
           "PersistentVolumeClaim": "persistentvolumeclaims", "ServiceAccount": "serviceaccounts",
           "Namespace": "namespaces"}


def _path(group: str, version: str, plural: str, namespace: str, name: str = "") -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")


def _node(obj: dict[str, Any], group: str, version: str, kind: str,
          health: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    node: dict[str, Any] = {"group": group, "version": version, "kind": kind, "namespace": meta.get("namespace", ""),
                            "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                            "resourceVersion": meta.get("resourceVersion", ""),
                            "createdAt": meta.get("creationTimestamp", "")}
    if health:
        node["health"] = health
    if kind == "Pod":
        phase = (obj.get("status") or {}).get("phase", "")
        node["info"] = [{"name": "Status Reason", "value": phase}]
        node["images"] = [c.get("image", "") for c in (obj.get("spec") or {}).get("containers", [])]
    return node


async def resource_tree(kube: KubeApi, app: dict[str, Any]) -> dict[str, Any]:
    """``{"nodes": [...], "hosts": []}``: each managed resource that exists, and its descendants with
    ``parentRefs``."""
    nodes: list[dict[str, Any]] = []
    by_uid: dict[str, dict[str, Any]] = {}
    namespaces: set[str] = set()
    for res in (app.get("status") or {}).get("resources") or []:
        plural = PLURALS.get(res.get("kind", ""))
        if plural is None:
            continue
        try:
            obj = await kube.get(_path(res.get("group", ""), res.get("version", "v1"), plural,
                                       res.get("namespace", ""), res["name"]))
        except KubeError:
            continue  # Missing: not in the tree
        node = _node(obj, res.get("group", ""), res.get("version", "v1"), res["kind"], res.get("health"))
        nodes.append(node)
        by_uid[node["uid"]] = node
        if res.get("namespace"):
            namespaces.add(res["namespace"])
    for ns in sorted(namespaces):
        for group, version, plural, kind in CHILDREN:  # parents before children: ReplicaSets, then Pods
            try:
                listed = await kube.get(_path(group, version, plural, ns))
            except KubeError:
                continue
            for obj in listed.get("items", []):
                owners = [o for o in obj.get("metadata", {}).get("ownerReferences") or [] if o.get("uid") in by_uid]
                if not owners:
                    continue
                node = _node(obj, group, version, kind)
                node["parentRefs"] = [{k: by_uid[o["uid"]][k] for k in ("group", "kind", "namespace", "name", "uid")}
                                      for o in owners]
                nodes.append(node)
                by_uid[node["uid"]] = node
    return {"nodes": nodes, "hosts": []}
