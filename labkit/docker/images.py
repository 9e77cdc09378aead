"""``/images/json``, ``/images/{name}/json``, ``/history``, ``/tag`` and ``DELETE /images/{name}``: the local
image store in the Engine API's shapes."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from aiohttp import web

from ..core.http import json_response
from .daemon import Daemon
from .engine import add_route, bad_request, conflict, flag, json_param, not_found
from .store import ImageRecord, NotFound, normalize


def created_seconds(created: str) -> int:
    """An RFC 3339 timestamp as Unix seconds (``Created`` in lists and history)."""
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def find(daemon: Daemon, name: str) -> ImageRecord:
    try:
        return daemon.store.find(name)
    except NotFound:
        raise not_found(f"No such image: {normalize(name) if '@' not in name else name}") from None


class ImageRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.store = daemon.store

    def install(self, app: web.Application) -> None:
        add_route(app, "GET", "/images/json", self.list)
        add_route(app, "GET", "/images/{name:.+}/json", self.inspect)
        add_route(app, "GET", "/images/{name:.+}/history", self.history)
        add_route(app, "POST", "/images/{name:.+}/tag", self.tag)
        add_route(app, "DELETE", "/images/{name:.+}", self.delete)

    def summary(self, image: ImageRecord) -> dict[str, Any]:
        config = self.store.config(image)
        return {"Id": image.id, "ParentId": image.parent, "RepoTags": list(image.repo_tags),
                "RepoDigests": list(image.repo_digests), "Created": created_seconds(config.get("created", "")),
                "Size": self.store.size(image), "SharedSize": -1,
                "Labels": (config.get("config") or {}).get("Labels") or {}, "Containers": -1}

    async def list(self, request: web.Request) -> web.Response:
        filters = json_param(request, "filters") or {}
        if request.query.get("filter"):  # API < 1.25
            filters.setdefault("reference", {})[request.query["filter"]] = True
        out = []
        for image in list(self.store.images.values()):
            row = self.summary(image)  # no intermediate images here: ``all`` lists the same
            if self._matches(row, filters):
                out.append(row)
        out.sort(key=lambda r: (-r["Created"], r["RepoTags"]))
        return json_response(out)

    @staticmethod
    def _values(value: Any) -> list[str]:
        return [k for k, v in value.items() if v] if isinstance(value, dict) else list(value or [])

    def _matches(self, row: dict[str, Any], filters: dict[str, Any]) -> bool:
        for name, value in filters.items():
            wanted = self._values(value)
            if name == "reference":
                refs = list(row["RepoTags"]) + [t.rpartition(":")[0] for t in row["RepoTags"]]
                if not any(fnmatch.fnmatchcase(r, w) for r in refs for w in wanted):
                    return False
            elif name == "dangling":
                if ("true" in wanted) != (not row["RepoTags"]):
                    return False
            elif name == "label":
                for w in wanted:
                    key, sep, val = w.partition("=")
                    if key not in row["Labels"] or (sep and row["Labels"][key] != val):
                        return False
            else:
                raise bad_request(f"invalid filter '{name}'")
        return True

    async def inspect(self, request: web.Request) -> web.Response:
        image = find(self.daemon, request.match_info["name"])
        config = self.store.config(image)
        return json_response({
            "Id": image.id, "RepoTags": image.repo_tags, "RepoDigests": image.repo_digests, "Parent": image.parent,
            "Comment": "", "Created": config.get("created", ""), "DockerVersion": "",
            "Author": config.get("author", ""),
            "Config": config.get("config") or {}, "Architecture": config.get("architecture", ""),
            "Os": config.get("os", ""), "Size": self.store.size(image),
            "GraphDriver": {"Name": "labkit", "Data": {"Root": str(self.daemon.root)}},
            "RootFS": {"Type": "layers", "Layers": (config.get("rootfs") or {}).get("diff_ids") or []},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}})

    async def history(self, request: web.Request) -> web.Response:
        """Newest first; the top entry carries the image ID and tags, the ones below ``<missing>`` (a built
        image's intermediate steps are not images of their own), as ``docker history`` shows a pulled image."""
        image = find(self.daemon, request.match_info["name"])
        config = self.store.config(image)
        layers = iter(self.store.manifest(image).get("layers") or [])
        rows = []
        for entry in config.get("history") or []:
            size = 0 if entry.get("empty_layer") else self.store.layer_size(next(layers)["digest"])
            rows.append({"Id": "<missing>", "Created": created_seconds(entry.get("created", "")),
                         "CreatedBy": entry.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": entry.get("comment", "")})
        rows.reverse()
        if rows:
            rows[0].update(Id=image.id, Tags=image.repo_tags or None)
        return json_response(rows)

    async def tag(self, request: web.Request) -> web.Response:
        image = find(self.daemon, request.match_info["name"])
        repo, tag = request.query.get("repo", ""), request.query.get("tag") or "latest"
        if not repo or repo != repo.lower() or "@" in repo:
            raise bad_request(f"invalid reference format: repository name ({repo}) must be lowercase"
                              if repo else "repository name must have at least one component")
        self.store.tag(image, f"{repo}:{tag}")
        return web.Response(status=201)

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        image = find(self.daemon, name)
        force = flag(request, "force")
        by_ref = normalize(name) in image.repo_tags or name in image.repo_digests
        users = self.daemon.containers.using(image.id) if self.daemon.containers else []
        out: list[dict[str, str]] = []
        if by_ref and (len(image.repo_tags) > 1 or (force and users)):
            self.store.untag(image, name)  # other tags remain: only this one goes
            return json_response([{"Untagged": normalize(name)}])
        if users and not force:
            short = image.short
            state = "running" if self.daemon.containers and self.daemon.containers.running(users[0]) else "stopped"
            if by_ref:
                raise conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                               f"container {users[0][:12]} is using its referenced image {short}")
            raise conflict(f"conflict: unable to delete {short} (must be forced) - image is being used by "
                           f"{state} container {users[0][:12]}")
        if not by_ref and len(image.repo_tags) > 1 and not force:
            raise conflict(f"conflict: unable to delete {image.short} (must be forced) - image is referenced in "
                           "multiple repositories")
        out += [{"Untagged": t} for t in image.repo_tags] + [{"Untagged": d} for d in image.repo_digests]
        self.store.delete(image)
        out.append({"Deleted": image.id})
        return json_response(out)
