"""GitLab's REST API v4, the subset the chapters use: routes, auth, pagination and error shapes."""

from __future__ import annotations

from aiohttp import web

from ..accounts import api_caller
from ..hooks import Webhooks
from ..instance_variables import InstanceVariables
from .accounts import AccountRoutes
from .admin import AdminRoutes
from .ci import CiRoutes
from .common import CALLER
from .context import Services
from .hooks import HookRoutes
from .instance import InstanceRoutes
from .projects import ProjectRoutes

__all__ = ["Services", "install"]


def install(app: web.Application, services: Services, hooks: Webhooks) -> None:
    """Add the API's routes and the middleware that names the caller of every ``/api/v4`` request."""

    @web.middleware
    async def authenticate(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            job = services.pipelines.job_for_token if services.pipelines is not None else None
            request[CALLER] = api_caller(request, services.accounts, job)
        return await handler(request)

    app.middlewares.append(authenticate)
    projects = ProjectRoutes(services)
    for routes in (InstanceRoutes(services), AccountRoutes(services), projects, CiRoutes(services, projects),
                   HookRoutes(hooks, projects), AdminRoutes(services, InstanceVariables(services.accounts.store))):
        routes.install(app)
