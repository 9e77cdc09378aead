"""The downward API: pod fields and container resources as the kubelet resolves them for env and volumes."""

from __future__ import annotations

import math

from ..apiserver import quantity
from ..controllers.base import Obj

# the node's allocatable, what an unset limit resolves to (agent.node_object)
NODE_ALLOCATABLE = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "20Gi"}


def all_containers(pod: Obj) -> list[Obj]:
    """The pod's init containers and containers, in that order."""
    return [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]


class FieldError(ValueError):
    """A field or resource the downward API cannot resolve (the kubelet's message)."""


def pod_field(pod: Obj, path: str, pod_ip: str, host_ip: str, node_name: str, volume: bool = False) -> str:
    """The value of ``fieldRef.fieldPath`` (env: single labels/annotations; volumes also whole maps)."""
    meta, spec = pod["metadata"], pod["spec"]
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
              "spec.nodeName": node_name, "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip,
              "status.hostIPs": host_ip}
    if path in simple and not (volume and path.startswith(("spec.", "status."))):
        return simple[path]
    for prefix in ("metadata.labels", "metadata.annotations"):
        source = meta.get(prefix.split(".")[1]) or {}
        if path == prefix and volume:
            return "\n".join(f'{k}="{_escape(v)}"' for k, v in sorted(source.items()))
        if path.startswith(prefix + "['") and path.endswith("']"):
            return source.get(path[len(prefix) + 2:-2], "")
    raise FieldError(f'unsupported fieldPath: {path}')


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def resource_field(container: Obj, resource: str, divisor: str | None) -> str:
    """``resourceFieldRef``: a container's limit or request in units of ``divisor``, rounded up; an unset
    limit is the node's allocatable, an unset request is 0 (or its limit, as defaulting sets it)."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise FieldError(f"unsupported container resource : {resource}")
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    if kind == "limits":
        raw = limits.get(name, NODE_ALLOCATABLE.get(name, "0"))
    else:
        raw = requests.get(name, limits.get(name, "0"))
    value = quantity.parse(raw)
    div = quantity.parse(divisor or "1") or 1  # a zero divisor is an unset one (Istio's injected env has "0")
    return str(math.ceil(value / div))


def resolve_ref(pod: Obj, ref: Obj, container: Obj | None, all_containers: list[Obj], pod_ip: str,
                host_ip: str, node_name: str, volume: bool) -> str:
    """One downward API item: a ``fieldRef`` or a ``resourceFieldRef`` (which names its container in volumes)."""
    if "fieldRef" in ref:
        return pod_field(pod, ref["fieldRef"]["fieldPath"], pod_ip, host_ip, node_name, volume)
    rf = ref["resourceFieldRef"]
    target = container
    if rf.get("containerName"):
        target = next((c for c in all_containers if c["name"] == rf["containerName"]), None)
        if target is None:
            raise FieldError(f"container {rf['containerName']} not found")
    if target is None:
        raise FieldError("resourceFieldRef needs a containerName in a volume")
    return resource_field(target, rf["resource"], rf.get("divisor"))
