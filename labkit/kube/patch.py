"""The four patch types of the Kubernetes API.

JSON patch and merge patch are generic. Strategic merge patch and
server-side apply need the schema's patch metadata: they come from
``labkit.kube.merge`` when it is present; the fallback here merges lists of
objects by their ``name`` the way most built-in lists are keyed.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from ..core.errors import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC, APPLY)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest",
                       "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        return jsonpatch.apply_patch(target, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(422, "Invalid",
                       f"the server rejected our request due to an error in our request: {exc}") from exc


def _merge_by_name(orig: list[Any], patch: list[Any]) -> list[Any]:
    if not all(isinstance(x, dict) and "name" in x for x in orig + patch):
        return copy.deepcopy(patch)
    out = [copy.deepcopy(x) for x in orig]
    index = {x["name"]: i for i, x in enumerate(out)}
    for item in patch:
        if item.get("$patch") == "delete":
            out = [x for x in out if x["name"] != item["name"]]
            index = {x["name"]: i for i, x in enumerate(out)}
        elif item["name"] in index:
            out[index[item["name"]]] = _strategic_fallback(out[index[item["name"]]], item)
        else:
            out.append(copy.deepcopy(item))
            index[item["name"]] = len(out) - 1
    return out


def _strategic_fallback(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = _merge_by_name(out[k], v)
        else:
            out[k] = _strategic_fallback(out.get(k), v)
    return out


def strategic(original: dict[str, Any], patch: Any, api_version: str, kind: str, crds: list[dict[str, Any]],
              custom: bool) -> dict[str, Any]:
    if custom:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY}")
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "strategic merge patch must be a JSON object")
    try:
        from . import merge
    except ImportError:
        return _strategic_fallback(original, patch)
    return merge.strategic_merge_patch(original, patch, api_version, kind, crds)


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool, api_version: str,
          kind: str, crds: list[dict[str, Any]]) -> dict[str, Any]:
    """Server-side apply: the schema-aware merge when available, else create or merge."""
    try:
        from . import merge
    except ImportError:
        return merge_patch(live or {}, applied)
    return merge.server_side_apply(live, applied, manager, force, api_version, kind, crds)
