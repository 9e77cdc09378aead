"""Elasticsearch's error shape: ``{"error": {"root_cause": [...], "type": ..., "reason": ...}, "status": N}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import json_response

CHALLENGE = 'Basic realm="security", charset="UTF-8"'
# labkit's generic reasons (raised by core.http's plumbing) → Elasticsearch's exception types
GENERIC = {"Unauthorized": "security_exception", "RequestEntityTooLarge": "request_entity_too_large",
           "NotSupported": "illegal_argument_exception", "Not Found": "resource_not_found_exception",
           "Method Not Allowed": "illegal_argument_exception"}


def es_error(status: int, type_: str, reason: str, **extra: Any) -> ApiError:
    """An error Elasticsearch would answer: its exception ``type``, ``reason`` and extra root-cause fields."""
    return ApiError(status, type_, reason, details=extra)


def index_not_found(index: str) -> ApiError:
    return es_error(404, "index_not_found_exception", f"no such index [{index}]", **{
        "resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index})


def parsing(reason: str, line: int = 1, col: int = 1) -> ApiError:
    return es_error(400, "parsing_exception", reason, line=line, col=col)


def illegal_argument(reason: str) -> ApiError:
    return es_error(400, "illegal_argument_exception", reason)


def not_supported(what: str) -> ApiError:
    return illegal_argument(f"{what} is not supported by the labkit simulator")


def body(err: ApiError) -> dict[str, Any]:
    """The JSON body of an error answer (also a bulk item's ``error``)."""
    type_ = GENERIC.get(err.reason, err.reason)
    reason = err.message
    if err.status == 401:
        reason = "missing authentication credentials for REST request"
    details = dict(err.details)
    if err.status == 401:
        details["header"] = {"WWW-Authenticate": [CHALLENGE, 'ApiKey']}
    cause = {"type": type_, "reason": reason, **details}
    return {"error": {"root_cause": [cause], **cause}, "status": err.status}


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    headers = dict(err.headers)
    if err.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if request.method == "HEAD":
        return web.Response(status=err.status, headers=headers)
    return json_response(body(err), err.status, headers)
