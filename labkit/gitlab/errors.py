"""GitLab's REST API error shapes: ``{"message": "404 Project Not Found"}``, ``{"error": "ref is missing"}``,
``{"message": {"name": ["has already been taken"]}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import json_response

REASONS = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
           501: "Not Implemented"}


def gl_error(status: int, message: Any = None) -> ApiError:
    """``{"message": "<status> <what>"}``: GitLab's usual error (``gl_error(404, "Project Not Found")``)."""
    if message is None:
        message = f"{status} {REASONS.get(status, 'Error')}"
    elif isinstance(message, str) and not message[:3].isdigit():
        message = f"{status} {message}"
    return ApiError(status, REASONS.get(status, "Error"), str(message), {"body": {"message": message}})


def not_found(what: str) -> ApiError:
    """``404 Project Not Found`` (also for what the caller may not see)."""
    return gl_error(404, f"{what} Not Found")


def bad_request(message: Any) -> ApiError:
    """``{"message": ...}`` with 400, the message as given (a string or a field → errors dict)."""
    return ApiError(400, "Bad request", str(message), {"body": {"message": message}})


def param_error(message: str, status: int = 400) -> ApiError:
    """``{"error": "ref is missing"}``: Grape's parameter validation shape."""
    return ApiError(status, "Bad request", message, {"body": {"error": message}})


def unsupported(what: str) -> ApiError:
    """A GitLab feature the simulator does not implement: 501 in GitLab's shape, never a silent success."""
    return gl_error(501, f"Not Implemented: {what} is not supported by the labkit simulator")


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Any ApiError (ours, or the plumbing's 404/413/500) as GitLab renders it."""
    body = err.details.get("body")
    if body is None:
        if err.status == 404:
            body = {"error": "404 Not Found"}
        else:
            body = {"message": f"{err.status} {REASONS.get(err.status, err.reason)}"
                    + (f": {err.message}" if err.status >= 500 else "")}
    if request.method == "HEAD":
        return web.Response(status=err.status, headers=err.headers)
    return json_response(body, err.status, err.headers)
