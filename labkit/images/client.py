"""A small distribution API client for labkit's own use (image builder, kubelet, notebooks, benchmarks).

It speaks plain HTTP/1.1 over one keep-alive connection per thread and follows the token flow: on a
401 ``Bearer`` challenge it asks the realm for a token (with basic credentials when it has them) and
retries; on a ``Basic`` challenge it sends basic credentials. Works against any registry.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([
    OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_CHUNK = 1 << 20


class RegistryError(Exception):
    """A non-success answer; ``code`` is the first distribution error code, if the body had one."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        self.status = status
        self.code, self.message = "", body.decode(errors="replace")[:300]
        try:
            first = json.loads(body)["errors"][0]
            self.code, self.message = first.get("code", ""), first.get("message", "")
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        super().__init__(f"{method} {path}: {status} {self.code} {self.message}".strip())


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes = b""
    raw: http.client.HTTPResponse | None = field(default=None, repr=False)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


class RegistryClient:
    """``RegistryClient("http://127.0.0.1:5000", "admin", password)``; all paths are below ``/v2/``."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.scheme, self.netloc = parts.scheme or "http", parts.netloc
        self.timeout = timeout
        self._basic = (base64.b64encode(f"{username}:{password}".encode()).decode()
                       if username is not None else None)
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic_ok = False  # the registry asked for basic auth
        self._local = threading.local()

    # -- transport ----------------------------------------------------------------
    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.netloc, timeout=self.timeout, blocksize=_CHUNK)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _send(self, method: str, path: str, body: bytes | BinaryIO | None, headers: dict[str, str],
              stream: bool) -> Response:
        for attempt in (0, 1):  # a keep-alive connection the server closed is retried once on a new one
            conn = self._connection(fresh=attempt > 0)
            try:
                if hasattr(body, "seek"):
                    body.seek(0)  # type: ignore[union-attr]
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                continue
            if stream and resp.status < 300:
                return Response(resp.status, resp.headers, raw=resp)
            return Response(resp.status, resp.headers, resp.read())
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, scope: str, body: bytes | BinaryIO | None = None,
                headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200,),
                stream: bool = False) -> Response:
        """One request with auth; raises RegistryError unless the status is in ``ok``."""
        headers = dict(headers or {})
        if body is None and method in ("POST", "PUT", "PATCH"):
            headers.setdefault("Content-Length", "0")
        auth = self._authorization(scope)
        resp = self._send(method, path, body, {**headers, **auth}, stream)
        if resp.status == 401:
            challenge = resp.headers.get("WWW-Authenticate", "")
            retry = self._answer(challenge, scope)
            if retry and retry != auth:
                resp = self._send(method, path, body, {**headers, **retry}, stream)
        if resp.status not in ok:
            raise RegistryError(method, path, resp.status, resp.body)
        return resp

    def _authorization(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic_ok and self._basic:
            return {"Authorization": f"Basic {self._basic}"}
        return {}

    def _answer(self, challenge: str, scope: str) -> dict[str, str]:
        """Credentials answering a challenge: a token from the realm, or basic auth."""
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic" and self._basic:
            self._basic_ok = True
            return {"Authorization": f"Basic {self._basic}"}
        if scheme != "bearer":
            return {}
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        realm = urllib.parse.urlsplit(params["realm"])
        headers = {"Authorization": f"Basic {self._basic}"} if self._basic else {}
        conn_cls = http.client.HTTPSConnection if realm.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(realm.netloc, timeout=self.timeout)
        try:
            conn.request("GET", f"{realm.path}?{urllib.parse.urlencode(query)}", headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RegistryError("GET", params["realm"], resp.status, data)
        answer = json.loads(data)
        self._tokens[scope] = answer.get("token") or answer["access_token"]
        return {"Authorization": f"Bearer {self._tokens[scope]}"}

    # -- API --------------------------------------------------------------------------
    @staticmethod
    def _scope(repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    def ping(self) -> bool:
        """``GET /v2/`` with whatever credentials the client has; True when the registry accepts them."""
        try:
            self.request("GET", "/v2/", "")
        except RegistryError:
            return False
        return True

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", self._scope(repo), ok=(200, 404))
        return resp.status == 200

    def _location(self, resp: Response) -> str:
        loc = resp.headers["Location"]
        parts = urllib.parse.urlsplit(loc)
        return urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")) if parts.netloc else loc

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return f"{location}{'&' if '?' in location else '?'}digest={urllib.parse.quote(digest)}"

    def push_blob(self, repo: str, data: bytes | Path, digest: str | None = None,
                  chunk_size: int | None = None, check: bool = True) -> str:
        """Upload a blob (bytes or a file) unless the repository has it (``check``): POST then one PUT, or
        PATCHes of ``chunk_size`` bytes then PUT. Returns its digest."""
        digest = digest or (_file_digest(data) if isinstance(data, Path) else sha256_digest(data))
        if check and self.blob_exists(repo, digest):
            return digest
        with data.open("rb") if isinstance(data, Path) else io.BytesIO(data) as f:
            size = os.fstat(f.fileno()).st_size if isinstance(data, Path) else len(data)
            self._upload(repo, f, size, digest, chunk_size)
        return digest

    def _upload(self, repo: str, f: BinaryIO, size: int, digest: str, chunk_size: int | None) -> None:
        scope = self._scope(repo, push=True)
        location = self._location(self.request("POST", f"/v2/{repo}/blobs/uploads/", scope, ok=(202,)))
        octets = {"Content-Type": "application/octet-stream"}
        if not chunk_size:
            self.request("PUT", self._with_digest(location, digest), scope, f, ok=(201,),
                         headers={**octets, "Content-Length": str(size)})
            return
        offset = 0
        while chunk := f.read(chunk_size):
            resp = self.request("PATCH", location, scope, chunk, ok=(202,), headers={
                **octets, "Content-Length": str(len(chunk)), "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            location = self._location(resp)
            offset += len(chunk)
        self.request("PUT", self._with_digest(location, digest), scope, ok=(201,))

    def push_blob_monolithic(self, repo: str, data: bytes) -> str:
        """The single-request upload: ``POST /blobs/uploads/?digest=`` with the blob as body."""
        digest = sha256_digest(data)
        self.request("POST", self._with_digest(f"/v2/{repo}/blobs/uploads/", digest), self._scope(repo, True),
                     data, ok=(201,), headers={"Content-Type": "application/octet-stream"})
        return digest

    def mount_blob(self, repo: str, digest: str, source: str) -> bool:
        """Cross-repository mount; True if mounted (201), False if the registry started an upload instead."""
        path = f"/v2/{repo}/blobs/uploads/?mount={urllib.parse.quote(digest)}&from={urllib.parse.quote(source)}"
        resp = self.request("POST", path, self._scope(repo, True), ok=(201, 202))
        if resp.status == 202:
            self.request("DELETE", self._location(resp), self._scope(repo, True), ok=(204,))
        return resp.status == 201

    def pull_blob(self, repo: str, digest: str) -> bytes:
        """A blob's content, verified against its digest."""
        data = self.request("GET", f"/v2/{repo}/blobs/{digest}", self._scope(repo)).body
        if sha256_digest(data) != digest:
            raise ValueError(f"blob {digest} from {repo} does not match its digest")
        return data

    def pull_blob_to(self, repo: str, digest: str, path: Path) -> int:
        """Stream a blob into ``path`` (verified); returns its size."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", self._scope(repo), stream=True)
        assert resp.raw is not None
        h, size = hashlib.sha256(), 0
        with path.open("wb") as f:
            while chunk := resp.raw.read(_CHUNK):
                f.write(chunk)
                h.update(chunk)
                size += len(chunk)
        if "sha256:" + h.hexdigest() != digest:
            path.unlink()
            raise ValueError(f"blob {digest} from {repo} does not match its digest")
        return size

    def push_manifest(self, repo: str, reference: str, manifest: bytes | dict[str, Any],
                      media_type: str | None = None) -> str:
        """PUT a manifest by tag or digest; returns its digest."""
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest, separators=(",", ":")).encode()
        media_type = media_type or json.loads(body).get("mediaType") or OCI_MANIFEST
        resp = self.request("PUT", f"/v2/{repo}/manifests/{reference}", self._scope(repo, True), body, ok=(201,),
                            headers={"Content-Type": media_type})
        return resp.headers.get("Docker-Content-Digest") or sha256_digest(body)

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", self._scope(repo),
                            headers={"Accept": MANIFEST_ACCEPT})
        digest = resp.headers.get("Docker-Content-Digest") or sha256_digest(resp.body)
        if reference.startswith("sha256:") and sha256_digest(resp.body) != reference:
            raise ValueError(f"manifest {reference} from {repo} does not match its digest")
        return resp.body, resp.headers.get_content_type(), digest

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """HEAD a manifest: its digest, or None if the registry does not have it."""
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{reference}", self._scope(repo), ok=(200, 404),
                            headers={"Accept": MANIFEST_ACCEPT})
        return resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None

    def _paginate(self, path: str, scope: str, key: str, page_size: int | None) -> Iterator[str]:
        next_path: str | None = path + (f"?n={page_size}" if page_size else "")
        while next_path:
            resp = self.request("GET", next_path, scope)
            yield from json.loads(resp.body).get(key) or []
            link = re.match(r"<([^>]+)>", resp.headers.get("Link", ""))
            next_path = link[1] if link else None

    def tags(self, repo: str, page_size: int | None = None) -> list[str]:
        """Every tag of ``repo``, following ``Link`` pages."""
        return list(self._paginate(f"/v2/{repo}/tags/list", self._scope(repo), "tags", page_size))

    def catalog(self, page_size: int | None = None) -> list[str]:
        return list(self._paginate("/v2/_catalog", "registry:catalog:*", "repositories", page_size))

    def delete_manifest(self, repo: str, reference: str) -> None:
        self.request("DELETE", f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:delete", ok=(202,))

    def delete_blob(self, repo: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:delete", ok=(202,))

    def push_image(self, repo: str, tag: str, config: dict[str, Any] | bytes, layers: list[bytes | Path],
                   layer_type: str = OCI_LAYER, annotations: dict[str, str] | None = None) -> str:
        """Push an OCI image (layers, config, manifest) and tag it; returns the manifest digest."""
        config_bytes = config if isinstance(config, bytes) else json.dumps(config).encode()
        descriptors = []
        for layer in layers:
            size = layer.stat().st_size if isinstance(layer, Path) else len(layer)
            descriptors.append({"mediaType": layer_type, "digest": self.push_blob(repo, layer), "size": size})
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.push_blob(repo, config_bytes),
                       "size": len(config_bytes)},
            "layers": descriptors}
        if annotations:
            manifest["annotations"] = annotations
        return self.push_manifest(repo, tag, manifest)
