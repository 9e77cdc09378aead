"""``/repository/<name>/…``: what pip, twine, Maven and Gradle talk to."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..core.errors import ApiError, not_supported
from ..core.http import USER
from .maven import Maven
from .metrics import Metrics
from .proxy import RemoteUnavailable
from .pypi import PyPI
from .simple import normalize, render_project, render_root, wants_json
from .store import Asset, NexusStore

Config = dict[str, Any]
UNAVAILABLE = "Not Found (remote unavailable and not cached)"
DOWNLOADED_EVERY = 3600.0  # an asset's lastDownloaded is written at most this often (seconds)


class Content:
    """Serves repository content of every format; ``repository(name)`` reads a configuration."""

    def __init__(self, store: NexusStore, pypi: PyPI, maven: Maven, metrics: Metrics,
                 repository: Callable[[str], Config | None]) -> None:
        self.store, self.pypi, self.maven, self.metrics, self.repository = store, pypi, maven, metrics, repository

    def install(self, app: web.Application) -> None:
        app.router.add_route("GET", "/repository/{name}", self.redirect)
        app.router.add_route("*", "/repository/{name}/{path:.*}", self.handle)

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(request.path + "/")

    def _config(self, request: web.Request) -> Config:
        config = self.repository(request.match_info["name"])
        if config is None:
            raise ApiError(404, "NotFound", f"Repository not found: {request.match_info['name']}")
        return config

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self._config(request)
        path = request.match_info["path"]
        if request.method == "POST" and config["format"] == "pypi":
            await self.pypi.upload(config, request, str(request[USER]))
            return web.Response(text="OK\n")
        if request.method not in ("GET", "HEAD"):
            raise not_supported(f"{request.method} to a {config['format']} {config['type']} repository", 405)
        if not config.get("online", True):
            raise ApiError(503, "Offline", f"Repository {config['name']} is offline")
        self.metrics.add("requests", config["name"])
        try:
            if config["format"] == "pypi":
                return await self._pypi(config, path, request)
            found = await self.maven.get(config, path)
        except RemoteUnavailable as err:
            raise ApiError(404, "NotFound", str(err), {"reason_phrase": UNAVAILABLE}) from None
        return self._answer(found, path)

    def _answer(self, found: Asset | bytes | None, path: str) -> web.StreamResponse:
        if found is None:
            raise ApiError(404, "NotFound", f"Not Found: {path}")
        if isinstance(found, bytes):
            return web.Response(body=found, content_type="text/plain")
        now = time.time()
        if found.downloaded is None or now - found.downloaded > DOWNLOADED_EVERY:
            self.store.downloaded(found, now)
        response = web.FileResponse(self.store.blobs.path(found.sha256))
        response.content_type = found.content_type.split(";")[0].strip() or "application/octet-stream"
        return response

    async def _pypi(self, config: Config, path: str, request: web.Request) -> web.StreamResponse:
        as_json = wants_json(request.headers.get("Accept", ""))
        if path in ("", "simple", "simple/"):
            body, content_type = render_root(await self.pypi.root(config), as_json)
            return web.Response(body=body.encode(), headers={"Content-Type": content_type})
        parts = path.split("/")
        if parts[0] == "simple" and len(parts) in (2, 3) and parts[1]:
            if len(parts) == 2:
                raise web.HTTPMovedPermanently(request.path + "/")
            links = await self.pypi.project(config, parts[1])
            if links is None:
                raise ApiError(404, "NotFound", f"Not Found: project {parts[1]} in {config['name']}")
            body, content_type = render_project(normalize(parts[1]), links, as_json)
            return web.Response(body=body.encode(), headers={"Content-Type": content_type})
        if parts[0] == "packages":
            return self._answer(await self.pypi.package(config, path), path)
        raise ApiError(404, "NotFound", f"Not Found: {path}")
