"""``POST /images/{name}/push``, ``POST /images/create`` (pull) and ``POST /auth``: the daemon's side of a
registry, over the OCI distribution API with labkit's ``RegistryClient`` (which does the Bearer token dance the
registry's 401 asks for). Credentials come as Docker sends them: ``X-Registry-Auth``, base64url JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from ..core.http import json_response
from ..images.client import RegistryClient, RegistryError
from ..images.pull import parse_ref
from .daemon import Daemon
from .engine import Emit, StreamFailed, add_route, bad_request, error, not_found, progress_stream, unsupported
from .images import find
from .store import ImageRecord, normalize
from .system import host_arch

_INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


def registry_auth(request: web.Request) -> dict[str, Any]:
    """The ``X-Registry-Auth`` header's credentials (``{}`` when absent or empty)."""
    raw = request.headers.get("X-Registry-Auth", "").strip()
    if not raw:
        return {}
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) or {}
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"invalid X-Registry-Auth header: {err}") from err


_STATUS_WORDS = {401: "unauthorized: authentication required",
                 403: "denied: requested access to the resource is denied", 404: "not found"}


def reported(err: RegistryError) -> str:
    """A registry error as the daemon words it: ``<code>: <message>`` from the body (``unauthorized: authentication
    required``), else what its status means (a HEAD answer has no body)."""
    if err.code:
        return f"{err.code.lower()}: {err.message}"
    return _STATUS_WORDS.get(err.status, f"received unexpected HTTP status: {err.status}")


def _short(digest: str) -> str:
    return digest.split(":", 1)[1][:12]


class DistributionRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.store = daemon.store

    def install(self, app: web.Application) -> None:
        add_route(app, "POST", "/images/{name:.+}/push", self.push)
        add_route(app, "POST", "/images/create", self.create)
        add_route(app, "POST", "/auth", self.auth)

    def _client(self, host: str, auth: dict[str, Any]) -> RegistryClient:
        try:
            url = self.daemon.registry_url(host)
        except LookupError as err:
            raise unsupported(str(err)) from None
        if auth.get("identitytoken") or auth.get("registrytoken"):
            raise unsupported("identity/registry tokens in X-Registry-Auth (send username and password)")
        user = auth.get("username") or None
        return RegistryClient(url, user, auth.get("password", "") if user else None, timeout=60)

    # -- push ----------------------------------------------------------------------------------------------
    async def push(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        tag = request.query.get("tag") or ""
        repo = normalize(name + (":x" if ":" not in name.rsplit("/", 1)[-1] else "")).rpartition(":")[0]
        if tag:
            pairs = [(tag, find(self.daemon, f"{repo}:{tag}"))]
        else:  # no tag: every tag of the repository, as ``docker push --all-tags``
            pairs = sorted(self.store.tagged(repo), key=lambda p: p[0])
            if not pairs:
                raise not_found(f"An image does not exist locally with the tag: {repo}")
        host, path, _ = parse_ref(f"{repo}:x")
        if host == "docker.io":
            raise unsupported("pushing to Docker Hub")
        client = self._client(host, registry_auth(request))

        def work(emit: Emit) -> None:
            try:
                emit({"status": f"The push refers to repository [{repo}]"})
                for t, image in pairs:
                    self._push_one(client, path, repo, t, image, emit)
            finally:
                client.close()

        return await progress_stream(request, self.daemon.executor, work)

    def _push_one(self, client: RegistryClient, path: str, repo: str, tag: str, image: ImageRecord,
                  emit: Emit) -> None:
        manifest_bytes = self.store.blobs.get(image.manifest)
        manifest = json.loads(manifest_bytes)
        try:
            for layer in reversed(manifest.get("layers") or []):
                emit({"status": "Preparing", "progressDetail": {}, "id": _short(layer["digest"])})
            for layer in reversed(manifest.get("layers") or []):
                digest, short = layer["digest"], _short(layer["digest"])
                if client.blob_exists(path, digest):
                    emit({"status": "Layer already exists", "progressDetail": {}, "id": short})
                    continue
                emit({"status": "Pushing", "progressDetail": {"current": 0, "total": layer["size"]}, "id": short})
                client.push_blob(path, self.store.blobs.path(digest), digest, check=False)
                emit({"status": "Pushed", "progressDetail": {}, "id": short})
            client.push_blob(path, self.store.blobs.path(image.id), image.id)
            digest = client.push_manifest(path, tag, manifest_bytes, manifest.get("mediaType"))
        except RegistryError as err:
            raise StreamFailed(reported(err)) from err
        except OSError as err:
            raise StreamFailed(f"failed to reach the registry: {err}") from err
        self.store.add_digest(image, f"{repo}@{digest}")
        emit({"status": f"{tag}: digest: {digest} size: {len(manifest_bytes)}"})
        emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest_bytes)}})

    # -- pull ----------------------------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.StreamResponse:
        """Pull ``fromImage`` at ``tag`` (a tag or digest); with neither a tag nor one in ``fromImage``, every tag
        of the repository, as the Engine API says. A missing image or refused credentials are the answer's status;
        what fails once the layers stream is an error line."""
        q = request.query
        if q.get("fromSrc"):
            raise unsupported("importing an image from a tarball or URL (fromSrc)")
        image = q.get("fromImage", "")
        if not image:
            raise bad_request("fromImage is required")
        tag = q.get("tag") or ""
        if q.get("platform"):
            raise unsupported(f"pulling for a given platform ({q['platform']})")
        every = not tag and "@" not in image and ":" not in image.rsplit("/", 1)[-1]
        ref = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}" if tag else normalize(image)
        host, path, reference = parse_ref(ref)
        if host == "docker.io":
            raise unsupported(f"pulling {normalize(ref)} from Docker Hub (the lab is offline; build from a "
                              "python base or pull from the lab registry)")
        client = self._client(host, registry_auth(request))
        repo = normalize(ref).split("@")[0].rpartition(":")[0] if "@" not in ref else ref.split("@")[0]
        shown = normalize(ref)
        try:
            refs = sorted(await self._in_thread(client.tags, path)) if every else [reference]
            if not refs:
                raise RegistryError("GET", f"/v2/{path}/tags/list", 404, b"")
            first = await self._in_thread(self._manifest, client, path, refs[0])
        except RegistryError as err:
            client.close()
            if err.status == 404:
                raise not_found(f"manifest for {shown} not found: manifest unknown: {err.message or 'manifest unknown'}"
                                ) from None
            if err.status in (401, 403):
                raise not_found(f"pull access denied for {repo}, repository does not exist or may require "
                                f"'docker login': {reported(err)}") from None
            raise error(500, reported(err)) from None
        except OSError as err:
            client.close()
            raise error(500, f"Get \"{self.daemon.registry_url(host)}/v2/\": {err}") from None

        def work(emit: Emit) -> None:
            try:
                for i, one in enumerate(refs):
                    try:
                        body, digest = first if i == 0 else self._manifest(client, path, one)
                    except RegistryError as err:
                        raise StreamFailed(reported(err)) from err
                    name = shown if not every else f"{repo}:{one}"
                    self._pull(client, path, name, one, body, digest, emit)
            finally:
                client.close()

        return await progress_stream(request, self.daemon.executor, work)

    @staticmethod
    def _manifest(client: RegistryClient, path: str, reference: str) -> tuple[bytes, str]:
        """(image manifest, its digest) for a tag or digest; of an index, the host platform's image."""
        body, media_type, digest = client.manifest(path, reference)
        if media_type in _INDEXES:
            entries = json.loads(body)["manifests"]
            pick = next((m for m in entries if (m.get("platform") or {}).get("architecture") == host_arch()),
                        entries[0])
            body, _, digest = client.manifest(path, pick["digest"])
        return body, digest

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self.daemon.executor, fn, *args)

    def _pull(self, client: RegistryClient, path: str, shown: str, tag: str, body: bytes, digest: str,
              emit: Emit) -> None:
        manifest = json.loads(body)
        emit({"status": f"Pulling from {path}", "id": tag})
        try:
            for layer in manifest.get("layers") or []:
                d, short = layer["digest"], _short(layer["digest"])
                if self.store.blobs.has(d):
                    emit({"status": "Already exists", "progressDetail": {}, "id": short})
                    continue
                emit({"status": "Pulling fs layer", "progressDetail": {}, "id": short})
                self.store.blobs.put(client.pull_blob(path, d))
                emit({"status": "Pull complete", "progressDetail": {}, "id": short})
            config = manifest["config"]["digest"]
            if not self.store.blobs.has(config):
                self.store.blobs.put(client.pull_blob(path, config))
        except RegistryError as err:
            raise StreamFailed(reported(err)) from err
        except (OSError, ValueError) as err:
            raise StreamFailed(str(err)) from err
        known = self.store.blobs.has(digest)
        self.store.blobs.put(body)
        repo = shown.split("@")[0].rpartition(":")[0] if "@" not in shown else shown.split("@")[0]
        before = {i.id: list(i.repo_tags) for i in self.store.images.values()}
        tags = () if "@" in shown else (shown,)
        image = self.store.add(digest, tags, repo_digest=f"{repo}@{digest}")
        emit({"status": f"Digest: {digest}"})
        fresh = not known or before.get(image.id) != image.repo_tags
        emit({"status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {shown}"})

    # -- login ---------------------------------------------------------------------------------------------
    async def auth(self, request: web.Request) -> web.Response:
        """Check credentials against the registry (its token service, when it answers with a Bearer challenge)."""
        try:
            body = await request.json()
        except ValueError as err:
            raise bad_request(f"invalid JSON: {err}") from err
        server = (body.get("serveraddress") or "").removeprefix("https://").removeprefix("http://").rstrip("/")
        server = server.removesuffix("/v2").removesuffix("/v1")
        if not server or server in ("index.docker.io/v1", "docker.io", "index.docker.io"):
            raise unsupported("logging in to Docker Hub")
        client = self._client(server, {"username": body.get("username"), "password": body.get("password", "")})
        try:
            ok = await self._in_thread(client.ping)
        except (RegistryError, OSError) as err:
            raise error(500, f"Get \"{self.daemon.registry_url(server)}/v2/\": {err}") from None
        finally:
            client.close()
        if not ok:
            raise error(401, f"login attempt to {self.daemon.registry_url(server)}/v2/ failed with status: "
                             "401 Unauthorized")
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})

