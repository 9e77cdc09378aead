"""Project webhooks: ``/projects/:id/hooks``."""

from __future__ import annotations

from aiohttp import web

from ..errors import not_found, unsupported
from ..hooks import UNSUPPORTED, Webhooks, _flag
from .common import ok, paginate, params, required
from .projects import ProjectRoutes


class HookRoutes:
    def __init__(self, hooks: Webhooks, projects: ProjectRoutes) -> None:
        self.hooks = hooks
        self.p = projects

    def install(self, app: web.Application) -> None:
        r, P = app.router, "/api/v4/projects/{id}/hooks"
        r.add_get(P, self.list)
        r.add_post(P, self.create)
        r.add_get(P + "/{hid:\\d+}", self.get)
        r.add_put(P + "/{hid:\\d+}", self.update)
        r.add_delete(P + "/{hid:\\d+}", self.delete)

    def _hook(self, request: web.Request) -> dict:
        project, _ = self.p.writable(request)
        hook = self.hooks.store.get("hook", int(request.match_info["hid"]))
        if hook is None or hook["project_id"] != project["id"]:
            raise not_found("")
        return hook

    @staticmethod
    def _check(p: dict) -> None:
        asked = [k for k in UNSUPPORTED if _flag(p.get(k), False)]
        if asked:
            raise unsupported(f"webhook events other than push and tag push ({', '.join(asked)})")

    async def list(self, request: web.Request) -> web.Response:
        project, _ = self.p.writable(request)
        return paginate(request, [self.hooks.to_json(h) for h in self.hooks.of(project["id"])])

    async def create(self, request: web.Request) -> web.Response:
        project, _ = self.p.writable(request)
        p = await params(request)
        required(p, "url")
        self._check(p)
        return ok(self.hooks.to_json(self.hooks.create(project["id"], p)), 201)

    async def get(self, request: web.Request) -> web.Response:
        return ok(self.hooks.to_json(self._hook(request)))

    async def update(self, request: web.Request) -> web.Response:
        hook = self._hook(request)
        p = await params(request)
        self._check(p)
        for key in ("url", "push_events", "tag_push_events", "push_events_branch_filter", "enable_ssl_verification",
                    "name", "description"):
            if key in p:
                hook[key] = p[key] if key in ("url", "push_events_branch_filter", "name", "description") \
                    else _flag(p[key], hook[key])
        if "token" in p:
            hook["_token"] = p["token"] or ""
        return ok(self.hooks.to_json(self.hooks.store.put("hook", hook)))

    async def delete(self, request: web.Request) -> web.Response:
        hook = self._hook(request)
        self.hooks.store.delete("hook", hook["id"])
        return web.Response(status=204)
