"""The OCI distribution API (``/v2/``) over RegistryStorage, with token auth and the registry's error shape."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from ..core.http import USER, json_response
from .auth import Authority, Caller
from .blobs import InvalidDigest, digest_of, parse_digest
from .errors import registry_error
from .manifests import MAX_MANIFEST, OCI_INDEX, TAG, accepts, parse
from .storage import RegistryStorage
from .uploads import DigestMismatch

NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>blobs/uploads|blobs|manifests|tags|referrers)(?:/(?P<ref>[^/]*))?$")
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")
CATALOG_MAX = 1000  # the reference registry's page size limit
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}

Handler = Callable[[web.Request, Caller | None, str, str], Awaitable[web.StreamResponse]]


class Events(Protocol):
    """What the registry tells the product in front of it (Harbor: ``harbor/events.py``); a ``before_*`` hook
    refuses by raising a registry error, the others record what was done before the registry answers."""

    def check_quota(self, repo: str, digest: str, size: int) -> None: ...

    def before_push(self, user: str, repo: str, digest: str, body: bytes, tags: list[str]) -> None: ...

    def pushed(self, user: str, repo: str, digest: str, media_type: str, body: bytes, tags: list[str]) -> None: ...

    def pulled(self, user: str, repo: str, digest: str, tag: str | None) -> None: ...

    def before_delete(self, user: str, repo: str, digest: str, tag: str | None) -> None: ...

    def deleted(self, user: str, repo: str, digest: str, tag: str | None) -> None: ...


def _digest(value: str) -> str:
    try:
        parse_digest(value)
    except InvalidDigest as exc:
        raise registry_error("DIGEST_INVALID", detail={"digest": value},
                             message="invalid digest or unsupported digest algorithm") from exc
    return value


def _page(items: list[str], request: web.Request, default: int | None) -> tuple[list[str], dict[str, str]]:
    """``n``/``last`` pagination (items sorted) with an RFC 5988 ``Link`` to the next page."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    raw = request.query.get("n")
    if raw is None and default is None:
        return items, {}
    if raw is not None and (not raw.isdigit() or int(raw) > CATALOG_MAX):
        raise registry_error("PAGINATION_NUMBER_INVALID", detail={"n": raw})
    n = int(raw) if raw is not None else (default or 0)
    page = items[:n]
    if len(items) > n > 0:
        query = urllib.parse.urlencode({"last": page[-1], "n": n})
        return page, {"Link": f'<{request.path}?{query}>; rel="next"'}
    return page, {}


def _location(name: str, kind: str, ref: str) -> str:
    return f"/v2/{name}/{kind}/{ref}"


class RegistryApi:
    """Routes ``/v2/...`` requests; each handler checks what the caller may do first."""

    def __init__(self, storage: RegistryStorage, authority: Authority, events: Events | None = None) -> None:
        self.storage = storage
        self.auth = authority
        self.events = events
        self._handlers: dict[str, Handler] = {
            "blobs": self._blob, "blobs/uploads": self._upload, "manifests": self._manifest,
            "tags": self._tags, "referrers": self._referrers}

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/v2/{tail:.*}", self.dispatch)
        app.router.add_route("*", self.auth.token_path, self.auth.token_endpoint)
        app.on_response_prepare.append(self._version_header)

    @staticmethod
    async def _version_header(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v2"):
            response.headers.update(API_VERSION)

    def _require(self, request: web.Request, caller: Caller | None, name: str, action: str) -> None:
        self.auth.require(request, caller, "repository", name, action)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        caller = self.auth.caller(request)
        request[USER] = caller.user if caller else None
        if request.path in ("/v2", "/v2/"):
            if caller is None or (not caller.user and not caller.token):
                raise self.auth.challenge(request, error=self.auth.error(request, caller))
            return json_response({})
        if request.path == "/v2/_catalog":
            self.auth.require(request, caller, "registry", "catalog", "*")
            repos, link = _page(self.storage.meta.repositories(), request, CATALOG_MAX)
            return json_response({"repositories": repos}, headers=link)
        m = _ROUTE.match(request.path)
        if not m:
            raise registry_error("NOT_FOUND")
        name, kind, ref = m["name"], m["kind"], m["ref"] or ""
        if len(name) > 255 or not NAME.match(name):
            raise registry_error("NAME_INVALID", detail={"name": name})
        return await self._handlers[kind](request, caller, name, ref)

    # -- blobs ----------------------------------------------------------------
    async def _blob(self, request: web.Request, caller: Caller | None, name: str, digest: str) -> web.StreamResponse:
        action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise registry_error("UNSUPPORTED", detail={"method": request.method})
        self._require(request, caller, name, action)
        _digest(digest)
        if not self.storage.has_blob(name, digest):
            raise registry_error("BLOB_UNKNOWN", detail={"digest": digest})
        if request.method == "DELETE":
            self.storage.delete_blob(name, digest)
            return web.Response(status=202, headers={"Docker-Content-Digest": digest})
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
                   "Cache-Control": "max-age=31536000", "Accept-Ranges": "bytes"}
        path = self.storage.blobs.path(digest)
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(path.stat().st_size)})
        return web.FileResponse(path, headers=headers)  # honours Range: 206 with Content-Range

    # -- uploads ----------------------------------------------------------------
    async def _upload(self, request: web.Request, caller: Caller | None, name: str,
                      upload: str) -> web.StreamResponse:
        self._require(request, caller, name, "push")
        if not upload:
            if request.method != "POST":
                raise registry_error("UNSUPPORTED", detail={"method": request.method})
            return await self._start_upload(request, caller, name)
        path = self.storage.uploads.path(name, upload)
        if path is None:
            raise registry_error("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload})
        if request.method == "GET":
            return self._progress(name, path, 204)
        if request.method == "DELETE":
            self.storage.uploads.cancel(path)
            return web.Response(status=204, headers={"Docker-Upload-UUID": upload})
        if request.method == "PATCH":
            await self._append(request, name, path)
            return self._progress(name, path, 202)
        if request.method == "PUT":
            digest = request.query.get("digest")
            if not digest:
                raise registry_error("DIGEST_INVALID", detail="digest missing")
            _digest(digest)
            await self._append(request, name, path)
            if self.events is not None:
                self.events.check_quota(name, digest, self.storage.uploads.size(path))
            try:
                self.storage.uploads.finish(name, path, digest)
            except DigestMismatch as exc:
                raise registry_error("DIGEST_INVALID", detail={"digest": digest, "actual": str(exc)}) from exc
            return self._created(name, digest)
        raise registry_error("UNSUPPORTED", detail={"method": request.method})

    async def _start_upload(self, request: web.Request, caller: Caller | None, name: str) -> web.StreamResponse:
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and self._mount(request, caller, name, mount, source):
            return self._created(name, mount)
        digest = request.query.get("digest")
        if digest:  # monolithic: the whole blob in the POST
            _digest(digest)
            if self.events is not None:  # a chunked-encoded body's size is unknown until stored: not counted
                self.events.check_quota(name, digest, request.content_length or 0)
            try:
                await self.storage.uploads.monolithic(name, request.content.iter_chunked(1 << 20), digest)
            except DigestMismatch as exc:
                raise registry_error("DIGEST_INVALID", detail={"digest": digest, "actual": str(exc)}) from exc
            return self._created(name, digest)
        upload = self.storage.uploads.start(name)
        return self._progress(name, self.storage.uploads.root / upload, 202)

    def _mount(self, request: web.Request, caller: Caller | None, name: str, digest: str, source: str | None) -> bool:
        """Link a blob from another repository; False (start an upload instead) if it cannot be mounted."""
        if not self.storage.blobs.exists(digest):
            return False
        source = source or self.storage.meta.any_repo_with(digest)  # `from` is optional (distribution-spec 1.1)
        if not source or not NAME.match(source) or not self.storage.meta.linked(source, digest):
            return False
        if caller is None or not caller.may("repository", source, "pull", self.auth.policy):
            return False
        if self.events is not None:
            self.events.check_quota(name, digest, self.storage.blobs.path(digest).stat().st_size)
        self.storage.meta.link(name, digest)
        return True

    async def _append(self, request: web.Request, name: str, path: Path) -> None:
        """Append the body, checking ``Content-Range`` against what the session holds (416 when out of order)."""
        size = self.storage.uploads.size(path)
        content_range = request.headers.get("Content-Range")
        if content_range:
            m = _CONTENT_RANGE.match(content_range.strip())
            length = request.content_length
            if not m or int(m[1]) != size or int(m[2]) < int(m[1]) or (
                    length is not None and length != int(m[2]) - int(m[1]) + 1):
                raise registry_error("RANGE_INVALID", detail={"Content-Range": content_range, "size": size},
                                     headers=self._progress_headers(name, path, size))
        if request.body_exists:
            await self.storage.uploads.append(path, request.content.iter_chunked(1 << 20))

    @staticmethod
    def _progress_headers(name: str, path: Path, size: int) -> dict[str, str]:
        return {"Location": _location(name, "blobs/uploads", path.name), "Range": f"0-{max(size - 1, 0)}",
                "Docker-Upload-UUID": path.name}

    def _progress(self, name: str, path: Path, status: int) -> web.Response:
        return web.Response(status=status,
                            headers=self._progress_headers(name, path, self.storage.uploads.size(path)))

    @staticmethod
    def _created(name: str, digest: str) -> web.Response:
        return web.Response(status=201, headers={"Location": _location(name, "blobs", digest),
                                                 "Docker-Content-Digest": digest})

    # -- manifests ----------------------------------------------------------------
    async def _manifest(self, request: web.Request, caller: Caller | None, name: str,
                        ref: str) -> web.StreamResponse:
        action = {"GET": "pull", "HEAD": "pull", "PUT": "push", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise registry_error("UNSUPPORTED", detail={"method": request.method})
        self._require(request, caller, name, action)
        is_digest = ":" in ref
        if is_digest:
            _digest(ref)
        elif not TAG.match(ref):
            raise registry_error("MANIFEST_INVALID", detail={"tag": ref}, message="invalid tag")
        if request.method == "PUT":
            return await self._put_manifest(request, caller, name, ref, is_digest)
        digest = self.storage.meta.resolve(name, ref)
        if digest is None:
            raise registry_error("MANIFEST_UNKNOWN", detail={"name": name, "reference": ref})
        user = caller.user if caller else ""
        tag = None if is_digest else ref
        if request.method == "DELETE":
            if self.events is not None:
                self.events.before_delete(user, name, digest, tag)
            if is_digest:
                self.storage.delete_manifest(name, digest)
            else:
                self.storage.meta.delete_tag(name, ref)
            if self.events is not None:
                self.events.deleted(user, name, digest, tag)
            return web.Response(status=202)
        row = self.storage.meta.manifest(name, digest)
        assert row is not None
        if not accepts(request.headers.getall("Accept", []), row.media_type):
            raise registry_error("MANIFEST_UNKNOWN", detail={"name": name, "reference": ref},
                                 message=f"{row.media_type} manifest found, but accept header does not support it")
        headers = {"Docker-Content-Digest": digest, "Content-Type": row.media_type, "ETag": f'"{digest}"'}
        if request.headers.get("If-None-Match", "").strip('"') == digest:
            return web.Response(status=304, headers=headers)
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(row.size)})
        body = self.storage.blobs.read(digest)
        if self.events is not None:
            self.events.pulled(user, name, digest, tag)
        return web.Response(body=body, headers=headers)

    async def _put_manifest(self, request: web.Request, caller: Caller | None, name: str, ref: str,
                            is_digest: bool) -> web.Response:
        if (request.content_length or 0) > MAX_MANIFEST:
            raise registry_error("SIZE_INVALID", status=413, message=f"manifest is larger than {MAX_MANIFEST} bytes")
        body = await request.content.read(MAX_MANIFEST + 1)
        if len(body) > MAX_MANIFEST:
            raise registry_error("SIZE_INVALID", status=413, message=f"manifest is larger than {MAX_MANIFEST} bytes")
        manifest = parse(body, request.headers.get("Content-Type", ""))
        if is_digest and digest_of(body, parse_digest(ref)[0]) != ref:
            raise registry_error("DIGEST_INVALID", detail={"digest": ref})
        for blob in manifest.blobs:
            if not self.storage.has_blob(name, blob):
                raise registry_error("MANIFEST_BLOB_UNKNOWN", detail={"digest": blob})
        for child in manifest.manifests:
            if self.storage.meta.manifest(name, child) is None:
                raise registry_error("MANIFEST_BLOB_UNKNOWN", detail={"digest": child},
                                     message="manifest unknown to registry")
        tags = [] if is_digest else [ref]
        extra = request.query.getall("tag", []) if is_digest else []
        for tag in extra:
            if not TAG.match(tag):
                raise registry_error("MANIFEST_INVALID", detail={"tag": tag}, message="invalid tag")
        user = caller.user if caller else ""
        if self.events is not None:
            self.events.before_push(user, name, ref if is_digest else digest_of(body, "sha256"), body, tags + extra)
        digest = self.storage.put_manifest(name, body, manifest, tags + extra)
        if self.events is not None:
            self.events.pushed(user, name, digest, manifest.media_type, body, tags + extra)
        headers = {"Location": _location(name, "manifests", digest), "Docker-Content-Digest": digest}
        if manifest.subject:
            headers["OCI-Subject"] = manifest.subject
        response = web.Response(status=201, headers=headers)
        for tag in extra:
            response.headers.add("OCI-Tag", tag)
        return response

    # -- tags and referrers -----------------------------------------------------------
    async def _tags(self, request: web.Request, caller: Caller | None, name: str, ref: str) -> web.Response:
        if ref != "list":
            raise registry_error("NOT_FOUND")
        if request.method not in ("GET", "HEAD"):
            raise registry_error("UNSUPPORTED", detail={"method": request.method})
        self._require(request, caller, name, "pull")
        if not self.storage.meta.repo_exists(name):
            raise registry_error("NAME_UNKNOWN", detail={"name": name})
        page, link = _page(self.storage.meta.tags(name), request, None)
        return json_response({"name": name, "tags": page}, headers=link)

    async def _referrers(self, request: web.Request, caller: Caller | None, name: str,
                         subject: str) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise registry_error("UNSUPPORTED", detail={"method": request.method})
        self._require(request, caller, name, "pull")
        _digest(subject)
        rows = self.storage.meta.referrers(name, subject)
        headers = {}
        wanted = request.query.getall("artifactType", [])
        if wanted:
            rows = [r for r in rows if r.artifact_type in wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [r.descriptor() for r in rows]}
        return json_response(body, headers=headers, content_type=OCI_INDEX)

