"""The RBAC types' own defaulting and validation (rbac/v1 defaults, pkg/apis/rbac/validation), with the real
messages; run in the write path as an admission step because the roleRef check needs the old binding."""

from __future__ import annotations

from typing import Any

from .admission import Plugin, Request
from .fielderrors import Cause, invalid, not_supported, required
from .rbac import GROUP
from .status import invalid as invalid_error

Obj = dict[str, Any]


def _go_strings(values: list[str]) -> str:
    """A []string as Go's %#v prints it."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _go_role_ref(ref: Obj) -> str:
    return (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
            f'Name:"{ref.get("name", "")}"}}')


def _invalid_go(field: str, shown: str, detail: str) -> Cause:
    return {"reason": "FieldValueInvalid", "field": field, "message": f"Invalid value: {shown}: {detail}"}


def _path_segment(field: str, name: str) -> list[Cause]:
    if name in (".", ".."):
        return [invalid(field, name, f"may not be '{name}'")]
    return [invalid(field, name, f"may not contain '{c}'") for c in "/%" if c in name]


def rule_causes(rule: Obj, namespaced: bool, field: str) -> list[Cause]:
    out: list[Cause] = []
    if not rule.get("verbs"):
        out.append(required(f"{field}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        shown = _go_strings(urls)
        if namespaced:
            out.append(_invalid_go(f"{field}.nonResourceURLs", shown, "namespaced rules cannot apply to non-resource "
                                                                      "URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            out.append(_invalid_go(f"{field}.nonResourceURLs", shown, "rules cannot apply to both regular resources "
                                                                      "and non-resource URLs"))
        return out
    if not rule.get("apiGroups"):
        out.append(required(f"{field}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        out.append(required(f"{field}.resources", "resource rules must supply at least one resource"))
    if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
        out.append(required(f"{field}.resourceNames", "resource names cannot apply to multiple resources"))
    return out


def subject_causes(subject: Obj, namespaced: bool, field: str) -> list[Cause]:
    out: list[Cause] = []
    name, kind, group = subject.get("name") or "", subject.get("kind"), subject.get("apiGroup") or ""
    if not name:
        out.append(required(f"{field}.name"))
    if kind == "ServiceAccount":
        if group:
            out.append(not_supported(f"{field}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            out.append(required(f"{field}.namespace"))
    elif kind in ("User", "Group"):
        if not name:
            out.append(invalid(f"{field}.name", name, f"{kind.lower()} name cannot be empty"))
        if group != GROUP:
            out.append(not_supported(f"{field}.apiGroup", group, [GROUP]))
    else:
        out.append(not_supported(f"{field}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return out


def binding_causes(binding: Obj, namespaced: bool) -> list[Cause]:
    ref = binding.get("roleRef") or {}
    out: list[Cause] = []
    if ref.get("apiGroup") != GROUP:
        out.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        out.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        out.append(required("roleRef.name"))
    else:
        out += _path_segment("roleRef.name", ref["name"])
    for i, subject in enumerate(binding.get("subjects") or []):
        out += subject_causes(subject, namespaced, f"subjects[{i}]")
    return out


def defaults(obj: Obj) -> None:
    """rbac/v1 defaulting: a binding's roleRef and User/Group subjects get the RBAC API group."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


class RBACValidation(Plugin):
    """Defaults and validates Roles, ClusterRoles and their bindings; a binding's roleRef never changes."""

    name = "RBACValidation"

    def admit(self, req: Request) -> list[str]:
        if req.rt.group == GROUP:
            defaults(req.obj)
        return []

    def validate(self, req: Request) -> list[str]:
        if req.rt.group != GROUP:
            return []
        obj, kind = req.obj, req.rt.kind
        causes: list[Cause] = []
        if kind in ("Role", "ClusterRole"):
            for i, rule in enumerate(obj.get("rules") or []):
                causes += rule_causes(rule, kind == "Role", f"rules[{i}]")
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            causes += binding_causes(obj, kind == "RoleBinding")
            if req.old is not None and (req.old.get("roleRef") or {}) != (obj.get("roleRef") or {}):
                causes.append(_invalid_go("roleRef", _go_role_ref(obj.get("roleRef") or {}), "cannot change roleRef"))
        if causes:
            raise invalid_error(req.rt, obj.get("metadata", {}).get("name", ""), causes)
        return []
