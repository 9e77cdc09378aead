"""Strategic merge patch, server-side apply and managedFields bookkeeping.

Both follow the schema's metadata the way the real API server does:
strategic merge patch reads ``x-kubernetes-patch-strategy`` and
``x-kubernetes-patch-merge-key`` (k8s.io/apimachinery strategicpatch
semantics: merge keys, ``$patch``, ``$retainKeys``, ``$setElementOrder``,
``$deleteFromPrimitiveList``, null deletes); server-side apply reads
``x-kubernetes-list-type``/``-list-map-keys``/``-map-type`` (structured-merge-diff
semantics: field sets per manager in the FieldsV1 format, conflicts, pruning
of fields a manager stopped applying).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...core.errors import ApiError
from . import openapi
from .decoding import crd_schema, find_crd

# ===================================================================================== schema nodes


@dataclass(frozen=True)
class Node:
    """A schema position: the raw schema plus the patch metadata of the field that led here."""

    schema: dict[str, Any] | None

    def _resolved(self) -> dict[str, Any]:
        return openapi.resolve(self.schema) if self.schema else {}

    def field(self, key: str) -> tuple[Node, dict[str, Any]]:
        """The node of a map key and the raw property schema (its extensions)."""
        s = self._resolved()
        prop = (s.get("properties") or {}).get(key)
        if prop is not None:
            return Node(prop), prop
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            return Node(extra), extra
        return Node(None), {}

    def items(self) -> Node:
        s = self._resolved()
        return Node(s.get("items")) if isinstance(s.get("items"), dict) else Node(None)

    def declares(self, key: str) -> bool:
        return key in (self._resolved().get("properties") or {})

    @property
    def atomic_map(self) -> bool:
        s = self._resolved()
        own = (self.schema or {}).get("x-kubernetes-map-type")
        return "atomic" in (s.get("x-kubernetes-map-type"), own)

    def list_kind(self) -> tuple[str, list[str]]:
        """('atomic'|'set'|'map', keys) the way structured-merge-diff reads a list schema."""
        s = self.schema or {}
        kind = s.get("x-kubernetes-list-type")
        if kind == "map":
            return "map", list(s.get("x-kubernetes-list-map-keys") or [])
        if kind in ("set", "atomic"):
            return kind, []
        if "merge" in (s.get("x-kubernetes-patch-strategy") or "").split(","):
            key = s.get("x-kubernetes-patch-merge-key")
            return ("map", [key]) if key else ("set", [])
        return "atomic", []


def _root(api_version: str, kind: str, crds: list[dict[str, Any]]) -> Node:
    schema = crd_schema(api_version, kind, crds)
    if schema is not None:
        props = dict(schema.get("properties") or {})
        props["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        return Node({**schema, "properties": props})
    name = openapi.definition_name(api_version, kind)
    return Node({"$ref": "#/$defs/" + name} if name else None)


# ===================================================================================== strategic merge

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SMP_BAD_REQUEST = {"invalid patch format of primitive list", "invalid patch format of retainKeys",
                    "invalid patch format of setElementOrder list"}


class _PatchError(Exception):
    pass


def _go(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value, for error messages."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], api_version: str, kind: str,
                          crds: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a strategic merge patch; custom resources reject it with 415 like the real server."""
    if find_crd(api_version, kind, crds) is not None:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml")
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "invalid JSON document")
    try:
        return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), _root(api_version, kind, crds))
    except _PatchError as e:
        text = str(e)
        if text in _SMP_BAD_REQUEST:
            raise ApiError(400, "BadRequest", text) from None
        raise ApiError(500, "", text) from None


def _strategies(prop: dict[str, Any]) -> tuple[bool, str]:
    """(retainKeys, merge|replace|'') from a field's x-kubernetes-patch-strategy."""
    parts = [p for p in (prop.get("x-kubernetes-patch-strategy") or "").split(",") if p]
    return "retainKeys" in parts, next((p for p in parts if p != "retainKeys"), "")


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], node: Node) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "replace":
            return patch
        if directive == "delete":
            return {}
        patch[_DIRECTIVE] = directive
        raise _PatchError(f"unknown patch type: {directive} in map: {_go(patch)}")
    original = {} if original is None else original
    _retain_keys(original, patch)
    _set_element_orders(original, patch, node)
    for key, value in list(patch.items()):
        target, delete_list = key, False
        if key.startswith(_DELETE_PRIMITIVE):
            target, delete_list = key[len(_DELETE_PRIMITIVE):], True
        elif key.startswith("$"):
            continue
        if value is None:
            original.pop(target, None)
            continue
        if target not in original:
            if not delete_list:
                _put(original, target, value)
            continue
        current = original[target]
        if delete_list:
            if not isinstance(value, list) or not isinstance(current, list):
                raise _PatchError("invalid patch format of primitive list")
            original[target] = [v for v in current if v not in value]
        elif _kind(current) != _kind(value):
            _put(original, target, value)
        elif isinstance(value, dict):
            sub, prop = node.field(target)
            _, strategy = _strategies(prop)
            original[target] = value if strategy == "replace" else _merge_map(current, value, sub)
        elif isinstance(value, list):
            original[target] = _merge_list_field(current, value, node, target)
        else:
            original[target] = value
    return original


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _put(original: dict[str, Any], key: str, value: Any) -> None:
    """Take a patch value as is, without its directives and nulls."""
    cleaned, keep = _clean(value)
    if keep:
        original[key] = cleaned
    else:
        original.pop(key, None)


def _clean(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            if v is None or k.startswith(("$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys")):
                continue
            cv, keep = _clean(v)
            if keep:
                out[k] = cv
        return out, True
    if isinstance(value, list):
        return [cv for cv, keep in (_clean(v) for v in value) if keep], True
    return value, True


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN not in patch:
        return
    keys = patch.pop(_RETAIN)
    if not isinstance(keys, list):
        raise _PatchError("invalid patch format of retainKeys")
    for k, v in patch.items():
        if v is not None and not k.startswith(("$", _DELETE_PRIMITIVE)) and k not in keys:
            raise _PatchError("invalid patch format of retainKeys")
    for k in [k for k in original if k not in keys]:
        del original[k]


def _merge_list_field(current: list[Any], value: list[Any], node: Node, key: str) -> list[Any]:
    sub, prop = node.field(key)
    _, strategy = _strategies(prop)
    if strategy != "merge":
        return _clean(value)[0]
    return _merge_list(current, value, sub.items(), prop.get("x-kubernetes-patch-merge-key") or "")


def _merge_list(original: list[Any], patch: list[Any], items: Node, merge_key: str) -> list[Any]:
    if not original and not patch:
        return original
    if not any(isinstance(v, dict) for v in [*original, *patch]):
        merged = _dedupe([*original, *patch])
        return _ordered(merged, patch, original, "")
    if not merge_key:
        raise _PatchError("cannot merge lists without merge key for Struct")
    original, patch = _special_elements(original, patch, merge_key)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise _PatchError(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
        index = _find(original, merge_key, item[merge_key])
        if index >= 0:
            original[index] = _merge_map(original[index], item, items)
        else:
            original.append(_clean(item)[0])
    return _ordered(original, patch, original[:], merge_key)


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    rest: list[Any] = []
    replace = False
    for item in patch:
        directive = item.get(_DIRECTIVE) if isinstance(item, dict) else None
        if directive is None:
            rest.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise _PatchError(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
            original = [o for o in original
                        if not (isinstance(o, dict) and o.get(merge_key) == item[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise _PatchError(f"unknown patch type: {directive} in map: {_go(item)}")
    return (rest, []) if replace else (original, rest)


def _identity(item: Any, merge_key: str) -> Any:
    return json.dumps(item.get(merge_key) if merge_key and isinstance(item, dict) else item, sort_keys=True)


def _find(items: list[Any], merge_key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get(merge_key) == value:
            return i
    return -1


def _ordered(merged: list[Any], patch_order: list[Any], server_order: list[Any], merge_key: str) -> list[Any]:
    """normalizeElementOrder: patch items in patch order, server-only items interleaved by server order."""
    wanted = [_identity(p, merge_key) for p in patch_order
              if not (isinstance(p, dict) and _DIRECTIVE in p)]
    served = [_identity(s, merge_key) for s in server_order]
    in_patch = [m for m in merged if _identity(m, merge_key) in wanted]
    server_only = [m for m in merged if _identity(m, merge_key) not in wanted]
    in_patch.sort(key=lambda m: wanted.index(_identity(m, merge_key)))
    server_only.sort(key=lambda m: served.index(_identity(m, merge_key))
                     if _identity(m, merge_key) in served else len(served))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(in_patch[j])
            j += 1
        else:
            left, right = _identity(server_only[i], merge_key), _identity(in_patch[j], merge_key)
            if left in served and right in served and served.index(left) < served.index(right):
                out.append(server_only[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out


def _set_element_orders(original: dict[str, Any], patch: dict[str, Any], node: Node) -> None:
    for key in [k for k in patch if k.startswith(_ORDER)]:
        order = patch.pop(key)
        target = key[len(_ORDER):]
        if not isinstance(order, list):
            raise _PatchError("invalid patch format of setElementOrder list")
        current, value = original.get(target), patch.pop(target, None)
        if current is None and value is None:
            continue
        if value is None:
            merged = current
        elif current is None:
            merged = _clean(value)[0]
        else:
            merged = _merge_list_field(current, value, node, target)
        _, prop = node.field(target)
        merge_key = prop.get("x-kubernetes-patch-merge-key") or ""
        original[target] = _ordered(merged, order, current or [], merge_key)


# ===================================================================================== field sets

# A path is a tuple of elements: ("f", name) | ("k", '{"name":"x"}') | ("v", json) | ("i", index).
Path = tuple[tuple[str, str], ...]

_STRIP: set[Path] = {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)} | {
    (("f", "metadata"), ("f", name)) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion")}


# Key fields with a schema default count with that default, as structured-merge-diff does.
_KEY_DEFAULTS = {"protocol": "TCP"}


def _item_element(item: Any, kind: str, keys: list[str], index: int) -> tuple[str, str]:
    if kind == "map" and isinstance(item, dict) and all(k in item or k in _KEY_DEFAULTS for k in keys):
        fields = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in sorted(keys)}
        return "k", json.dumps(fields, separators=(",", ":"))
    if kind == "set":
        return "v", json.dumps(item, separators=(",", ":"), sort_keys=True)
    return "i", str(index)


def field_set(value: Any, node: Node, path: Path = ()) -> set[Path]:
    """The paths an object sets (structured-merge-diff's ToFieldSet)."""
    out: set[Path] = set()
    if isinstance(value, dict):
        if node.atomic_map:
            return {path}
        for key, child in value.items():
            sub, _ = node.field(key)
            child_path = (*path, ("f", key))
            out |= field_set(child, sub, child_path)
            if child is None or child == {} or not node.declares(key):
                out.add(child_path)
    elif isinstance(value, list):
        kind, keys = node.list_kind()
        if kind == "atomic":
            return {path}
        items = node.items()
        for i, item in enumerate(value):
            item_path = (*path, _item_element(item, kind, keys, i))
            out.add(item_path)
            out |= field_set(item, items, item_path)
    else:
        out.add(path)
    return out


def _compare(old: Any, new: Any, node: Node, path: Path, missing: tuple[bool, bool],
             acc: dict[str, set[Path]]) -> None:
    """Added / modified / removed paths between two values (structured-merge-diff's Compare)."""
    l_missing, r_missing = missing
    leaf = not isinstance(old if not l_missing else new, dict | list) or (
        isinstance(old if not l_missing else new, list) and node.list_kind()[0] == "atomic") or (
        isinstance(old if not l_missing else new, dict) and node.atomic_map)
    if not leaf and not l_missing and not r_missing and type(old) is not type(new):
        leaf = True
    if leaf or (not old and not new):
        if l_missing:
            acc["added"].add(path)
        elif r_missing:
            acc["removed"].add(path)
        elif old != new:
            acc["modified"].add(path)
        return
    if l_missing:
        acc["added"].add(path)
    elif r_missing:
        acc["removed"].add(path)
    if isinstance(old if not l_missing else new, dict):
        lhs, rhs = (old or {}) if not l_missing else {}, (new or {}) if not r_missing else {}
        for key in dict.fromkeys([*lhs, *rhs]):
            sub, _ = node.field(key)
            missing_key = (key not in lhs, key not in rhs)
            _compare(lhs.get(key), rhs.get(key), sub, (*path, ("f", key)), missing_key, acc)
        return
    kind, keys = node.list_kind()
    lhs = {_item_element(v, kind, keys, i): v for i, v in enumerate(old if not l_missing else [])}
    rhs = {_item_element(v, kind, keys, i): v for i, v in enumerate(new if not r_missing else [])}
    for pe in dict.fromkeys([*lhs, *rhs]):
        _compare(lhs.get(pe), rhs.get(pe), node.items(), (*path, pe), (pe not in lhs, pe not in rhs), acc)


def compare(old: Any, new: Any, node: Node) -> dict[str, set[Path]]:
    acc: dict[str, set[Path]] = {"added": set(), "modified": set(), "removed": set()}
    _compare(old, new, node, (), (False, False), acc)
    acc["added"].discard(())
    return acc


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """A field set in the FieldsV1 JSON form (``f:``/``k:``/``v:``/``i:`` keys, ``.`` for set members)."""
    root: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = root
        for kind, value in path:
            node = node.setdefault(f"{kind}:{value}", {})
        if any(len(p) > len(path) and p[:len(path)] == path for p in paths):
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(node[k]) for k in sorted(node)}


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in (tree or {}).items():
        if key == ".":
            out.add(prefix)
            continue
        kind, _, value = key.partition(":")
        path = (*prefix, (kind, value))
        if not child:
            out.add(path)
        else:
            out |= from_fields_v1(child, path)
    return out


def path_string(path: Path) -> str:
    """structured-merge-diff's Path.String: ``.spec.template.spec.containers[name="web"].image``."""
    out = ""
    for kind, value in path:
        if kind == "f":
            out += "." + value
        elif kind == "k":
            pairs = json.loads(value)
            fields = (f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in pairs.items())
            out += "[" + ",".join(fields) + "]"
        elif kind == "v":
            out += f"[={value}]"
        else:
            out += f"[{value}]"
    return out


# ===================================================================================== managers

_Manager = tuple[str, str, str, str]  # manager, operation, apiVersion, subresource


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_managers(obj: dict[str, Any]) -> dict[_Manager, dict[str, Any]]:
    out: dict[_Manager, dict[str, Any]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict) or not (entry.get("manager") or entry.get("fieldsV1")):
            continue
        key = (entry.get("manager", ""), entry.get("operation", "Update"),
               entry.get("apiVersion", "") if entry.get("operation") != "Apply" else "",
               entry.get("subresource", ""))
        out[key] = {"set": from_fields_v1(entry.get("fieldsV1") or {}), "time": entry.get("time"),
                    "apiVersion": entry.get("apiVersion", "")}
    return out


def _encode_managers(obj: dict[str, Any], managers: dict[_Manager, dict[str, Any]]) -> None:
    entries = []
    for (manager, operation, _, subresource), m in managers.items():
        if not m["set"]:
            continue
        entry: dict[str, Any] = {"apiVersion": m["apiVersion"], "fieldsType": "FieldsV1",
                                 "fieldsV1": to_fields_v1(m["set"]), "manager": manager,
                                 "operation": operation}
        if subresource:
            entry["subresource"] = subresource
        if m.get("time"):
            entry["time"] = m["time"]
        entries.append(entry)
    entries.sort(key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e["apiVersion"],
                                e.get("subresource", "")))
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def _describe(key: _Manager, api_version: str) -> str:
    manager, operation, _, subresource = key
    text = json.dumps(manager)
    if subresource:
        text += f" with subresource {json.dumps(subresource)}"
    if operation == "Update":
        text += f" using {api_version}"
    return text


def _owned(paths: set[Path], subresource: str, has_status: bool) -> set[Path]:
    """Drop the metadata the server owns, and what the request's (sub)resource resets."""
    out = {p for p in paths if p not in _STRIP}
    if has_status and subresource != "status":
        out = {p for p in out if p[:1] != (("f", "status"),)}
    elif subresource == "status":
        out = {p for p in out if p[:1] == (("f", "status"),)}
    return out


def _has_status(api_version: str, kind: str, crds: list[dict[str, Any]]) -> bool:
    found = find_crd(api_version, kind, crds)
    if found is not None:
        return "status" in (found[1].get("subresources") or {})
    from .resources import BUILTINS

    group, _, version = api_version.rpartition("/")
    return any(r.group == group and r.version == version and r.kind == kind and "status" in r.subresources
               for r in BUILTINS)


def _body(obj: dict[str, Any] | None) -> dict[str, Any]:
    """An object without its managedFields, for comparisons."""
    out = copy.deepcopy(obj or {})
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, api_version: str,
                  subresource: str = "", operation: str = "Update",
                  crds: list[dict[str, Any]] | None = None) -> None:
    """Record an Update (create/update/patch) by ``manager`` in ``new``'s managedFields, in place."""
    crds = crds or []
    kind = new.get("kind", "")
    node = _root(api_version, kind, crds)
    new_meta = new.get("metadata") or {}
    old_fields = (old or {}).get("metadata", {}).get("managedFields")
    source = new if "managedFields" in new_meta and new_meta.get("managedFields") != old_fields else old or {}
    managers = _decode_managers(source)
    diff = compare(_body(old), _body(new), node)
    has_status = _has_status(api_version, kind, crds)
    changed = _owned(diff["added"] | diff["modified"], subresource, has_status)
    for key, m in managers.items():
        if key[:2] != (manager, operation) or key[3] != subresource:
            m["set"] -= changed | diff["removed"]
    key = (manager, operation, api_version, subresource)
    entry = managers.setdefault(key, {"set": set(), "time": None, "apiVersion": api_version})
    entry["set"] = _owned((entry["set"] - diff["removed"]) | changed, subresource, has_status)
    if changed:
        entry["time"] = _now()
    _encode_managers(new, managers)


# ===================================================================================== server-side apply


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool,
                      api_version: str, kind: str, crds: list[dict[str, Any]],
                      subresource: str = "") -> dict[str, Any]:
    """Merge an applied configuration into ``live`` (None to create) and return the new object.

    Raises ApiError 409 Conflict (with the real message and causes) when another
    manager owns a field the configuration changes and ``force`` is false.
    """
    if not manager:
        raise ApiError(400, "BadRequest",
                       "PATCH, application/apply-patch+yaml requires fieldManager to be set")
    if not isinstance(applied, dict):
        raise ApiError(400, "BadRequest", "error decoding YAML: the apply configuration must be an object")
    if (applied.get("metadata") or {}).get("managedFields"):
        raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
    node = _root(api_version, kind, crds)
    has_status = _has_status(api_version, kind, crds)
    config = copy.deepcopy(applied)
    if has_status and subresource != "status":
        config.pop("status", None)
    base = _body(live) if live else {"apiVersion": api_version, "kind": kind}
    managers = _decode_managers(live or {})
    me = (manager, "Apply", "", subresource)
    new_set = _owned(field_set(config, node), subresource, has_status)
    merged = _apply_merge(copy.deepcopy(base), config, node)
    last = managers.get(me, {}).get("set", set())
    others = set().union(*(m["set"] for k, m in managers.items() if k != me)) if managers else set()
    removed: list[Path] = []
    for path in sorted(last - new_set - others, key=len):
        if any(path[:len(r)] == r for r in removed):  # an ancestor's removal covers it
            continue
        if not any(o[:len(path)] == path for o in others):  # keep items others still own parts of
            _remove(merged, path, node)
            removed.append(path)
    diff = compare(base, merged, node)
    changed = diff["added"] | diff["modified"]
    conflicts = {k: m["set"] & changed for k, m in managers.items() if k != me and m["set"] & changed}
    if conflicts and not force:
        raise _conflict_error(conflicts, managers)
    for key, m in managers.items():
        if key != me:
            m["set"] -= changed | diff["removed"]
    previous = managers.get(me)
    touched = changed or diff["removed"] or previous is None
    managers[me] = {"set": new_set, "apiVersion": api_version,
                    "time": _now() if touched else (previous or {}).get("time")}
    _encode_managers(merged, managers)
    return merged


def _conflict_error(conflicts: dict[_Manager, set[Path]], managers: dict[_Manager, dict[str, Any]]
                    ) -> ApiError:
    rows = sorted(((_describe(k, managers[k]["apiVersion"]), path_string(p))
                   for k, paths in conflicts.items() for p in paths))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": field}
              for who, field in rows]
    if len(rows) == 1:
        message = f"Apply failed with 1 conflict: conflict with {rows[0][0]}: {rows[0][1]}"
    else:
        lines: list[str] = []
        for who in sorted({who for who, _ in rows}):
            lines.append(f"conflicts with {who}:")
            lines += [f"- {field}" for w, field in rows if w == who]
        message = f"Apply failed with {len(rows)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def _apply_merge(live: Any, config: Any, node: Node) -> Any:
    """structured-merge-diff's merge: the configuration wins, lists merge by their keys."""
    if isinstance(live, dict) and isinstance(config, dict) and not node.atomic_map:
        for key, value in config.items():
            sub, _ = node.field(key)
            live[key] = _apply_merge(live[key], value, sub) if key in live else copy.deepcopy(value)
        return live
    if isinstance(live, list) and isinstance(config, list):
        kind, keys = node.list_kind()
        if kind == "atomic":
            return copy.deepcopy(config)
        index = {_item_element(v, kind, keys, i): i for i, v in enumerate(live)}
        if kind == "map" and any(pe[0] == "i" for pe in index):
            return copy.deepcopy(config)
        for i, item in enumerate(config):
            pe = _item_element(item, kind, keys, i)
            if pe in index:
                live[index[pe]] = _apply_merge(live[index[pe]], item, node.items())
            else:
                live.append(copy.deepcopy(item))
        return live
    return copy.deepcopy(config)


def _remove(obj: Any, path: Path, node: Node) -> None:
    """Remove one path (a field, or a list item by key/value) from an object, in place."""
    parent: Any = obj
    for element in path[:-1]:
        parent, node = _step(parent, element, node)
        if parent is None:
            return
    kind, value = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(value, None)
    elif isinstance(parent, list):
        list_kind, keys = node.list_kind()
        parent[:] = [v for i, v in enumerate(parent) if _item_element(v, list_kind, keys, i) != (kind, value)]


def _step(value: Any, element: tuple[str, str], node: Node) -> tuple[Any, Node]:
    kind, key = element
    if kind == "f":
        sub, _ = node.field(key)
        return (value.get(key) if isinstance(value, dict) else None), sub
    if isinstance(value, list):
        list_kind, keys = node.list_kind()
        for i, item in enumerate(value):
            if _item_element(item, list_kind, keys, i) == element:
                return item, node.items()
    return None, node
