"""Argo CD's API errors as grpc-gateway writes them: ``{"error", "code", "message"}`` with the gRPC code and the
HTTP status grpc-gateway maps it to (``runtime.HTTPStatusFromCode``)."""

from __future__ import annotations

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import json_response

# gRPC codes (google.golang.org/grpc/codes) and the HTTP status grpc-gateway answers for each
CODES = {"Canceled": (1, 499), "Unknown": (2, 500), "InvalidArgument": (3, 400), "DeadlineExceeded": (4, 504),
         "NotFound": (5, 404), "AlreadyExists": (6, 409), "PermissionDenied": (7, 403),
         "ResourceExhausted": (8, 429), "FailedPrecondition": (9, 400), "Aborted": (10, 409),
         "OutOfRange": (11, 400), "Unimplemented": (12, 501), "Internal": (13, 500), "Unavailable": (14, 503),
         "Unauthenticated": (16, 401)}
HTTP_TO_CODE = {400: "InvalidArgument", 401: "Unauthenticated", 403: "PermissionDenied", 404: "NotFound",
                405: "Unimplemented", 409: "AlreadyExists", 413: "ResourceExhausted", 501: "Unimplemented",
                503: "Unavailable"}


def grpc_error(code: str, message: str) -> ApiError:
    """An error with gRPC code ``code`` (``"NotFound"``) and its HTTP status."""
    return ApiError(CODES[code][1], code, message)


def permission_denied() -> ApiError:
    """What Argo CD answers for an application that does not exist (not to leak which ones do) or is not allowed."""
    return grpc_error("PermissionDenied", "permission denied")


def unauthenticated(message: str = "no session information") -> ApiError:
    return grpc_error("Unauthenticated", message)


def not_supported(what: str) -> ApiError:
    return grpc_error("Unimplemented", f"{what} is not supported by the labkit simulator")


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    """The error in grpc-gateway's shape; the webhook answers plain text, as Argo CD's ``/api/webhook`` does."""
    if request.path.rstrip("/") == "/api/webhook":
        return web.Response(status=err.status, text=err.message + "\n", headers=err.headers)
    name = err.reason if err.reason in CODES else HTTP_TO_CODE.get(err.status, "Unknown")
    return json_response({"error": err.message, "code": CODES[name][0], "message": err.message}, err.status,
                         {k: v for k, v in err.headers.items() if k.lower() != "www-authenticate"})
