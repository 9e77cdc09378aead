"""Admin routes: the instance's CI/CD variables (``/api/v4/admin/ci/variables``, administrators only), as GitLab's
``API::Admin::Ci::Variables`` answers them."""

from __future__ import annotations

from aiohttp import web

from ..instance_variables import InstanceVariables
from .common import admin, ok, paginate, params
from .context import Services

BASE = "/api/v4/admin/ci/variables"


class AdminRoutes:
    def __init__(self, s: Services, variables: InstanceVariables) -> None:
        self.s = s
        self.variables = variables

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get(BASE, self.list)
        r.add_post(BASE, self.create)
        r.add_get(BASE + "/{key}", self.get)
        r.add_put(BASE + "/{key}", self.update)
        r.add_delete(BASE + "/{key}", self.delete)

    async def list(self, request: web.Request) -> web.Response:
        admin(request)
        return paginate(request, [self.variables.public(v) for v in self.variables.all()])

    async def create(self, request: web.Request) -> web.Response:
        admin(request)
        return ok(self.variables.public(self.variables.create(await params(request))), 201)

    async def get(self, request: web.Request) -> web.Response:
        admin(request)
        return ok(self.variables.public(self.variables.get(request.match_info["key"])))

    async def update(self, request: web.Request) -> web.Response:
        admin(request)
        return ok(self.variables.public(self.variables.update(request.match_info["key"], await params(request))))

    async def delete(self, request: web.Request) -> web.Response:
        admin(request)
        self.variables.delete(request.match_info["key"])
        return web.Response(status=204)
