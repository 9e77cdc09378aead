"""``/version``, ``/user``, ``/users``, personal access tokens, namespaces and groups."""

from __future__ import annotations

from aiohttp import web

from ..errors import gl_error, not_found
from .common import admin, caller, flag, ok, paginate, params, required, user
from .context import VERSION, Services


class AccountRoutes:
    def __init__(self, s: Services) -> None:
        self.s = s

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v4/version", self.version)
        r.add_get("/api/v4/metadata", self.version)
        r.add_get("/api/v4/user", self.me)
        r.add_get("/api/v4/users", self.users)
        r.add_post("/api/v4/users", self.create_user)
        r.add_get("/api/v4/users/{id:\\d+}", self.get_user)
        r.add_post("/api/v4/users/{id:\\d+}/personal_access_tokens", self.create_token)
        r.add_get("/api/v4/personal_access_tokens", self.tokens)
        r.add_get("/api/v4/personal_access_tokens/self", self.token_self)
        r.add_delete("/api/v4/personal_access_tokens/self", self.revoke_self)
        r.add_get("/api/v4/personal_access_tokens/{id:\\d+}", self.token)
        r.add_delete("/api/v4/personal_access_tokens/{id:\\d+}", self.revoke)
        r.add_post("/api/v4/admin/token", self.identify)
        r.add_get("/api/v4/namespaces", self.namespaces)
        r.add_get("/api/v4/groups", self.groups)
        r.add_post("/api/v4/groups", self.create_group)
        r.add_get("/api/v4/groups/{id}", self.group)

    async def version(self, request: web.Request) -> web.Response:
        user(request, "read_user")
        return ok({"version": VERSION, "revision": "labkit", "kas": {"enabled": False, "externalUrl": None,
                                                                    "version": None}, "enterprise": False})

    async def me(self, request: web.Request) -> web.Response:
        who = user(request, "read_user")
        return ok(self.s.accounts.public(who.user, full=True))

    async def users(self, request: web.Request) -> web.Response:
        who = caller(request, "read_user")
        p = await params(request)
        found = self.s.accounts.store.all("user")
        if p.get("username"):
            found = [u for u in found if u["username"].lower() == str(p["username"]).lower()]
        elif who.user is None:
            raise gl_error(403, "Not authorized to access /api/v4/users")
        if p.get("search"):
            term = str(p["search"]).lower()
            found = [u for u in found if term in u["username"].lower() or term in u["name"].lower()]
        return paginate(request, [self.s.accounts.public(u, full=who.admin) for u in found])

    async def get_user(self, request: web.Request) -> web.Response:
        who = caller(request, "read_user")
        found = self.s.accounts.user(int(request.match_info["id"]))
        if found is None:
            raise not_found("User")
        return ok(self.s.accounts.public(found, full=who.admin or (who.user or {}).get("id") == found["id"]))

    async def create_user(self, request: web.Request) -> web.Response:
        admin(request)
        p = await params(request)
        required(p, "email", "name", "username")
        if not p.get("password") and not flag(p.get("reset_password")) and not flag(p.get("force_random_password")):
            raise gl_error(400, "400 Bad request - password, reset_password, force_random_password are missing, "
                                "exactly one parameter must be provided")
        if p.get("password") and len(str(p["password"])) < 8:
            raise gl_error(400, {"password": ["is too short (minimum is 8 characters)"]})
        created = self.s.accounts.create_user(p["username"], p["name"], p["email"], p.get("password"),
                                              flag(p.get("admin")))
        self.s.projects.namespace_for_user(created)
        return ok(self.s.accounts.public(created, full=True), 201)

    async def create_token(self, request: web.Request) -> web.Response:
        admin(request)
        owner = self.s.accounts.user(int(request.match_info["id"]))
        if owner is None:
            raise not_found("User")
        p = await params(request)
        required(p, "name", "scopes")
        scopes = p["scopes"] if isinstance(p["scopes"], list) else [p["scopes"]]
        return ok(self.s.accounts.create_token(owner, p["name"], scopes, p.get("expires_at"),
                                               description=p.get("description") or ""), 201)

    def _visible_token(self, request: web.Request, id_: int) -> dict:
        who = user(request, "read_user")
        token = self.s.accounts.store.get("token", id_)
        if token is None or not (who.admin or token["user_id"] == who.user["id"]):
            raise not_found("")
        return token

    async def tokens(self, request: web.Request) -> web.Response:
        who = user(request, "read_user")
        p = await params(request)
        owner = int(p["user_id"]) if who.admin and p.get("user_id") else (None if who.admin else who.user["id"])
        found = self.s.accounts.tokens(owner)
        if p.get("state"):
            found = [t for t in found if t["active"] == (p["state"] == "active")]
        return paginate(request, found)

    async def token_self(self, request: web.Request) -> web.Response:
        who = user(request, "read_user")
        if who.token is None:
            raise gl_error(404, "Not Found")
        return ok(self.s.accounts.store.get("token", who.token["id"]))

    async def revoke_self(self, request: web.Request) -> web.Response:
        who = user(request, "read_user")
        if who.token is None:
            raise gl_error(404, "Not Found")
        self.s.accounts.revoke(who.token)
        return web.Response(status=204)

    async def token(self, request: web.Request) -> web.Response:
        return ok(self._visible_token(request, int(request.match_info["id"])))

    async def revoke(self, request: web.Request) -> web.Response:
        token = self._visible_token(request, int(request.match_info["id"]))
        if token["revoked"]:
            raise gl_error(400, "Token already revoked")
        self.s.accounts.revoke(token)
        return web.Response(status=204)

    async def identify(self, request: web.Request) -> web.Response:
        """The token information API (GitLab 17.5+, administrators): what a token value is, scopes included."""
        admin(request)
        p = await params(request)
        required(p, "token")
        token = self.s.accounts.store.token_for(str(p["token"]))
        if token is None:
            raise gl_error(404, "404 Not Found")
        return ok(token)

    async def namespaces(self, request: web.Request) -> web.Response:
        who = user(request)
        found = [n for n in self.s.projects.store.all("namespace")
                 if who.admin or n.get("owner_id") == who.user["id"]]
        return paginate(request, [self.s.projects.namespace_json(n) for n in found])

    async def groups(self, request: web.Request) -> web.Response:
        who = caller(request)
        found = [self._group(n) for n in self.s.projects.store.all("namespace") if n["kind"] == "group"
                 and (n.get("visibility") == "public" or who.user is not None)]
        return paginate(request, found)

    async def create_group(self, request: web.Request) -> web.Response:
        who = user(request, "api")
        p = await params(request)
        required(p, "name", "path")
        if p.get("parent_id"):
            from ..errors import unsupported

            raise unsupported("subgroups (parent_id)")
        return ok(self._group(self.s.projects.create_group(p["name"], p["path"], p.get("visibility", "private"),
                                                           who.user)), 201)

    async def group(self, request: web.Request) -> web.Response:
        caller(request)
        ref = request.match_info["id"]
        found = next((n for n in self.s.projects.store.all("namespace") if n["kind"] == "group" and (
            str(n["id"]) == ref or n["full_path"].lower() == ref.replace("%2F", "/").lower())), None)
        if found is None:
            raise not_found("Group")
        return ok(self._group(found))

    @staticmethod
    def _group(n: dict) -> dict:
        return {k: n.get(k) for k in ("id", "name", "path", "description", "visibility", "full_name", "full_path",
                                      "parent_id", "avatar_url", "web_url", "created_at")} | {"full_name": n["name"]}
