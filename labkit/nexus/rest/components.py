"""``/v1/components``, ``/v1/assets`` and ``/v1/search`` (+ ``/v1/search/assets``), paged with
``continuationToken`` as Nexus pages them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...core.errors import ApiError, not_supported
from ...core.http import json_response
from ..store import Asset, ComponentRow
from .base import V1, Services, after, decode_id, encode_id, iso, token

COMPONENT_PAGE = 10  # Nexus' page sizes
SEARCH_PAGE = 50
UNSUPPORTED_SEARCH = ("sort", "direction", "prerelease", "keyword", "md5", "sha1", "sha256", "sha512")
SEARCH_FIELDS = {"group": "grp", "name": "name", "version": "version", "maven.groupId": "grp",
                 "maven.artifactId": "name", "maven.baseVersion": "version", "pypi.name": "name"}
ASSET_FILTERS = ("maven.extension", "maven.classifier")


def asset_json(s: Services, asset: Asset, fmt: str) -> dict[str, Any]:
    return {"downloadUrl": f"{s.base_url}/repository/{asset.repository}/{asset.path}", "path": asset.path,
            "id": encode_id(asset.repository, asset.id), "repository": asset.repository, "format": fmt,
            "checksum": {"sha1": asset.sha1, "sha256": asset.sha256, "md5": asset.md5},
            "contentType": asset.content_type.split(";")[0], "lastModified": iso(asset.modified),
            "lastDownloaded": iso(asset.downloaded), "uploader": asset.uploader, "uploaderIp": None,
            "fileSize": asset.size, "blobCreated": iso(asset.created)}


def component_json(s: Services, row: ComponentRow, fmt: str) -> dict[str, Any]:
    return {"id": encode_id(row.repository, row.id), "repository": row.repository, "format": fmt,
            "group": row.group or None, "name": row.name, "version": row.version,
            "assets": [asset_json(s, a, fmt) for a in s.store.component_assets(row.id)]}


def _page(items: list[dict[str, Any]], rows: list[Any], size: int) -> web.Response:
    more = len(rows) > size
    return json_response({"items": items[:size], "continuationToken": token(rows[size - 1].id) if more else None})


def _formats(s: Services) -> dict[str, str]:
    return {c["name"]: c["format"] for c in s.store.repositories()}


def _repository_param(request: web.Request, s: Services) -> str:
    name = request.query.get("repository")
    if not name:
        raise ApiError(400, "BadRequest", "the repository parameter is required")
    return s.repository(name)["name"]


def _search_rows(request: web.Request, s: Services, size: int) -> list[ComponentRow]:
    for param in UNSUPPORTED_SEARCH:
        if param in request.query:
            raise not_supported(f"the search parameter {param!r}", 400)
    formats = _formats(s)
    repositories: list[str] | None = None
    if "repository" in request.query:
        repositories = [s.repository(request.query["repository"])["name"]]
    if "format" in request.query:
        wanted = request.query["format"]
        repositories = [r for r in (repositories or list(formats)) if formats.get(r) == wanted]
    filters = {"name": f"*{request.query['q']}*"} if "q" in request.query else {}
    filters |= {SEARCH_FIELDS[k]: v for k, v in request.query.items() if k in SEARCH_FIELDS}
    return s.store.components_page(after(request), size + 1, repositories, **filters)


def _asset_matches(request: web.Request, asset: Asset) -> bool:
    """``maven.extension`` and ``maven.classifier`` (empty: none) on ``<artifactId>-<version>[-classifier].<ext>``."""
    if not any(k in request.query for k in ASSET_FILTERS):
        return True
    parts = asset.path.split("/")
    if len(parts) < 4:
        return False
    base, filename = f"{parts[-3]}-{parts[-2]}", parts[-1]
    if not filename.startswith(base):
        return False
    rest = filename[len(base):]  # "[-classifier].ext"
    classifier, _, extension = rest.lstrip("-").partition(".") if rest.startswith("-") else ("", "", rest[1:])
    if "maven.extension" in request.query and extension != request.query["maven.extension"]:
        return False
    return "maven.classifier" not in request.query or classifier == request.query["maven.classifier"]


def install(app: web.Application, s: Services) -> None:
    async def components(request: web.Request) -> web.Response:
        name = _repository_param(request, s)
        fmt = _formats(s)[name]
        rows = s.store.components_page(after(request), COMPONENT_PAGE + 1, [name])
        return _page([component_json(s, r, fmt) for r in rows], rows, COMPONENT_PAGE)

    async def component(request: web.Request) -> web.Response:
        row = s.store.component(decode_id(request.match_info["id"]))
        if row is None:
            raise ApiError(404, "NotFound", "Component not found")
        return json_response(component_json(s, row, _formats(s).get(row.repository, "")))

    async def assets(request: web.Request) -> web.Response:
        name = _repository_param(request, s)
        fmt = _formats(s)[name]
        rows = s.store.assets_page(name, after(request), COMPONENT_PAGE + 1)
        return _page([asset_json(s, a, fmt) for a in rows], rows, COMPONENT_PAGE)

    async def asset(request: web.Request) -> web.Response:
        found = s.store.asset_by_id(decode_id(request.match_info["id"]))
        if found is None:
            raise ApiError(404, "NotFound", "Asset not found")
        return json_response(asset_json(s, found, _formats(s).get(found.repository, "")))

    async def search(request: web.Request) -> web.Response:
        rows = _search_rows(request, s, SEARCH_PAGE)
        formats = _formats(s)
        return _page([component_json(s, r, formats.get(r.repository, "")) for r in rows], rows, SEARCH_PAGE)

    async def search_assets(request: web.Request) -> web.Response:
        rows = _search_rows(request, s, SEARCH_PAGE)
        formats = _formats(s)
        items = [asset_json(s, a, formats.get(r.repository, "")) for r in rows[:SEARCH_PAGE]
                 for a in s.store.component_assets(r.id) if _asset_matches(request, a)]
        more = len(rows) > SEARCH_PAGE
        return json_response({"items": items, "continuationToken": token(rows[SEARCH_PAGE - 1].id) if more else None})

    async def search_download(request: web.Request) -> web.Response:
        """A redirect to the one asset the search finds (``curl -L``), as Nexus answers it."""
        rows = _search_rows(request, s, SEARCH_PAGE)
        found = [a for r in rows for a in s.store.component_assets(r.id) if _asset_matches(request, a)]
        if not found:
            raise ApiError(404, "NotFound", "Search returned no assets")
        if len(found) > 1:
            raise ApiError(400, "BadRequest", f"Search returned multiple assets ({len(found)}), please refine "
                                              "search criteria to find a single asset or use the sort query "
                                              "parameter to retrieve the first result.")
        asset = found[0]
        raise web.HTTPFound(f"{s.base_url}/repository/{asset.repository}/{asset.path}")

    async def delete_component(request: web.Request) -> web.Response:
        row = s.store.component(decode_id(request.match_info["id"]))
        if row is None:
            raise ApiError(404, "NotFound", "Component not found")
        s.store.delete_component(row.id)
        return web.Response(status=204)

    app.router.add_get(f"{V1}/components", components)
    app.router.add_get(f"{V1}/components/{{id}}", component)
    app.router.add_delete(f"{V1}/components/{{id}}", delete_component)
    app.router.add_get(f"{V1}/assets", assets)
    app.router.add_get(f"{V1}/assets/{{id}}", asset)
    app.router.add_get(f"{V1}/search", search)
    app.router.add_get(f"{V1}/search/assets", search_assets)
    app.router.add_get(f"{V1}/search/assets/download", search_download)
