"""Discovery documents: /version, /api, /apis and the per group-version resource lists."""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import ResourceType

SERVER_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0+labkit", "gitCommit": "labkit-sim",
                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25",
                  "compiler": "gc", "platform": "linux/amd64"}

_SUB_KIND = {"scale": ("autoscaling", "v1", "Scale", ["get", "patch", "update"]),
             "status": (None, None, None, ["get", "patch", "update"]),
             "log": ("", "v1", "Pod", ["get"]),
             "binding": ("", "v1", "Binding", ["create"]),
             "eviction": ("policy", "v1", "Eviction", ["create"]),
             "finalize": ("", "v1", "Namespace", ["update"]),
             "exec": ("", "v1", "PodExecOptions", ["create", "get"]),
             "attach": ("", "v1", "PodAttachOptions", ["create", "get"]),
             "portforward": ("", "v1", "PodPortForwardOptions", ["create", "get"]),
             "token": ("authentication.k8s.io", "v1", "TokenRequest", ["create"]),
             "approval": (None, None, None, ["get", "patch", "update"])}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:11]


def resource_list(group_version: str, resources: list[ResourceType]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for r in resources:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs),
                                 "storageVersionHash": _hash(r.key + r.kind)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            group, version, kind, verbs = _SUB_KIND[sub]
            s: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                 "kind": kind or r.kind, "verbs": verbs}
            if group is not None and (group, version) != (r.group, r.version):
                s["group"], s["version"] = group, version
            out.append(s)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs,
            "preferredVersion": vs[0]}


def api_group_list(groups: dict[str, list[str]]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in api_group(g, vs).items() if k not in ("kind", "apiVersion")}
                       for g, vs in groups.items()]}
