"""``/api/webhook``: a Git server's push event refreshes at once every Application whose source is the pushed
repository and revision, instead of waiting for the next reconciliation (Argo CD's webhook handler). GitLab's push
and tag push hooks are understood; the ``X-Gitlab-Token`` must equal ``webhook.gitlab.secret`` of the
``argocd-secret`` Secret when that is set. Answers are plain text, as Argo CD's."""

from __future__ import annotations

import base64
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from .context import REFRESH, REFRESH_TIMESTAMP, ApiContext, sources
from .kubeapi import KubeError, apps_path, core_path
from .urls import web_url_matches

PATH = "/api/webhook"
SECRET = "argocd-secret"
GITLAB_SECRET = "webhook.gitlab.secret"
GITLAB_EVENTS = ("Push Hook", "Tag Push Hook")
MAX_PAYLOAD = 50 * 1024 * 1024  # webhook.maxPayloadSizeMB's default
log = logging.getLogger("labkit.argocd")


def parse_revision(ref: str) -> str:
    """``refs/heads/main`` → ``main`` (``ParseRevision``)."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def revision_changed(source: dict[str, Any], revision: str, touched_head: bool) -> bool:
    """The pushed ``revision`` is what ``source`` follows (``sourceRevisionHasChanged``, without semver ranges)."""
    target = parse_revision(source.get("targetRevision") or "")
    if target in ("", "HEAD"):
        return touched_head
    return revision == target


class Webhook:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", PATH, self.receive)

    async def gitlab_secret(self) -> str:
        try:
            secret = await self.ctx.kube.get(core_path(self.ctx.namespace, "secrets", SECRET))
        except KubeError as err:
            if err.status == 404:
                return ""
            raise
        value = (secret.get("data") or {}).get(GITLAB_SECRET, "")
        return base64.b64decode(value).decode() if value else ""

    async def receive(self, request: web.Request) -> web.Response:
        event = request.headers.get("X-Gitlab-Event", "")
        if event not in GITLAB_EVENTS:
            raise ApiError(400, "BadRequest", "Unknown webhook event")
        if request.method != "POST":  # a parser claimed it, then refused the method
            raise ApiError(405, "MethodNotAllowed", "Webhook processing failed")
        expected = await self.gitlab_secret()
        if expected and not hmac.compare_digest(expected.encode(), request.headers.get("X-Gitlab-Token", "").encode()):
            log.info("Webhook processing failed: gitlab token verification failed")
            raise ApiError(400, "BadRequest", "Webhook processing failed")
        raw = await request.content.read(MAX_PAYLOAD + 1)
        try:
            payload = json.loads(raw)
            if len(raw) > MAX_PAYLOAD or not isinstance(payload, dict):
                raise ValueError("payload too large or not an object")
        except ValueError:
            raise ApiError(400, "BadRequest", "Webhook processing failed: payload must be valid JSON under "
                           f"{MAX_PAYLOAD // 1024 // 1024} MB") from None
        project = payload.get("project") or {}
        web_url = project.get("web_url", "")
        revision = parse_revision(payload.get("ref", ""))
        touched_head = project.get("default_branch") == revision
        await self.refresh_matching(web_url, revision, touched_head)
        return web.Response(status=200)

    async def refresh_matching(self, web_url: str, revision: str, touched_head: bool) -> list[str]:
        """Ask for a normal refresh of each Application that follows the pushed repository and revision."""
        from .context import now

        refreshed = []
        apps = (await self.ctx.kube.get(apps_path(self.ctx.namespace))).get("items", [])
        for app in apps:
            if any(web_url_matches(web_url, s.get("repoURL", "")) and revision_changed(s, revision, touched_head)
                   for s in sources(app)):
                name = app["metadata"]["name"]
                await self.ctx.kube.merge_patch(apps_path(self.ctx.namespace, name), {"metadata": {"annotations": {
                    REFRESH: "normal", REFRESH_TIMESTAMP: now()}}})
                log.info("Requested app '%s' refresh", name)
                refreshed.append(name)
        return refreshed
