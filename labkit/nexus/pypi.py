"""The pypi format: proxy (upstream links rewritten to ``/repository/<name>/packages/...``), hosted (``twine
upload``: the legacy upload API) and group (hosted first, then proxy) repositories."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..core.errors import ApiError
from .proxy import ProxyEngine, RemoteUnavailable
from .simple import Link, normalize, package_path, parse_filename, parse_project, parse_root, relinked
from .store import Asset, NexusStore

Config = dict[str, Any]
PAGES_KEPT = 256  # project pages kept parsed


class PyPI:
    """Project pages and files of every pypi repository type; ``repository(name)`` reads a configuration."""

    def __init__(self, store: NexusStore, engine: ProxyEngine, repository: Callable[[str], Config | None]) -> None:
        self.store, self.engine, self.repository = store, engine, repository
        # (repository, page path) -> (the stored page's digest, its links as ours): the pages read lately
        self._pages: OrderedDict[tuple[str, str], tuple[str, list[Link]]] = OrderedDict()

    @staticmethod
    def _remote(config: Config, path: str) -> str:
        return config["proxy"]["remoteUrl"].rstrip("/") + "/" + path

    def members(self, config: Config) -> list[Config]:
        return [m for m in (self.repository(n) for n in config["group"]["memberNames"]) if m is not None]

    # -- project pages -----------------------------------------------------------------------------
    async def project(self, config: Config, name: str) -> list[Link] | None:
        """The files of project ``name`` with links relative to the repository's page; None: no such project."""
        name = normalize(name)
        if config["type"] == "hosted":
            files = self.store.hosted_files(config["name"], name)
            return [Link(a.path.rsplit("/", 1)[-1], f"../../{a.path}", a.sha256) for a in files] or None
        if config["type"] == "proxy":
            return await self._proxy_project(config, name)
        found: dict[str, Link] = {}
        errors: list[RemoteUnavailable] = []
        for member in self.members(config):
            try:
                links = await self.project(member, name)
            except RemoteUnavailable as err:
                errors.append(err)
                continue
            for link in links or []:
                found.setdefault(link.filename, link)
        if not found and errors:
            raise errors[0]
        return list(found.values()) or None

    async def _proxy_project(self, config: Config, name: str) -> list[Link] | None:
        path = f"simple/{name}/"
        url = self._remote(config, path)
        asset = await self.engine.get(config, path, url, metadata=True)
        if asset is None:
            return None
        key = (config["name"], path)
        seen = self._pages.get(key)
        if seen is not None and seen[0] == asset.sha256:  # the stored page, already read: parsing a big project's
            self._pages.move_to_end(key)                   # page (protobuf: 750 kB) costs more than serving it
            return seen[1]
        links = parse_project(self.store.blobs.read(asset.sha256), asset.content_type, url)
        ours = {package_path(name, link.filename): link for link in links}
        self.store.save_links(config["name"], {p: link.url for p, link in ours.items()})
        result = [relinked(link, f"../../{p}") for p, link in ours.items()]
        self._pages[key] = (asset.sha256, result)
        while len(self._pages) > PAGES_KEPT:
            self._pages.popitem(last=False)
        return result

    async def root(self, config: Config) -> list[str]:
        """The project names the repository knows (a proxy: its remote's root page)."""
        if config["type"] == "hosted":
            return self.store.component_names(config["name"])
        if config["type"] == "proxy":
            url = self._remote(config, "simple/")
            asset = await self.engine.get(config, "simple/", url, metadata=True)
            return parse_root(self.store.blobs.read(asset.sha256), asset.content_type) if asset else []
        names: dict[str, str] = {}
        for member in self.members(config):
            try:
                for n in await self.root(member):
                    names.setdefault(normalize(n), n)
            except RemoteUnavailable:
                continue
        return sorted(names.values(), key=normalize)

    # -- files -------------------------------------------------------------------------------------
    async def package(self, config: Config, path: str) -> Asset | None:
        """A file ``packages/<name>/<version>/<filename>`` of the repository (fetched and stored by a proxy)."""
        parts = path.split("/")
        if len(parts) != 4 or parts[0] != "packages":
            return None
        if config["type"] == "hosted":
            return self.store.asset(config["name"], path)
        if config["type"] == "group":
            errors: list[RemoteUnavailable] = []
            for member in self.members(config):
                try:
                    asset = await self.package(member, path)
                except RemoteUnavailable as err:
                    errors.append(err)
                    continue
                if asset is not None:
                    return asset
            if errors:
                raise errors[0]
            return None
        url = self.store.link(config["name"], path)
        if url is None and self.store.asset(config["name"], path) is None:
            self._pages.pop((config["name"], f"simple/{normalize(parts[1])}/"), None)
            await self._proxy_project(config, parts[1])  # a link we have not seen: read the project's page
            url = self.store.link(config["name"], path)
            if url is None:
                return None
        component = ("", normalize(parts[1]), parts[2])
        return await self.engine.get(config, path, url or "", metadata=False, component=component)

    # -- hosted uploads ----------------------------------------------------------------------------
    async def upload(self, config: Config, request: web.Request, user: str) -> None:
        """``twine upload``'s POST (the legacy upload API's ``file_upload`` action) to a hosted repository."""
        if config["type"] != "hosted":
            raise ApiError(400, "BadRequest", f"Repository {config['name']} is not a hosted repository: "
                                              "uploads go to a hosted repository")
        form = await request.post()
        if form.get(":action") != "file_upload":
            raise ApiError(400, "BadRequest", f"Unsupported action {form.get(':action')!r}: only file_upload "
                                              "is supported by the labkit simulator")
        content, name, version = form.get("content"), form.get("name"), form.get("version")
        if not isinstance(content, web.FileField) or not isinstance(name, str) or not isinstance(version, str):
            raise ApiError(400, "BadRequest", "an upload needs the fields name, version and content (a file)")
        data = content.file.read()
        digest = form.get("sha256_digest")
        if isinstance(digest, str) and digest and hashlib.sha256(data).hexdigest() != digest.lower():
            raise ApiError(400, "BadRequest", "the file's SHA-256 digest does not match sha256_digest")
        filename = content.filename
        parsed = parse_filename(filename)
        if parsed is None or parsed[0] != normalize(name):
            raise ApiError(400, "BadRequest", f"{filename} is not a wheel or sdist of {name}")
        path = package_path(name, filename)
        if self.store.asset(config["name"], path) is not None and \
                config["storage"].get("writePolicy", "allow_once").lower() == "allow_once":
            raise ApiError(400, "BadRequest", f"Repository does not allow updating assets: {config['name']}")
        stored = self.store.blobs.put(data)
        self.store.put_asset(config["name"], path, stored, content.content_type or "application/octet-stream",
                             ("", normalize(name), version), uploader=user)
