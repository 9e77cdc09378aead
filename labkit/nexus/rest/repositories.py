"""``/v1/repositories``: list, read, create, update and delete repositories (pypi proxy/hosted/group, maven2
proxy/group)."""

from __future__ import annotations

from aiohttp import web

from ...core.http import json_response
from .. import repositories as model
from .base import V1, Services, json_body


def install(app: web.Application, s: Services) -> None:
    async def listing(request: web.Request) -> web.Response:
        return json_response([model.summary(c, s.base_url) for c in s.store.repositories()])

    async def one(request: web.Request) -> web.Response:
        return json_response(model.summary(s.repository(request.match_info["name"]), s.base_url))

    async def typed(request: web.Request) -> web.Response:
        config = s.repository(request.match_info["name"])
        fmt, kind = request.match_info["format"], request.match_info["type"]
        if model.FORMATS.get(fmt, ("",))[0] != config["format"] or kind != config["type"]:
            return web.Response(status=404, text=f"Repository not found: {config['name']} is a "
                                                 f"{config['format']} {config['type']} repository\n")
        return json_response(model.detail(config, s.base_url))

    async def create(request: web.Request) -> web.Response:
        config = model.from_request(request.match_info["format"], request.match_info["type"],
                                    await json_body(request), None, s.store.repositories())
        s.store.save_repository(config)
        return web.Response(status=201)

    async def update(request: web.Request) -> web.Response:
        existing = s.repository(request.match_info["name"])
        config = model.from_request(request.match_info["format"], request.match_info["type"],
                                    await json_body(request), existing, s.store.repositories())
        if config["type"] != existing["type"] or config["format"] != existing["format"]:
            return web.Response(status=404, text=f"Repository not found: {existing['name']} is a "
                                                 f"{existing['format']} {existing['type']} repository\n")
        s.store.save_repository(config)
        s.engine.forget(config["name"])
        return web.Response(status=204)

    async def delete(request: web.Request) -> web.Response:
        config = s.repository(request.match_info["name"])
        s.store.delete_repository(config["name"])
        s.engine.forget(config["name"])
        return web.Response(status=204)

    app.router.add_get(f"{V1}/repositories", listing)
    app.router.add_get(f"{V1}/repositories/{{name}}", one)
    app.router.add_delete(f"{V1}/repositories/{{name}}", delete)
    app.router.add_get(f"{V1}/repositories/{{format}}/{{type}}/{{name}}", typed)
    app.router.add_put(f"{V1}/repositories/{{format}}/{{type}}/{{name}}", update)
    app.router.add_post(f"{V1}/repositories/{{format}}/{{type}}", create)
