"""Argo CD's API server as the lab's: the REST paths of its grpc-gateway (``/api/v1/...``, ``/api/version``,
``/api/webhook``), authenticated with Argo CD's session tokens, errors in grpc-gateway's shape."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import USER, api_app, json_response
from . import errors
from .applications import Applications
from .context import ApiContext, body
from .projects import Projects
from .repositories import Repositories
from .sessions import COOKIE, LIFETIME, SESSION_ERROR, Caller, SessionAuthenticator, Sessions
from .webhook import PATH as WEBHOOK
from .webhook import Webhook

VERSION = "v3.1.8+labkit"  # the Argo CD release whose API this follows (manifests/versions.yaml's chart ships it)
PUBLIC = {("POST", "/api/v1/session"), ("GET", "/api/v1/session/userinfo"), ("GET", "/api/version"),
          ("POST", WEBHOOK), ("GET", "/healthz")}


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    """grpc-gateway's shape; a refused session says why, as Argo CD's ``Authenticate``."""
    if err.status == 401 and err.reason == "Unauthorized":
        problem = request.get(SESSION_ERROR)
        err = errors.unauthenticated(f"invalid session: {problem}" if problem else "no session information")
    return errors.render(request, err)


def make_app(ctx: ApiContext, sessions: Sessions, logger: logging.Logger | None = None) -> web.Application:
    """The API server's aiohttp application."""
    app = api_app("argocd-server", render_error=render, credentials=SessionAuthenticator(sessions),
                  public=lambda r: (r.method, r.path.rstrip("/") or "/") in PUBLIC or r.path == WEBHOOK,
                  logger=logger)
    SessionRoutes(sessions).install(app)
    for part in (Applications(ctx), Projects(ctx), Repositories(ctx), Webhook(ctx)):
        part.install(app)
    return app


class SessionRoutes:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v1/session", self.create)
        r.add_delete("/api/v1/session", self.delete)
        r.add_get("/api/v1/session/userinfo", self.userinfo)
        r.add_get("/api/version", self.version)
        r.add_get("/healthz", self.healthz)

    async def create(self, request: web.Request) -> web.Response:
        req = await body(request)
        if req.get("token"):
            raise errors.unauthenticated("token-based session creation no longer supported. please upgrade argocd "
                                         "cli to v0.7+")
        if not req.get("username") or not req.get("password"):
            raise errors.unauthenticated("no credentials supplied")
        token = self.sessions.login(req["username"], req["password"])
        if token is None:
            raise errors.unauthenticated("Invalid username or password")
        response = json_response({"token": token})
        response.set_cookie(COOKIE, token, max_age=LIFETIME, path="/", httponly=True, samesite="Lax")
        return response

    async def delete(self, request: web.Request) -> web.Response:
        response = json_response({})
        response.del_cookie(COOKIE, path="/")
        return response

    async def userinfo(self, request: web.Request) -> web.Response:
        caller = request.get(USER)
        if not isinstance(caller, Caller):
            return json_response({"loggedIn": False})
        claims: dict[str, Any] = caller.claims
        return json_response({"loggedIn": True, "username": claims["sub"], "iss": claims["iss"], "groups": []})

    async def version(self, request: web.Request) -> web.Response:
        if not isinstance(request.get(USER), Caller):
            return json_response({"Version": VERSION})  # Argo CD tells anonymous callers no more
        return json_response({"Version": VERSION, "BuildDate": "", "GitCommit": "", "GitTag": "",
                              "GitTreeState": "clean", "GoVersion": "", "Compiler": "labkit",
                              "Platform": "labkit/sim", "KustomizeVersion": "kubectl kustomize",
                              "HelmVersion": "", "KubectlVersion": "", "JsonnetVersion": ""})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")
