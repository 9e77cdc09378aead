"""Comparing desired and live state as Argo CD does: only the fields the manifest sets count (the server's
defaults and filled-in fields do not), a field the last apply set and the manifest no longer sets counts,
``ignoreDifferences`` (``jsonPointers``, plain ``jqPathExpressions``, ``managedFieldsManagers``) is honoured, and
resources are tracked by the ``argocd.argoproj.io/tracking-id`` annotation."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from .health import group_of

TRACKING = "argocd.argoproj.io/tracking-id"
COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_JQ_PATH = re.compile(r"^(\.[A-Za-z_][\w-]*|\[\d*\]|\[\"[^\"]+\"\])+$")


class DiffError(Exception):
    """An ignoreDifferences rule the simulator cannot apply (a ComparisonError condition)."""


def tracking_id(app: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{app}:{group_of(obj)}/{obj['kind']}:{meta.get('namespace', '')}/{meta['name']}"


def owner_app(obj: dict[str, Any]) -> str:
    """The Application that tracks a live object ('' when none does)."""
    tid = ((obj.get("metadata") or {}).get("annotations") or {}).get(TRACKING, "")
    return tid.split(":", 1)[0] if ":" in tid else ""


def annotation_options(obj: dict[str, Any], key: str) -> set[str]:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key, "")
    return {v.strip() for v in value.split(",") if v.strip()}


def _pointer_remove(obj: Any, pointer: str) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")] if pointer else []
    for part in parts[:-1]:
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return
    if not parts:
        return
    if isinstance(obj, dict):
        obj.pop(parts[-1], None)
    elif isinstance(obj, list) and parts[-1].isdigit() and int(parts[-1]) < len(obj):
        obj.pop(int(parts[-1]))


def _jq_remove(obj: Any, expr: str) -> None:
    """``del(expr)`` for plain jq paths (``.spec.replicas``, ``.spec.template.spec.containers[].image``,
    ``.a[0]``); anything else (pipes, select) is refused."""
    expr = expr.strip()
    if not _JQ_PATH.match(expr):
        raise DiffError(f"jqPathExpression '{expr}' is not supported by the labkit simulator (only plain paths such "
                        "as .spec.replicas or .spec.template.spec.containers[].image)")
    steps = re.findall(r"\.([A-Za-z_][\w-]*)|\[(\d*)\]|\[\"([^\"]+)\"\]", expr)

    def walk(node: Any, i: int) -> None:
        key, index, quoted = steps[i]
        last = i == len(steps) - 1
        if key or quoted:
            name = key or quoted
            if isinstance(node, dict) and name in node:
                if last:
                    node.pop(name)
                else:
                    walk(node[name], i + 1)
        elif isinstance(node, list):
            targets = range(len(node)) if index == "" else [int(index)] if int(index) < len(node) else []
            if last:
                for j in sorted(targets, reverse=True):
                    node.pop(j)
            else:
                for j in targets:
                    walk(node[j], i + 1)

    if steps:
        walk(obj, 0)


def _fields_remove(obj: Any, fields: dict[str, Any]) -> None:
    """Remove what a managedFields ``fieldsV1`` set names from ``obj``."""
    for key, sub in fields.items():
        if key == ".":
            continue
        if key.startswith("f:") and isinstance(obj, dict) and key[2:] in obj:
            if not sub or set(sub) == {"."}:
                obj.pop(key[2:])
            else:
                _fields_remove(obj[key[2:]], sub)
        elif key.startswith("k:") and isinstance(obj, list):
            want = json.loads(key[2:])
            for item in [i for i in obj if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())]:
                if not sub or set(sub) == {"."}:
                    obj.remove(item)
                else:
                    _fields_remove(item, sub)
        elif key.startswith("v:") and isinstance(obj, list):
            value = json.loads(key[2:])
            if value in obj:
                obj.remove(value)


def _rule_matches(rule: dict[str, Any], obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    return (rule.get("group", "") == group_of(obj) and rule.get("kind") == obj.get("kind")
            and rule.get("name", meta["name"]) == meta["name"]
            and rule.get("namespace", meta.get("namespace", "")) == meta.get("namespace", ""))


def _apply_ignores(obj: dict[str, Any], rules: list[dict[str, Any]], live: dict[str, Any] | None) -> None:
    for rule in rules:
        for pointer in rule.get("jsonPointers") or []:
            _pointer_remove(obj, pointer)
        for expr in rule.get("jqPathExpressions") or []:
            _jq_remove(obj, expr)
        managers = set(rule.get("managedFieldsManagers") or [])
        for entry in ((live or {}).get("metadata") or {}).get("managedFields") or []:
            if entry.get("manager") in managers and isinstance(entry.get("fieldsV1"), dict):
                _fields_remove(obj, entry["fieldsV1"])


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """What Argo CD's normaliser does before comparing: status and server-owned metadata out, a Secret's
    ``stringData`` as ``data``."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    for key in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"):
        meta.pop(key, None)
    if meta.get("annotations"):
        meta["annotations"].pop(LAST_APPLIED, None)
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        data = obj.setdefault("data", {})
        for k, v in obj.pop("stringData").items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    return obj


def _empty(v: Any) -> bool:
    return v is None or v == {} or v == [] or v == ""


def _scalar_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return False


# Lists Kubernetes merges by a key (its strategic-merge-patch ``patchMergeKey``): an item another writer added
# (``kubectl set env``, a restart annotation's companion env) is not a difference, as after a client-side apply.
MERGE_KEYS = {"containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
              "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",), "imagePullSecrets": ("name",),
              "ports": ("containerPort", "port"), "hostAliases": ("ip",)}


def _merge_key(path: str, items: list[Any]) -> str | None:
    """The key a list at ``path`` is merged by, when every item has it."""
    for key in MERGE_KEYS.get(path.rsplit("/", 1)[-1], ()):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _by_key(items: Any, key: str) -> dict[Any, Any]:
    return {i.get(key): i for i in items if isinstance(i, dict)} if isinstance(items, list) else {}


def _subset(want: Any, have: Any, path: str, out: list[str]) -> None:
    """Every field ``want`` sets, as ``have`` holds it."""
    if isinstance(want, list) and isinstance(have, list) and (key := _merge_key(path, want)):
        held = _by_key(have, key)
        for i, item in enumerate(want):
            if item[key] not in held:
                out.append(f"{path}/{i}")
            else:
                _subset(item, held[item[key]], f"{path}/{i}", out)
        return
    if isinstance(want, dict):
        if not isinstance(have, dict):
            if not (_empty(want) and have is None):
                out.append(path or "/")
            return
        for k, v in want.items():
            if k not in have:
                if not _empty(v):
                    out.append(f"{path}/{k}")
                continue
            _subset(v, have[k], f"{path}/{k}", out)
    elif isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            if not (want == [] and have is None):
                out.append(path)
            return
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            _subset(w, h, f"{path}/{i}", out)
    elif not _scalar_equal(want, have):
        out.append(path)


def _removed(last: Any, want: Any, have: Any, path: str, out: list[str]) -> None:
    """Fields the last apply set, the manifest no longer sets and the live object still has."""
    if isinstance(last, list) and isinstance(have, list) and (key := _merge_key(path, last)):
        wanted, held = _by_key(want, key), _by_key(have, key)
        for i, item in enumerate(last):
            name = item[key]
            if name not in wanted:
                if name in held:
                    out.append(f"{path}/{i}")
            else:
                _removed(item, wanted[name], held.get(name), f"{path}/{i}", out)
        return
    if not isinstance(last, dict) or not isinstance(have, dict):
        return
    want = want if isinstance(want, dict) else {}
    for k, v in last.items():
        if k not in want:
            if k in have:
                out.append(f"{path}/{k}")
        else:
            _removed(v, want[k], have.get(k), f"{path}/{k}", out)


def diff(target: dict[str, Any], live: dict[str, Any] | None, ignore: list[dict[str, Any]]) -> list[str]:
    """The JSON paths where ``live`` differs from ``target`` (empty: in sync); a missing live object differs."""
    if live is None:
        return ["/"]
    rules = [r for r in ignore if _rule_matches(r, target)]
    want, have = _normalise(target), _normalise(live)
    if rules:
        _apply_ignores(want, rules, live)
        _apply_ignores(have, rules, live)
    out: list[str] = []
    _subset(want, have, "", out)
    last_applied = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if last_applied:
        try:
            last = _normalise(json.loads(last_applied))
        except ValueError:
            last = {}
        if rules:
            _apply_ignores(last, rules, live)
        _removed(last, want, have, "", out)
    return out
