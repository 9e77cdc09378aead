"""``/api/v1/repositories``: repositories Argo CD may read, kept as Secrets labelled
``argocd.argoproj.io/secret-type: repository`` (the declarative form Argo CD reads too), each created only after a
connection check (``git ls-remote`` with its credentials, as the repo server's TestRepository)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from ..sources import Credentials, GitCache, SourceError
from .context import ApiContext, answer, body, kube_error, now
from .errors import grpc_error, not_supported
from .kubeapi import KubeError, core_path
from .urls import same_repo

PREFIX = "/api/v1/repositories"
SECRET_TYPE = "argocd.argoproj.io/secret-type"
FIELDS = ("url", "type", "name", "project", "username", "password", "insecure")


def secret_name(url: str, project: str = "") -> str:
    """``repo-<hash>``, as Argo CD names the Secrets it writes for repositories."""
    return "repo-" + str(int(hashlib.sha256(f"{url}{project}".encode()).hexdigest()[:8], 16))


def _decode(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**data, **(secret.get("stringData") or {})}


async def ls_remote(url: str, username: str = "", password: str = "") -> str:
    """"" when ``git ls-remote`` reaches the repository with these credentials (the controller's git client, which
    sends them as a header, never in the URL), else git's complaint."""
    cache = GitCache(Path(tempfile.gettempdir()), {url: Credentials(username, password)})
    try:
        await cache.resolve(url, "HEAD", fresh=True)
    except SourceError as err:
        text = str(err).replace(password, "******") if password else str(err)
        return text.splitlines()[-1] if text else "git ls-remote failed"
    return ""


class Repositories:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def install(self, app: web.Application) -> None:
        app.router.add_get(PREFIX, self.list)
        app.router.add_post(PREFIX, self.create)

    async def secrets(self) -> list[dict[str, Any]]:
        listed = await self.ctx.kube.get(core_path(self.ctx.namespace, "secrets"),
                                         labelSelector=f"{SECRET_TYPE}=repository")
        return listed.get("items", [])

    async def list(self, request: web.Request) -> web.Response:
        repos = [_decode(s) for s in await self.secrets()]
        checks = await asyncio.gather(*(ls_remote(r.get("url", ""), r.get("username", ""), r.get("password", ""))
                                        for r in repos))
        items = [_public(r, problem) for r, problem in zip(repos, checks, strict=True)]
        items.sort(key=lambda r: (r.get("project", ""), r["repo"]))
        return answer({"metadata": {}, "items": items})

    async def create(self, request: web.Request) -> web.Response:
        req = await body(request)
        url = req.get("repo", "")
        if not url:
            raise grpc_error("InvalidArgument", "missing payload in request")
        kind = req.get("type") or "git"
        if kind != "git":
            raise not_supported(f"repository type {kind!r} (only git)")
        problem = await ls_remote(url, req.get("username", ""), req.get("password", ""))
        if problem:
            raise grpc_error("Unknown", f"error testing repository connectivity: {problem}")
        fields = {"url": url, "type": kind, "name": req.get("name", ""), "project": req.get("project", ""),
                  "username": req.get("username", ""), "password": req.get("password", ""),
                  "insecure": "true" if req.get("insecure") else ""}
        fields = {k: v for k, v in fields.items() if v}
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": secret_name(url, fields.get("project", "")), "namespace": self.ctx.namespace,
                               "labels": {SECRET_TYPE: "repository"},
                               "annotations": {"managed-by": "argocd.argoproj.io"}},
                  "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()}}
        existing = next((s for s in await self.secrets() if same_repo(_decode(s).get("url", ""), url)
                         and _decode(s).get("project", "") == fields.get("project", "")), None)
        try:
            if existing is None:
                await self.ctx.kube.request("POST", core_path(self.ctx.namespace, "secrets"), secret)
            elif _decode(existing) != fields:
                if request.query.get("upsert") != "true":
                    raise grpc_error("InvalidArgument",
                                     "existing repository spec is different; use upsert flag to force update")
                existing["data"] = secret["data"]
                existing.pop("stringData", None)
                await self.ctx.kube.request(
                    "PUT", core_path(self.ctx.namespace, "secrets", existing["metadata"]["name"]), existing)
        except KubeError as err:
            raise kube_error(err) from None
        return answer(_public(fields, ""))


def _public(repo: dict[str, str], problem: str) -> dict[str, Any]:
    """A repository as the API shows it: no password; its connection state."""
    state = {"status": "Failed" if problem else "Successful", "message": problem, "attemptedAt": now()}
    item: dict[str, Any] = {"repo": repo.get("url", ""), "type": repo.get("type") or "git",
                            "connectionState": state}
    for key in ("name", "project", "username"):
        if repo.get(key):
            item[key] = repo[key]
    if repo.get("insecure") == "true":
        item["insecure"] = True
    return item
