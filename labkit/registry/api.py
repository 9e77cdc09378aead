"""The OCI distribution API (``/v2/``): uploads, pulls, manifests, tags, catalog, in the registry's error shape."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import USER, json_response
from .storage import RegistryStore, sha256

MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>blobs/uploads|blobs|manifests|tags)(?:/(?P<ref>[^/]*))?$")


def error(status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, code, message, {"detail": detail} if detail is not None else {}, headers or {})


def render(request: web.Request, err: ApiError) -> web.Response:
    code = err.reason if err.reason.isupper() else {401: "UNAUTHORIZED", 404: "NOT_FOUND", 413: "SIZE_INVALID",
                                                     405: "UNSUPPORTED"}.get(err.status, "UNKNOWN")
    body = {"errors": [{"code": code, "message": err.message, "detail": err.details.get("detail")}]}
    return json_response(body, err.status, err.headers)


def _page(items: list[str], request: web.Request, path: str) -> tuple[list[str], dict[str, str]]:
    """``n``/``last`` pagination with an RFC 5988 ``Link`` to the next page."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    n = request.query.get("n")
    if n is None:
        return items, {}
    if not n.isdigit():
        raise error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": n})
    page = items[: int(n)]
    if len(items) > int(n) and page:
        return page, {"Link": f'<{path}?n={n}&last={page[-1]}>; rel="next"'}
    return page, {}


class RegistryApi:
    def __init__(self, store: RegistryStore, realm: str) -> None:
        self.store = store
        self.realm = realm

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/v2/{tail:.*}", self.dispatch)

    def _push_allowed(self, request: web.Request) -> None:
        if request[USER] is None:
            raise error(401, "UNAUTHORIZED", "authentication required", headers={
                "WWW-Authenticate": f'Basic realm="{self.realm}"'})

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        headers = {"Docker-Distribution-API-Version": "registry/2.0"}
        if request.path in ("/v2", "/v2/"):
            self._push_allowed(request)
            return json_response({}, headers=headers)
        if request.path == "/v2/_catalog":
            repos, link = _page(self.store.repositories(), request, "/v2/_catalog")
            return json_response({"repositories": repos}, headers={**headers, **link})
        m = _ROUTE.match(request.path)
        if not m:
            raise error(404, "NOT_FOUND", "the requested path does not exist")
        name, kind, ref = m["name"], m["kind"], m["ref"] or ""
        if not _NAME.match(name):
            raise error(400, "NAME_INVALID", "invalid repository name", {"name": name})
        if request.method not in ("GET", "HEAD"):
            self._push_allowed(request)
        handler = {"blobs": self._blob, "blobs/uploads": self._upload, "manifests": self._manifest,
                   "tags": self._tags}[kind]
        resp = await handler(request, name, ref)
        resp.headers.update(headers)
        return resp

    async def _tags(self, request: web.Request, name: str, ref: str) -> web.Response:
        tags = self.store.tags(name)
        if ref != "list" or not tags:
            raise error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        page, link = _page(tags, request, f"/v2/{name}/tags/list")
        return json_response({"name": name, "tags": page}, headers=link)

    async def _blob(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        if not self.store.has_blob(name, digest):
            raise error(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        if request.method == "DELETE":
            self.store.unlink(name, digest)
            return web.Response(status=202)
        if request.method not in ("GET", "HEAD"):
            raise error(405, "UNSUPPORTED", "the operation is unsupported")
        path = self.store.blob_path(digest)
        size = path.stat().st_size
        common = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
                  "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            return web.Response(headers={**common, "Content-Length": str(size)})
        return web.FileResponse(path, headers=common)

    async def _upload(self, request: web.Request, name: str, upload: str) -> web.StreamResponse:
        if request.method == "POST" and not upload:
            mount, source = request.query.get("mount"), request.query.get("from")
            if mount and source and self.store.has_blob(source, mount):
                self.store.link(name, mount)
                return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{mount}",
                                                         "Docker-Content-Digest": mount})
            digest = request.query.get("digest")
            if digest:  # monolithic upload in one POST
                data = await request.read()
                if sha256(data) != digest:
                    raise error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
                self.store.put_blob(name, data)
                return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                         "Docker-Content-Digest": digest})
            upload = self.store.new_upload()
            return self._progress(name, upload, 0, 202)
        path = self.store.upload_path(upload)
        if path is None:
            raise error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload})
        if request.method == "DELETE":
            path.unlink()
            return web.Response(status=204)
        if request.method == "GET":
            return self._progress(name, upload, path.stat().st_size, 204)
        if request.method in ("PATCH", "PUT"):
            start = path.stat().st_size
            content_range = request.headers.get("Content-Range")
            if request.method == "PATCH" and content_range:
                first = int(content_range.split("-")[0])
                if first != start:
                    raise web.HTTPRequestRangeNotSatisfiable(headers={"Range": f"0-{start - 1}",
                                                                      "Location": f"/v2/{name}/blobs/uploads/{upload}"})
            with path.open("ab") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    f.write(chunk)
            if request.method == "PATCH":
                return self._progress(name, upload, path.stat().st_size, 202)
            digest = request.query.get("digest", "")
            if not self.store.finish_upload(name, upload, digest):
                raise error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                            {"digest": digest})
            return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                     "Docker-Content-Digest": digest})
        raise error(405, "UNSUPPORTED", "the operation is unsupported")

    @staticmethod
    def _progress(name: str, upload: str, size: int, status: int) -> web.Response:
        return web.Response(status=status, headers={
            "Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": f"0-{max(size - 1, 0)}",
            "Docker-Upload-UUID": upload, "OCI-Chunk-Min-Length": "0"})

    async def _manifest(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        if request.method == "PUT":
            body = await request.read()
            media = request.content_type
            try:
                doc = json.loads(body)
            except ValueError as exc:
                raise error(400, "MANIFEST_INVALID", "manifest invalid", str(exc)) from exc
            media = doc.get("mediaType") or media
            if media not in MANIFEST_TYPES:
                raise error(400, "MANIFEST_INVALID", "manifest invalid",
                            f"media type {media!r} is not supported by the labkit registry")
            for ref_blob in [doc.get("config"), *doc.get("layers", [])]:
                if ref_blob and not self.store.has_blob(name, ref_blob["digest"]):
                    raise error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", ref_blob["digest"])
            for child in doc.get("manifests", []):
                if self.store.manifest(name, child["digest"]) is None:
                    raise error(400, "MANIFEST_BLOB_UNKNOWN", "manifest unknown to registry", child["digest"])
            digest = self.store.put_manifest(name, ref, body, media)
            return web.Response(status=201, headers={"Location": f"/v2/{name}/manifests/{digest}",
                                                     "Docker-Content-Digest": digest})
        found = self.store.manifest(name, ref)
        if found is None:
            raise error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry", {"name": name, "reference": ref})
        digest, media, body = found
        if request.method == "DELETE":
            self.store.delete_manifest(name, digest)
            return web.Response(status=202)
        headers = {"Docker-Content-Digest": digest, "Content-Type": media, "Content-Length": str(len(body))}
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=body, headers=headers)
