"""Routing ``/api/v2.0/...`` as Harbor does: on the path decoded once, so a repository name's ``/`` is sent
double-encoded (``a%252Fb``) and a single-encoded ``a%2Fb`` splits the path (404); Basic auth; ``X-Request-Id``."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...core.http import USER
from .errors import harbor_error, not_found
from .metrics import OPERATION, operation_id
from .policy import api_may

if TYPE_CHECKING:
    import sqlite3

    from .service import Harbor

PREFIX = "/api/v2.0"
MAX_JSON = 1024 * 1024


@dataclass
class Call:
    """One API request: who sent it, the route's parameters, and Harbor."""

    request: web.Request
    harbor: Harbor
    user: str  # "" when anonymous
    params: dict[str, str] = field(default_factory=dict)

    async def json(self) -> dict[str, Any]:
        if (self.request.content_length or 0) > MAX_JSON:
            raise harbor_error("BAD_REQUEST", "request body too large")
        try:
            body = json.loads(await self.request.read() or b"null")
        except ValueError as exc:
            raise harbor_error("BAD_REQUEST", f"invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise harbor_error("UNPROCESSABLE_ENTITY", "validation failure list:\nthe body must be an object")
        return body

    def signed_in(self) -> None:
        if not self.user:
            raise harbor_error("UNAUTHORIZED", "UnAuthorized")

    def admin(self) -> None:
        """Only the system admin."""
        self.signed_in()
        if not self.harbor.policy.is_admin(self.user):
            raise harbor_error("FORBIDDEN", "forbidden")

    def project(self, key: str = "project") -> sqlite3.Row:
        """The route's project (by name, or by id when ``X-Is-Resource-Name: false`` or the value is numeric)."""
        value = self.params[key]
        by_id = value.isdigit() and self.request.headers.get("X-Is-Resource-Name", "").lower() != "true"
        row = self.harbor.store.project(int(value) if by_id else value)
        if row is None:
            raise not_found(f"project {value}")
        return row

    def require(self, project: sqlite3.Row | None, resource: str, action: str) -> None:
        """401 for the anonymous, 403 for a caller the project's roles do not allow."""
        if api_may(self.harbor.policy, self.user, dict(project) if project is not None else None, resource,
                   action):
            return
        self.signed_in()
        raise harbor_error("FORBIDDEN", "forbidden")


Route = Callable[[Call], Awaitable[web.StreamResponse]]


class Router:
    """``(method, pattern) -> handler``; a pattern's ``{name}`` is one path segment."""

    def __init__(self, harbor: Harbor) -> None:
        self.harbor = harbor
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []

    def add(self, method: str, pattern: str, handler: Route) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern))
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", PREFIX + "/{tail:.*}", self.dispatch)
        app.on_response_prepare.append(_request_id)

    def caller(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name = password = ""
            if name and self.harbor.policy.authenticate(name, password):
                return name
        raise harbor_error("UNAUTHORIZED", "UnAuthorized")

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = urllib.parse.unquote(request.raw_path.split("?")[0])[len(PREFIX):].rstrip("/") or "/"
        user = self.caller(request)
        request[USER] = user or None
        matched = [(method, m, handler) for method, regex, handler in self._routes if (m := regex.match(path))]
        allowed = [method for method, _, _ in matched]
        for wanted in (request.method, "GET" if request.method == "HEAD" else None):
            for method, m, handler in matched:
                if method == wanted:
                    params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                    request[OPERATION] = operation_id(getattr(handler, "__name__", ""))
                    return await handler(Call(request, self.harbor, user, params))
        if allowed:
            raise harbor_error("METHOD_NOT_ALLOWED", f"{request.method} {PREFIX}{path} is not allowed",
                               headers={"Allow": ", ".join(sorted(set(allowed)))})
        raise harbor_error("NOT_FOUND", f"{PREFIX}{path} is not found (or not supported by the labkit simulator)")


async def _request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries ``X-Request-Id`` (the client's, or a new one), as Harbor's nginx and core set it."""
    response.headers["X-Request-Id"] = request.headers.get("X-Request-Id") or str(uuid.uuid4())
