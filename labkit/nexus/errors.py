"""Nexus' error answers: a JSON list of ``{"id", "message"}`` for validation errors (400), a plain message
otherwise; 401s carry Nexus' Basic challenge."""

from __future__ import annotations

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import json_response

REALM = "Sonatype Nexus Repository Manager"


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    if "errors" in err.details:
        return json_response(err.details["errors"], err.status, err.headers)
    reason = err.details.get("reason_phrase")
    return web.Response(status=err.status, text=err.message + "\n", headers=err.headers, reason=reason)
