"""The four patch types of the Kubernetes API.

JSON patch and merge patch are generic; strategic merge patch and
server-side apply follow the schema's patch metadata (``labkit.kube.merge``).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from ...core.errors import ApiError
from . import merge

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


def strategic(original: dict[str, Any], patch: Any, api_version: str, kind: str, crds: list[dict[str, Any]],
              custom: bool) -> dict[str, Any]:
    if custom:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY}")
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "strategic merge patch must be a JSON object")
    return merge.strategic_merge_patch(original, patch, api_version, kind, crds)


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool, api_version: str,
          kind: str, crds: list[dict[str, Any]]) -> dict[str, Any]:
    """Server-side apply: merge by the schema's list types, track field managers, detect conflicts."""
    return merge.server_side_apply(live, applied, manager, force, api_version, kind, crds)
