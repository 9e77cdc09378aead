"""The RBAC bootstrap policy: the default ClusterRoles and ClusterRoleBindings the API server keeps at start.

As kube-apiserver's ``rbac/bootstrap-roles`` post-start hook: a missing object is created; one annotated
``rbac.authorization.kubernetes.io/autoupdate: "true"`` gets back any rule, subject, label or annotation it lost
(additions are kept, as ``kubectl auth reconcile`` does); one whose annotation an admin set to "false" is left alone.
Aggregated roles (``admin``, ``edit``, ``view``) only get their aggregationRule reconciled; their rules are the
aggregation controller's.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .objects import Objects, WriteOptions
from .rbac import CLUSTER_BINDINGS, CLUSTER_ROLES, GROUP

Obj = dict[str, Any]
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
DEFAULTS_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_DATA = Path(__file__).parent / "data" / "bootstrap-rbac.yaml"


@cache
def policy() -> tuple[list[Obj], list[Obj]]:
    """The bootstrap ClusterRoles and ClusterRoleBindings, as objects."""
    data = yaml.safe_load(_DATA.read_text())
    meta = lambda name, labels: {"name": name, "labels": {**DEFAULTS_LABEL, **(labels or {})},  # noqa: E731
                                 "annotations": {AUTOUPDATE: "true"}}
    roles = []
    for r in data["clusterRoles"]:
        role: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": meta(r["name"], r.get("labels"))}
        if "aggregationRule" in r:
            role["aggregationRule"] = r["aggregationRule"]
        else:
            role["rules"] = r["rules"]
        roles.append(role)
    bindings = [{"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": meta(b["name"], None),
                 "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": b["role"]},
                 "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in b["groups"]]}
                for b in data["clusterRoleBindings"]]
    return roles, bindings


def _union(have: list[Any] | None, want: list[Any] | None) -> list[Any]:
    out = list(have or [])
    out += [x for x in want or [] if x not in out]
    return out


def _reconciled(current: Obj, wanted: Obj) -> Obj:
    new = copy.deepcopy(current)
    meta = new["metadata"]
    for field in ("labels", "annotations"):
        meta[field] = {**wanted["metadata"][field], **(meta.get(field) or {})}
    if "aggregationRule" in wanted:
        selectors = _union((new.get("aggregationRule") or {}).get("clusterRoleSelectors"),
                           wanted["aggregationRule"]["clusterRoleSelectors"])
        new["aggregationRule"] = {"clusterRoleSelectors": selectors}
    elif wanted["kind"] == "ClusterRole":
        new["rules"] = _union(new.get("rules"), wanted["rules"])
    else:
        new["subjects"] = _union(new.get("subjects"), wanted["subjects"])
    return new


def ensure_bootstrap_policy(objects: Objects) -> None:
    """Create or reconcile the bootstrap ClusterRoles and ClusterRoleBindings."""
    roles, bindings = policy()
    for key, plural, wanted_objects in ((CLUSTER_ROLES, "clusterroles", roles),
                                        (CLUSTER_BINDINGS, "clusterrolebindings", bindings)):
        rt = objects.registry.find(GROUP, "v1", plural)
        assert rt is not None
        for wanted in wanted_objects:
            name = wanted["metadata"]["name"]
            current = objects.store.get(key, "", name)
            if current is None:
                objects.create(rt, "", copy.deepcopy(wanted), WriteOptions())
                continue
            if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) != "true":
                continue
            new = _reconciled(current, wanted)
            if new != current:
                objects.update(rt, "", name, new, WriteOptions())
