"""Harbor's API error shape: ``{"errors": [{"code": "NOT_FOUND", "message": "..."}]}`` with Harbor's codes."""

from __future__ import annotations

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import json_response

CODES = {"BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405,
         "CONFLICT": 409, "PRECONDITION": 412, "UNPROCESSABLE_ENTITY": 422, "INTERNAL_SERVER_ERROR": 500,
         "NOT_SUPPORTED": 501}
_BY_STATUS = {status: code for code, status in CODES.items()}


def harbor_error(code: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(CODES[code], code, message, headers=headers or {})


def not_found(what: str) -> ApiError:
    return harbor_error("NOT_FOUND", f"{what} not found")


def unsupported(what: str) -> ApiError:
    """A real Harbor feature the simulator does not implement."""
    return harbor_error("NOT_SUPPORTED", f"{what} is not supported by the labkit simulator")


def render(request: web.Request, err: ApiError) -> web.Response:
    code = err.reason if err.reason in CODES else _BY_STATUS.get(err.status, "UNKNOWN")
    body = {"errors": [{"code": code, "message": err.message}]}
    if request.method == "HEAD":
        return web.Response(status=err.status, headers=err.headers)
    return json_response(body, err.status, err.headers)
