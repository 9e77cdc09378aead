"""HTTP serving for emulators: loopback listeners, auth, size limits, error shapes, access logs."""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .errors import ApiError
from .network import is_loopback

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, ApiError], web.StreamResponse]

DEFAULT_MAX_BODY = 3 * 1024 * 1024  # the Kubernetes API server's request limit
USER = web.RequestKey("user", object)  # request[USER]: the authenticated caller (a name or a UserInfo), or None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type=content_type,
    )


def plain_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Default renderer: ``{"error": reason, "message": ...}``."""
    return json_response({"error": err.reason, "message": err.message, **err.details},
                         err.status, err.headers)


@dataclass(frozen=True)
class UserInfo:
    """A caller with the attributes authorizers look at (as Kubernetes' user.Info: name, uid, groups, extra)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, values) pairs, sorted by key

    def __str__(self) -> str:
        return self.name


class Authenticator(Protocol):
    """Says who sent a request: the caller (a user name or a UserInfo), or None when its credentials fail."""

    def authenticate(self, request: web.Request) -> object | None: ...

    def challenge(self) -> dict[str, str]:
        """Headers of a 401 answer."""
        ...


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER client certificate the TLS layer verified for this connection, if the client sent one."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


@dataclass
class Credentials:
    """Who may call an API: bearer tokens and/or basic-auth users."""

    tokens: dict[str, str]  # token -> user name
    users: dict[str, str]  # user name -> password
    realm: str = "labkit"

    def authenticate(self, request: web.Request) -> str | None:
        return self.user(request.headers.get("Authorization"))

    def challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{self.realm}"'}

    def user(self, header: str | None) -> str | None:
        """The authenticated user for an Authorization header, or None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            for token, user in self.tokens.items():
                if hmac.compare_digest(token.encode(), value.strip().encode()):
                    return user
        elif scheme == "basic":
            try:
                name, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            expected = self.users.get(name)
            if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
                return name
        return None


def api_app(
    component: str,
    render_error: ErrorRenderer = plain_error,
    credentials: Authenticator | None = None,
    public: Callable[[web.Request], bool] = lambda r: False,
    max_body: int = DEFAULT_MAX_BODY,
    logger: logging.Logger | None = None,
) -> web.Application:
    """An aiohttp application with the plumbing every emulator shares.

    Every ApiError (and aiohttp's own HTTP errors) is rendered in the
    component's error shape; requests without valid credentials get 401,
    except those ``public`` lets through; ``request[USER]`` is the caller
    ``credentials`` named (a user name, or a richer UserInfo).
    """
    log = logger or logging.getLogger(f"labkit.{component}")

    @web.middleware
    async def plumbing(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            if request.content_length is not None and request.content_length > max_body:
                raise ApiError(413, "RequestEntityTooLarge",
                               f"request entity too large: limit is {max_body} bytes")
            request[USER] = None
            if credentials is not None:
                request[USER] = credentials.authenticate(request)
                if request[USER] is None and not public(request):
                    raise ApiError(401, "Unauthorized", "Unauthorized", headers=credentials.challenge())
            response = await handler(request)
        except ApiError as err:
            response = render_error(request, err)
        except web.HTTPRequestEntityTooLarge:
            response = render_error(request, ApiError(
                413, "RequestEntityTooLarge", f"request entity too large: limit is {max_body} bytes"))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = render_error(request, ApiError(exc.status, exc.reason, exc.text or exc.reason))
        except Exception as exc:  # a bug in an emulator: answer 500 in shape, keep serving
            log.exception("internal error on %s %s", request.method, request.path_qs)
            response = render_error(request, ApiError(500, "InternalError", f"internal error: {exc!r}"))
        log.info(json.dumps({
            "method": request.method, "path": request.path_qs, "status": response.status,
            "ms": round((time.perf_counter() - start) * 1000, 2), "user": _name(request.get(USER)),
        }))
        return response

    return web.Application(middlewares=[plumbing], client_max_size=max_body)


def _name(user: object) -> str | None:
    return None if user is None else str(user)


SHUTDOWN_SECONDS = 1.0  # open connections (keep-alive, watches) get this long at stop; aiohttp's sites wait 60 s


class Listeners:
    """Serves one aiohttp application on one or more loopback (host, port) pairs and/or unix sockets (the
    socket file is made mode 0600, for its owner only, and removed on stop)."""

    def __init__(self, app: web.Application, addresses: list[tuple[str, int]],
                 ssl_context: ssl.SSLContext | None = None, sockets: list[Path] | None = None) -> None:
        for host, _ in addresses:
            if not is_loopback(host):
                raise ValueError(f"refusing to listen on non-loopback address {host}")
        self.app = app
        self.addresses = addresses
        self.ssl_context = ssl_context
        self.sockets = list(sockets or [])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._sites: list[web.TCPSite] = []
        self._made: list[Path] = []

    async def start(self) -> None:
        await self._runner.setup()
        for host, port in self.addresses:
            site = web.TCPSite(self._runner, host, port, ssl_context=self.ssl_context,
                               reuse_address=True, shutdown_timeout=SHUTDOWN_SECONDS)
            await site.start()
            self._sites.append(site)
        for path in self.sockets:
            if not path.parent.is_dir():  # a folder of its own (core.paths.socket_path): removed on stop
                path.parent.mkdir(mode=0o700, parents=True)
                self._made.append(path.parent)
            path.unlink(missing_ok=True)  # a socket left by a killed daemon
            await web.UnixSite(self._runner, str(path), shutdown_timeout=SHUTDOWN_SECONDS).start()
            os.chmod(path, 0o600)

    async def stop_one(self, index: int) -> None:
        """Stop a single listener (e.g. one of several API servers)."""
        await self._sites[index].stop()

    async def start_one(self, index: int) -> None:
        host, port = self.addresses[index]
        site = web.TCPSite(self._runner, host, port, ssl_context=self.ssl_context,
                           reuse_address=True, shutdown_timeout=SHUTDOWN_SECONDS)
        await site.start()
        self._sites[index] = site

    async def stop(self) -> None:
        await self._runner.cleanup()
        for path in self.sockets:
            path.unlink(missing_ok=True)
        for folder in self._made:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def urls(self) -> list[str]:
        scheme = "https" if self.ssl_context else "http"
        return [f"{scheme}://{h}:{p}" for h, p in self.addresses]
