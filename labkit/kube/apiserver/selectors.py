"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ...core.errors import ApiError

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _bad(selector: str, why: str) -> ApiError:
    return ApiError(400, "BadRequest", f"unable to parse requirement: {why} in selector {selector!r}")


def label_matcher(selector: str | None) -> Matcher:
    """A predicate on objects for a label selector (=, ==, !=, in, notin, exists, !exists)."""
    if not selector:
        return lambda obj: True
    reqs: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(selector):
        if m := _EQ.match(part):
            key, op, value = m.groups()
            if op == "!=":
                reqs.append(lambda ls, k=key, v=value: ls.get(k) != v)
            else:
                reqs.append(lambda ls, k=key, v=value: ls.get(k) == v)
        elif m := _SET.match(part):
            neg, key, op, values = m.groups()
            if op:
                if neg:
                    raise _bad(selector, "unexpected '!' before a set requirement")
                vals = {v.strip() for v in values.split(",") if v.strip()}
                if op == "in":
                    reqs.append(lambda ls, k=key, vs=vals: ls.get(k) in vs)
                else:
                    reqs.append(lambda ls, k=key, vs=vals: ls.get(k) not in vs)
            elif neg:
                reqs.append(lambda ls, k=key: k not in ls)
            else:
                reqs.append(lambda ls, k=key: k in ls)
        else:
            raise _bad(selector, f"invalid requirement {part.strip()!r}")

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return match


def _field(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    return str(cur).lower() if isinstance(cur, bool) else str(cur)


SUPPORTED_FIELDS = {
    "": {"metadata.name", "metadata.namespace"},
    "pods": {"status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "nodes": {"spec.unschedulable"},
    "replicasets": {"status.replicas"},
    "jobs": {"status.successful"},
}


def field_matcher(selector: str | None, plural: str) -> Matcher:
    """A predicate for a field selector; unsupported fields are a 400 like the real server."""
    if not selector:
        return lambda obj: True
    allowed = SUPPORTED_FIELDS[""] | SUPPORTED_FIELDS.get(plural, set())
    reqs: list[tuple[str, bool, str]] = []
    for part in selector.split(","):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {selector!r}; can't understand {part!r}")
        path, op, value = m.groups()
        if path not in allowed:
            raise ApiError(400, "BadRequest",
                           f'field label not supported: {path}')
        reqs.append((path, op == "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field(obj, p) != v) if neg else (_field(obj, p) == v) for p, neg, v in reqs)

    return match


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any] | None) -> bool:
    """Whether a LabelSelector matches a label set (a null selector matches nothing)."""
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
              "Exists": present, "DoesNotExist": not present}.get(op, False)
        if not ok:
            return False
    return True


def selector_string(selector: dict[str, Any] | None) -> str:
    """A LabelSelector in the label-selector syntax, as ``LabelSelectorAsSelector(s).String()`` writes it (what a
    Scale's ``status.selector`` holds): requirements sorted by key, ``k=v``, ``k in (a,b)``, ``k``, ``!k``."""
    reqs = [(k, f"{k}={v}") for k, v in (selector or {}).get("matchLabels", {}).items()]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), ",".join(sorted(expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                "DoesNotExist": f"!{key}"}.get(op or "", key)
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs))
