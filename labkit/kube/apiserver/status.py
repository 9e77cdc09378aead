"""Kubernetes Status objects: the error shape kubectl and client-go understand."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import json_response
from .resources import ResourceType


def status_body(err: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": err.message, "reason": err.reason, "code": err.status}
    if err.details:
        body["details"] = err.details
    return body


def render(request: web.Request, err: ApiError) -> web.Response:
    return json_response(status_body(err), err.status, err.headers)


def _details(rt: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": rt.plural, **extra}
    if rt.group:
        d["group"] = rt.group
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    group_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    text = "; ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    msg = f'{group_kind} "{name}" is invalid: {text}' if len(causes) == 1 else \
        f'{group_kind} "{name}" is invalid: [{", ".join(_cause_text(c) for c in causes)}]'
    return ApiError(422, "Invalid", msg, {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes})


def _cause_text(c: dict[str, str]) -> str:
    return f"{c['field']}: {c['message']}" if c.get("field") else c["message"]


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource"
                       ) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
