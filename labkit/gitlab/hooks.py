"""Project webhooks: their records and the push events GitLab POSTs (``X-Gitlab-Event: Push Hook``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from .git import Push
from .repos import BRANCH, ZERO, GitRepos
from .store import GitLabStore, now

EVENTS = ("push_events", "tag_push_events")  # what the simulator delivers
UNSUPPORTED = ("issues_events", "confidential_issues_events", "merge_requests_events", "note_events",
               "confidential_note_events", "job_events", "pipeline_events", "wiki_page_events", "deployment_events",
               "releases_events", "feature_flag_events", "emoji_events", "resource_access_token_events")
log = logging.getLogger("labkit.gitlab.hooks")


def push_payload(push: Push, old: str, new: str, ref: str, repos: GitRepos) -> dict[str, Any]:
    """GitLab's push (or tag push) event for one ref of a push."""
    project, user = push.project, push.caller.user or {}
    pwn = project["path_with_namespace"]
    commits = []
    if new != ZERO:
        for c in repos.log(pwn, new, limit=20):
            if c.id.decode() == old:
                break
            commits.append({"id": c.id.decode(), "message": c.message.decode(errors="replace"),
                            "title": c.message.decode(errors="replace").split("\n", 1)[0],
                            "url": f"{project['web_url']}/-/commit/{c.id.decode()}",
                            "author": {"name": c.author.decode().split(" <")[0],
                                       "email": c.author.decode().partition(" <")[2].rstrip(">")}})
    tag = not ref.startswith(BRANCH)
    return {
        "object_kind": "tag_push" if tag else "push", "event_name": "tag_push" if tag else "push",
        "before": old, "after": new, "ref": ref, "ref_protected": ref == f"{BRANCH}{project['default_branch']}",
        "checkout_sha": new if new != ZERO else None, "user_id": user.get("id"), "user_name": user.get("name"),
        "user_username": user.get("username"), "user_email": user.get("email"), "project_id": project["id"],
        "project": {"id": project["id"], "name": project["name"], "web_url": project["web_url"],
                    "git_http_url": project["http_url_to_repo"], "git_ssh_url": project["ssh_url_to_repo"],
                    "namespace": project["namespace"]["name"], "path_with_namespace": pwn,
                    "default_branch": project["default_branch"], "visibility_level":
                        {"private": 0, "internal": 10, "public": 20}[project["visibility"]],
                    "http_url": project["http_url_to_repo"], "homepage": project["web_url"]},
        "commits": commits, "total_commits_count": len(commits),
        "repository": {"name": project["name"], "url": project["http_url_to_repo"], "description":
                       project["description"], "homepage": project["web_url"],
                       "git_http_url": project["http_url_to_repo"], "git_ssh_url": project["ssh_url_to_repo"],
                       "visibility_level": {"private": 0, "internal": 10, "public": 20}[project["visibility"]]},
    }


class Webhooks:
    """Stores hooks and delivers push events to them, in the background."""

    def __init__(self, store: GitLabStore, repos: GitRepos) -> None:
        self.store = store
        self.repos = repos
        self.loop: asyncio.AbstractEventLoop | None = None

    def create(self, project_id: int, p: dict[str, Any]) -> dict[str, Any]:
        return self.store.add("hook", {"url": p["url"], "project_id": project_id, "created_at": now(),
                                       "push_events": _flag(p.get("push_events"), True),
                                       "tag_push_events": _flag(p.get("tag_push_events"), False),
                                       "push_events_branch_filter": p.get("push_events_branch_filter") or "",
                                       "enable_ssl_verification": _flag(p.get("enable_ssl_verification"), True),
                                       "name": p.get("name") or "", "description": p.get("description") or "",
                                       "alert_status": "executable", "_token": p.get("token") or "",
                                       **{k: False for k in UNSUPPORTED}})

    def of(self, project_id: int) -> list[dict[str, Any]]:
        return self.store.find("hook", project_id=project_id)

    @staticmethod
    def to_json(hook: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in hook.items() if not k.startswith("_")}

    def deliver(self, push: Push) -> None:
        """Queue the push's events for the project's hooks (called from the git thread)."""
        hooks = self.of(push.project["id"])
        if not hooks or self.loop is None:
            return
        for old, new, ref in push.updates:
            tag = not ref.startswith(BRANCH)
            wanted = [h for h in hooks if h["tag_push_events" if tag else "push_events"] and _branch_ok(h, ref)]
            if wanted:
                payload = push_payload(push, old, new, ref, self.repos)
                for hook in wanted:
                    asyncio.run_coroutine_threadsafe(self._post(hook, payload, "Tag Push Hook" if tag else
                                                                "Push Hook"), self.loop)

    async def _post(self, hook: dict[str, Any], payload: dict[str, Any], event: str) -> None:
        headers = {"X-Gitlab-Event": event, "X-Gitlab-Instance": "labkit", "User-Agent": "GitLab/labkit"}
        if hook.get("_token"):
            headers["X-Gitlab-Token"] = hook["_token"]
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), trust_env=False) as s, \
                    s.post(hook["url"], json=payload, headers=headers) as r:
                log.info("hook %s %s: HTTP %s", hook["id"], hook["url"], r.status)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("hook %s %s failed: %s", hook["id"], hook["url"], err)


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


def _branch_ok(hook: dict[str, Any], ref: str) -> bool:
    import fnmatch

    pattern = hook.get("push_events_branch_filter")
    return not pattern or not ref.startswith(BRANCH) or fnmatch.fnmatchcase(ref.removeprefix(BRANCH), pattern)
