"""The distribution API's error shape: ``{"errors": [{"code", "message", "detail"}]}`` with the spec's codes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import json_response

# code -> (HTTP status, the message the reference registry uses)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "PRECONDITION": (412, "precondition failed"),  # Harbor: a push or delete an immutability rule forbids
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "RANGE_INVALID": (416, "invalid content range"),
    "NOT_FOUND": (404, "the requested path does not exist"),
    "UNKNOWN": (500, "unknown error"),
}
# aiohttp / plumbing errors that reach the renderer without a registry code
_BY_STATUS = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND", 405: "UNSUPPORTED", 413: "SIZE_INVALID",
              416: "RANGE_INVALID"}


def registry_error(code: str, detail: Any = None, message: str | None = None, status: int | None = None,
                   headers: dict[str, str] | None = None) -> ApiError:
    """An ApiError carrying a distribution error code; status and message default to the spec's."""
    default_status, default_message = CODES[code]
    return ApiError(status or default_status, code, message or default_message,
                    {"detail": detail} if detail is not None else {}, headers or {})


def unsupported(what: str, status: int = 405) -> ApiError:
    """A real registry feature the simulator does not implement."""
    return registry_error("UNSUPPORTED", message=f"{what} is not supported by the labkit simulator", status=status)


def render(request: web.Request, err: ApiError) -> web.Response:
    """Renders any ApiError (ours or the plumbing's) in the registry's error shape."""
    code = err.reason if err.reason in CODES else _BY_STATUS.get(err.status, "UNKNOWN")
    entry: dict[str, Any] = {"code": code, "message": err.message}
    if "detail" in err.details:
        entry["detail"] = err.details["detail"]
    if request.method == "HEAD":  # no body on HEAD, like the reference registry
        return web.Response(status=err.status, headers=err.headers)
    return json_response({"errors": [entry]}, err.status, err.headers)
