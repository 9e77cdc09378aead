"""What the registry tells Harbor, and what Harbor may refuse: pushes (tag immutability, project quotas),
pulls, deletes; each recorded in the audit log (committed before the registry answers) and in the artifacts'
push and pull times."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import registry_error
from ..manifests import INDEX_TYPES
from ..storage import RegistryStorage
from .selectors import rule_applies
from .store import UNLIMITED, HarborStore, project_of

ANONYMOUS = "anonymous"
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
CHART_CONFIG = "application/vnd.cncf.helm.config.v1+json"


def resource(repo: str, digest: str, tag: str | None) -> str:
    """The audit log's resource: ``repo:tag`` or ``repo@sha256:…``."""
    return f"{repo}:{tag}" if tag else f"{repo}@{digest}"


def human_size(size: float) -> str:
    """Harbor's sizes in messages: ``9.6 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def artifact_size(body: bytes) -> int:
    """An artifact's size as Harbor counts it: the manifest plus what it references (config and layers, or the
    index's manifests)."""
    doc = json.loads(body)
    parts = [doc.get("config") or {}, *(doc.get("layers") or []), *(doc.get("manifests") or [])]
    return len(body) + sum(int(p.get("size") or 0) for p in parts if isinstance(p, dict))


def artifact_type(media_type: str, body: bytes) -> str:
    """Harbor's artifact ``type``: IMAGE, CHART or UNKNOWN (an OCI artifact of another kind)."""
    if media_type in INDEX_TYPES:
        return "IMAGE"
    config = (json.loads(body).get("config") or {}).get("mediaType")
    return "IMAGE" if config in IMAGE_CONFIGS else "CHART" if config == CHART_CONFIG else "UNKNOWN"


class RegistryEvents:
    """The registry's hooks into Harbor (``RegistryApi(events=...)``)."""

    def __init__(self, store: HarborStore, storage: RegistryStorage) -> None:
        self.store = store
        self.storage = storage
        self.on_push: list[Callable[[str, str], None]] = []  # (repo, digest) after a push: scan on push

    # -- quotas ----------------------------------------------------------------------
    def usage(self, project: str) -> int:
        """Storage a project uses: each distinct blob and manifest of its repositories, once."""
        prefix = f"{project}/"
        rows = self.storage.meta.db.query(
            "SELECT digest FROM links WHERE substr(repo, 1, ?)=? UNION SELECT digest FROM manifests "
            "WHERE substr(repo, 1, ?)=?", (len(prefix), prefix, len(prefix), prefix))
        total = 0
        for r in rows:
            path = self.storage.blobs.path(r["digest"])
            total += path.stat().st_size if path.exists() else 0
        return total

    def _in_project(self, project: str, digest: str) -> bool:
        prefix = f"{project}/"
        return bool(self.storage.meta.db.query(
            "SELECT 1 FROM links WHERE digest=? AND substr(repo, 1, ?)=? UNION ALL SELECT 1 FROM manifests "
            "WHERE digest=? AND substr(repo, 1, ?)=? LIMIT 1",
            (digest, len(prefix), prefix, digest, len(prefix), prefix)))

    def check_quota(self, repo: str, digest: str, size: int) -> None:
        """Refuse (403 DENIED, Harbor's message) a blob or manifest that would take the project over its limit."""
        project = self.store.project(project_of(repo))
        if project is None or project["storage_limit"] == UNLIMITED or self._in_project(project["name"], digest):
            return
        used, limit = self.usage(project["name"]), int(project["storage_limit"])
        if used + size > limit:
            raise registry_error("DENIED", message=(
                f"adding {human_size(size)} of storage resource, which when updated to current usage of "
                f"{human_size(used)} will exceed the configured upper limit of {human_size(limit)}."))

    # -- tag immutability ------------------------------------------------------------------
    def immutable(self, repo: str, tag: str) -> bool:
        project = self.store.project(project_of(repo))
        if project is None:
            return False
        name = repo.partition("/")[2]
        for row in self.store.immutable_rules(project["project_id"]):
            rule = {"disabled": bool(row["disabled"]), "tag_selectors": json.loads(row["tag_selectors"]),
                    "scope_selectors": json.loads(row["scope_selectors"])}
            if rule_applies(rule, name, tag):
                return True
        return False

    def _refuse_immutable(self, user: str, repo: str, digest: str, tag: str, operation: str) -> None:
        self.record(user, repo, digest, tag, operation, result=False)
        raise registry_error("PRECONDITION", message=(
            f"Failed to process request due to '{repo.partition('/')[2]}:{tag}' configured as immutable."))

    # -- the registry's hooks ------------------------------------------------------------
    def before_push(self, user: str, repo: str, digest: str, body: bytes, tags: list[str]) -> None:
        """Refuse a push that would move an immutable tag, or take the project over its quota."""
        for tag in tags:
            if self.store.tag(repo, tag) is not None and self.immutable(repo, tag):
                self._refuse_immutable(user, repo, digest, tag, "create")
        try:
            self.check_quota(repo, digest, len(body))
        except Exception:
            self.record(user, repo, digest, tags[0] if tags else None, "create", result=False)
            raise

    def pushed(self, user: str, repo: str, digest: str, media_type: str, body: bytes, tags: list[str]) -> None:
        project = self.store.project(project_of(repo))
        pid = project["project_id"] if project is not None else 0
        self.store.pushed(repo, pid, digest, media_type, artifact_size(body), tags)
        self.record(user, repo, digest, tags[0] if tags else None, "create")
        for listener in self.on_push:
            listener(repo, digest)

    def pulled(self, user: str, repo: str, digest: str, tag: str | None) -> None:
        self.store.pulled(repo, digest, tag)
        self.record(user, repo, digest, tag, "pull")

    def before_delete(self, user: str, repo: str, digest: str, tag: str | None) -> None:
        """An immutable tag (or an artifact that has one) cannot be deleted."""
        names = [tag] if tag else [t["name"] for t in self.store.tags(repo, digest)]
        for name in names:
            if self.immutable(repo, name):
                self._refuse_immutable(user, repo, digest, name, "delete")

    def deleted(self, user: str, repo: str, digest: str, tag: str | None) -> None:
        if tag:
            self.store.delete_tag(repo, tag)
        else:
            self.store.delete_artifact(repo, digest)
        self.record(user, repo, digest, tag, "delete", resource_type="tag" if tag else "artifact")

    def record(self, user: str, repo: str, digest: str, tag: str | None, operation: str, result: bool = True,
               resource_type: str = "artifact") -> None:
        project = self.store.project(project_of(repo))
        self.store.record(user or ANONYMOUS, resource(repo, digest, tag), resource_type, operation,
                          project["project_id"] if project is not None else 0, result=result,
                          description=_describe(operation, resource_type, resource(repo, digest, tag)))

    # -- repairs -------------------------------------------------------------------------
    def sync(self) -> None:
        """Artifacts the registry holds that Harbor's tables miss (pushed before Harbor kept them)."""
        for repo in self.storage.meta.repositories():
            project = self.store.project(project_of(repo))
            if project is None:
                continue
            for row in self.storage.meta.db.query("SELECT digest, media_type FROM manifests WHERE repo=?", (repo,)):
                if self.store.artifact(repo, row["digest"]) is not None:
                    continue
                tags = [r["tag"] for r in self.storage.meta.db.query(
                    "SELECT tag FROM tags WHERE repo=? AND digest=?", (repo, row["digest"]))]
                body = self.storage.blobs.read(row["digest"])
                self.store.pushed(repo, project["project_id"], row["digest"], row["media_type"],
                                  artifact_size(body), tags)


def _describe(operation: str, resource_type: str, what: str) -> str:
    verb = {"create": "push" if resource_type == "artifact" else "create"}.get(operation, operation)
    return f"{verb} {resource_type}: {what}"

