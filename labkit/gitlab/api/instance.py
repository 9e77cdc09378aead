"""Instance-level routes: health checks (``/-/health``, ``/-/readiness``, ``/-/liveness``), OAuth's password
grant (``POST /oauth/token``, how a fresh GitLab's root gets its first token without a browser) and runner
records (``POST /user/runners``: the authentication token a runner is installed with)."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from ..errors import bad_request, gl_error, not_found
from ..store import now
from .common import CALLER, admin, ok, paginate, params, user
from .context import Services

INVALID_GRANT = {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, "
                 "expired, revoked, does not match the redirection URI used in the authorization request, or was "
                 "issued to another client."}
RUNNER_TYPES = ("instance_type", "group_type", "project_type")


class InstanceRoutes:
    def __init__(self, s: Services) -> None:
        self.s = s

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/-/health", self.health)
        r.add_get("/-/liveness", self.liveness)
        r.add_get("/-/readiness", self.liveness)
        r.add_post("/oauth/token", self.oauth_token)
        r.add_post("/api/v4/user/runners", self.create_runner)
        r.add_get("/api/v4/runners/all", self.all_runners)
        r.add_get("/api/v4/runners", self.own_runners)
        r.add_get("/api/v4/runners/{rid:\\d+}", self.runner)
        r.add_delete("/api/v4/runners/{rid:\\d+}", self.delete_runner)

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="GitLab OK")

    async def liveness(self, request: web.Request) -> web.Response:
        return ok({"status": "ok", "master_check": [{"status": "ok"}]})

    async def oauth_token(self, request: web.Request) -> web.Response:
        p = await params(request)
        if p.get("grant_type") != "password":
            return web.json_response({"error": "unsupported_grant_type", "error_description": "The authorization "
                                      "grant type is not supported by the authorization server (the labkit "
                                      "simulator supports the password grant only)."}, status=400)
        found = self.s.accounts.user_for_password(str(p.get("username", "")), str(p.get("password", "")))
        if found is None:
            return web.json_response(INVALID_GRANT, status=400)
        token = self.s.accounts.create_token(found, "OAuth password grant", ["api"])
        self.s.accounts.store.put("token", {**self.s.accounts.store.get("token", token["id"]), "_oauth": True})
        return ok({"access_token": token["token"], "token_type": "Bearer", "expires_in": 7200,
                   "refresh_token": secrets.token_hex(32), "scope": "api", "created_at": int(time.time())})

    async def create_runner(self, request: web.Request) -> web.Response:
        who = user(request, "create_runner" if not request[CALLER].can("api") else "api")
        p = await params(request)
        kind = p.get("runner_type") or ""
        if kind not in RUNNER_TYPES:
            raise bad_request("runner_type does not have a valid value") if kind else \
                gl_error(400, "400 Bad request - runner_type is missing")
        if kind != "instance_type":
            from ..errors import unsupported

            raise unsupported(f"runners of type {kind} (the lab registers instance runners)")
        if not who.admin:
            raise gl_error(403)
        tags = p.get("tag_list") or []
        runner = self.s.accounts.store.add("runner", {
            "description": p.get("description") or "", "active": True, "paused": bool(p.get("paused")),
            "is_shared": True, "runner_type": kind, "name": None, "online": False, "status": "never_contacted",
            "ip_address": None, "tag_list": tags if isinstance(tags, list) else str(tags).split(","),
            "run_untagged": p.get("run_untagged", True) not in (False, "false"), "locked": False,
            "access_level": "not_protected", "maximum_timeout": p.get("maximum_timeout"), "created_at": now(),
            "contacted_at": None, "version": None, "_token": "glrt-" + secrets.token_urlsafe(15)[:20]})
        return ok({"id": runner["id"], "token": runner["_token"], "token_expires_at": None}, 201)

    @staticmethod
    def _public(r: dict) -> dict:
        return {k: v for k, v in r.items() if not k.startswith("_")}

    async def all_runners(self, request: web.Request) -> web.Response:
        admin(request)
        return paginate(request, [self._public(r) for r in self.s.accounts.store.all("runner")])

    async def own_runners(self, request: web.Request) -> web.Response:
        who = user(request)
        found = self.s.accounts.store.all("runner") if who.admin else []
        return paginate(request, [self._public(r) for r in found])

    async def runner(self, request: web.Request) -> web.Response:
        admin(request)
        found = self.s.accounts.store.get("runner", int(request.match_info["rid"]))
        if found is None:
            raise not_found("Runner")
        return ok(self._public(found))

    async def delete_runner(self, request: web.Request) -> web.Response:
        admin(request)
        rid = int(request.match_info["rid"])
        if self.s.accounts.store.get("runner", rid) is None:
            raise not_found("Runner")
        self.s.accounts.store.delete("runner", rid)
        return web.Response(status=204)
