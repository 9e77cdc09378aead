"""Nexus' REST API v1 under ``/service/rest/v1`` and its Prometheus metrics (``/service/metrics/prometheus``)."""

from __future__ import annotations

from aiohttp import web

from ...core.errors import not_supported
from .base import Services
from .components import install as install_components
from .repositories import install as install_repositories
from .system import install as install_system

__all__ = ["Services", "install"]


def install(app: web.Application, services: Services) -> None:
    install_repositories(app, services)
    install_components(app, services)
    install_system(app, services)

    async def unknown(request: web.Request) -> web.Response:
        raise not_supported(f"{request.method} {request.path}", 404)

    app.router.add_route("*", "/service/{tail:.*}", unknown)
