"""``/projects/{p}/repositories`` and their artifacts, tags and attached labels; ``/repositories``.

A repository is named without its project in the path, and a ``/`` in that name is double-encoded
(``a%252Fb``) as Harbor requires."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from aiohttp import web

from ...core.http import json_response
from ..blobs import InvalidDigest, parse_digest
from ..manifests import INDEX_TYPES, TAG
from . import sbom, shapes
from .errors import harbor_error, not_found
from .events import artifact_type
from .policy import api_may
from .query import paged, query_filter, sort_rows
from .router import PREFIX, Call, Router


def _repo(call: Call, action: str = "read", resource: str = "repository") -> tuple[sqlite3.Row, sqlite3.Row]:
    project = call.project()
    call.require(project, resource, action)
    name = f"{project['name']}/{call.params['repo']}"
    repo = call.harbor.store.one(
        "SELECT r.*, (SELECT COUNT(*) FROM artifacts a WHERE a.repo=r.name) AS artifact_count "
        "FROM repositories r WHERE name=?", (name,))
    if repo is None:
        raise not_found(f"repository {name}")
    return project, repo


def _artifact(call: Call, repo: sqlite3.Row) -> sqlite3.Row:
    ref = call.params["ref"]
    store = call.harbor.store
    if ":" in ref:
        try:
            parse_digest(ref)
        except InvalidDigest:
            raise harbor_error("BAD_REQUEST", f"invalid reference {ref!r}") from None
        row = store.artifact(repo["name"], ref)
    else:
        tag = store.tag(repo["name"], ref)
        row = store.artifact(repo["name"], tag["digest"]) if tag is not None else None
    if row is None:
        raise not_found(f"artifact {repo['name']}:{ref}")
    return row


# -- repositories ------------------------------------------------------------------------------
_REPO_FIELDS = {"name": "name", "project_id": "project_id", "id": "id"}
_REPO_SORT = {"name": "name", "creation_time": "creation_time", "update_time": "update_time",
              "pull_count": "pull_count", "artifact_count": "artifact_count"}


def _repo_list(call: Call, rows: list[sqlite3.Row]) -> web.Response:
    items = [dict(r) for r in rows]
    items = [r for r in items if query_filter(call.request, _REPO_FIELDS)(r)]
    items = sort_rows(call.request, items, _REPO_SORT)
    return paged(call.request, items, lambda r: shapes.repository(r))  # type: ignore[arg-type]


async def list_repositories(call: Call) -> web.Response:
    project = call.project()
    call.require(project, "repository", "list")
    return _repo_list(call, call.harbor.store.repositories(project["project_id"]))


async def all_repositories(call: Call) -> web.Response:
    """``/repositories``: every repository the caller may list."""
    call.signed_in()
    rows = []
    for project in call.harbor.store.projects():
        if call.harbor.policy.is_admin(call.user) or _may(call, project, "repository", "list"):
            rows += call.harbor.store.repositories(project["project_id"])
    return _repo_list(call, rows)


def _may(call: Call, project: sqlite3.Row, resource: str, action: str) -> bool:
    return api_may(call.harbor.policy, call.user, dict(project), resource, action)


async def get_repository(call: Call) -> web.Response:
    _, repo = _repo(call)
    return json_response(shapes.repository(repo))


async def update_repository(call: Call) -> web.Response:
    _, repo = _repo(call, "update")
    description = (await call.json()).get("description", "")
    call.harbor.store.db.execute("UPDATE repositories SET description=? WHERE id=?", (str(description), repo["id"]))
    return web.Response()


async def delete_repository(call: Call) -> web.Response:
    project, repo = _repo(call, "delete")
    harbor = call.harbor
    artifacts = harbor.store.artifacts(repo["name"])
    for a in artifacts:  # refused as a whole if any tag is immutable
        harbor.events.before_delete(call.user, repo["name"], a["digest"], None)
    for a in artifacts:
        harbor.storage.delete_manifest(repo["name"], a["digest"])
    for digest in [r["digest"] for r in harbor.storage.meta.db.query("SELECT digest FROM links WHERE repo=?",
                                                                      (repo["name"],))]:
        harbor.storage.delete_blob(repo["name"], digest)
    harbor.store.delete_repository(repo["name"])
    harbor.store.record(call.user, repo["name"], "repository", "delete", project["project_id"],
                        description=f"delete repository: {repo['name']}")
    return web.Response()


# -- artifacts -----------------------------------------------------------------------------------
def _flag(call: Call, name: str, default: bool) -> bool:
    raw = call.request.query.get(name)
    return default if raw is None else raw.lower() == "true"


def _shape(call: Call, project: sqlite3.Row, repo: sqlite3.Row, row: sqlite3.Row) -> dict[str, Any]:
    harbor = call.harbor
    body = harbor.storage.blobs.read(row["digest"]) if harbor.storage.blobs.exists(row["digest"]) else b"{}"
    doc = json.loads(body)
    config = doc.get("config") or {}
    out: dict[str, Any] = {
        "id": row["id"], "type": artifact_type(row["media_type"], body),
        "media_type": config.get("mediaType", row["media_type"]), "manifest_media_type": row["media_type"],
        "artifact_type": doc.get("artifactType") or config.get("mediaType", row["media_type"]),
        "project_id": project["project_id"], "repository_id": repo["id"], "repository_name": repo["name"],
        "digest": row["digest"], "size": row["size"], "icon": "", "push_time": shapes.iso(row["push_time"]),
        "pull_time": shapes.iso(row["pull_time"]), "extra_attrs": _extra(harbor, config),
        "annotations": doc.get("annotations") or {}, "references": _references(repo, doc, row),
        "tags": None, "labels": None, "accessories": None,
        "addition_links": {}}
    if out["extra_attrs"]:  # an image: its config holds the build history
        out["addition_links"]["build_history"] = {
            "href": f"{_base(project, repo)}/artifacts/{row['digest']}/additions/build_history", "absolute": False}
    if _flag(call, "with_tag", True):
        out["tags"] = [shapes.tag(t, repo["id"], row["id"], harbor.events.immutable(repo["name"], t["name"]))
                       for t in harbor.store.tags(repo["name"], row["digest"])] or None
    if _flag(call, "with_label", False):
        out["labels"] = [shapes.label(r) for r in harbor.store.artifact_labels(repo["name"], row["digest"])] or None
    if _flag(call, "with_scan_overview", False) and harbor.scan_overview is not None:
        accept = call.request.headers.get("X-Accept-Vulnerabilities",
                                          "application/vnd.security.vulnerability.report; version=1.1")
        overview = harbor.scan_overview(repo["name"], row["digest"], [a.strip() for a in accept.split(",")])
        if overview:
            out["scan_overview"] = overview
    if _flag(call, "with_sbom_overview", False):
        sbom_overview = harbor.scans.sbom_overview(repo["name"], row["digest"])
        if sbom_overview:
            out["sbom_overview"] = sbom_overview
    if _flag(call, "with_accessory", False):
        out["accessories"] = sbom.accessories(harbor.storage, harbor.store, repo["name"], row["digest"]) or None
    return out


def _base(project: sqlite3.Row, repo: sqlite3.Row) -> str:
    name = repo["name"].partition("/")[2].replace("/", "%252F")
    return f"{PREFIX}/projects/{project['name']}/repositories/{name}"


def _extra(harbor: Any, config: dict[str, Any]) -> dict[str, Any]:
    """An image's ``extra_attrs``: architecture, os, created, author and config from its config blob."""
    digest = config.get("digest")
    if not digest or config.get("mediaType") not in ("application/vnd.oci.image.config.v1+json",
                                                     "application/vnd.docker.container.image.v1+json"):
        return {}
    if not harbor.storage.blobs.exists(digest):
        return {}
    try:
        image = json.loads(harbor.storage.blobs.read(digest))
    except ValueError:
        return {}
    return {k: image.get(k) for k in ("architecture", "os", "created", "author", "config") if k in image}


def _references(repo: sqlite3.Row, doc: dict[str, Any], row: sqlite3.Row) -> list[dict[str, Any]] | None:
    if row["media_type"] not in INDEX_TYPES:
        return None
    return [{"parent_id": row["id"], "child_digest": m.get("digest"), "platform": m.get("platform"),
             "annotations": m.get("annotations"), "urls": m.get("urls")} for m in doc.get("manifests") or []]


async def list_artifacts(call: Call) -> web.Response:
    project, repo = _repo(call, "list", "artifact")
    store = call.harbor.store
    rows = []
    for a in store.artifacts(repo["name"]):
        manifest = call.harbor.storage.meta.manifest(repo["name"], a["digest"])
        if manifest is not None and manifest.subject:  # an accessory: listed under its subject's accessories
            continue
        item = dict(a)
        item["tags"] = " ".join(t["name"] for t in store.tags(repo["name"], a["digest"]))
        item["labels"] = " ".join(str(label["id"]) for label in store.artifact_labels(repo["name"], a["digest"]))
        item["type"] = artifact_type(a["media_type"], call.harbor.storage.blobs.read(a["digest"])) \
            if call.harbor.storage.blobs.exists(a["digest"]) else "UNKNOWN"
        rows.append(item)
    q = query_filter(call.request, {"digest": "digest", "tags": "tags", "type": "type", "media_type": "media_type",
                                    "labels": "labels", "push_time": "push_time", "pull_time": "pull_time"})
    items = [r for r in rows if q(r)]
    items = sort_rows(call.request, items, {"push_time": "push_time", "pull_time": "pull_time", "size": "size",
                                            "digest": "digest"})
    return paged(call.request, items, lambda r: _shape(call, project, repo, store.artifact(repo["name"],
                                                                                           r["digest"])))


async def get_artifact(call: Call) -> web.Response:
    project, repo = _repo(call, "read", "artifact")
    return json_response(_shape(call, project, repo, _artifact(call, repo)))


async def delete_artifact(call: Call) -> web.Response:
    _, repo = _repo(call, "delete", "artifact")
    row = _artifact(call, repo)
    call.harbor.delete_artifact(call.user, repo["name"], row["digest"])
    return web.Response()


async def build_history(call: Call) -> web.Response:
    """An image's build history: its config's ``history`` (one entry per Dockerfile step)."""
    _, repo = _repo(call, "read", "artifact")
    row = _artifact(call, repo)
    config = (json.loads(call.harbor.storage.blobs.read(row["digest"])).get("config") or {})
    image = _extra(call.harbor, config)
    if not image:
        raise not_found(f"build history of {repo['name']}@{row['digest']} (not an image)")
    history = json.loads(call.harbor.storage.blobs.read(config["digest"])).get("history") or []
    return json_response(history)


# -- tags -------------------------------------------------------------------------------------------
async def list_tags(call: Call) -> web.Response:
    _, repo = _repo(call, "list", "tag")
    row = _artifact(call, repo)
    tags = call.harbor.store.tags(repo["name"], row["digest"])
    items = [dict(t) for t in tags]
    items = [t for t in items if query_filter(call.request, {"name": "name"})(t)]
    items = sort_rows(call.request, items, {"name": "name", "push_time": "push_time", "pull_time": "pull_time"})
    return paged(call.request, items, lambda t: shapes.tag(
        call.harbor.store.tag(repo["name"], t["name"]), repo["id"], row["id"],  # type: ignore[arg-type]
        call.harbor.events.immutable(repo["name"], t["name"])))


async def create_tag(call: Call) -> web.Response:
    project, repo = _repo(call, "create", "tag")
    row = _artifact(call, repo)
    name = str((await call.json()).get("name") or "")
    if not TAG.match(name):
        raise harbor_error("BAD_REQUEST", f"invalid tag name {name!r}")
    harbor = call.harbor
    if harbor.store.tag(repo["name"], name) is not None:
        raise harbor_error("CONFLICT", f"the tag {name} already exists under the repository {repo['name']}")
    manifest = harbor.storage.meta.manifest(repo["name"], row["digest"])
    if manifest is None:
        raise not_found(f"artifact {repo['name']}@{row['digest']}")
    harbor.storage.meta.put_manifest(repo["name"], manifest, [name])
    harbor.store.pushed(repo["name"], project["project_id"], row["digest"], row["media_type"], row["size"], [name])
    harbor.store.record(call.user, f"{repo['name']}:{name}", "tag", "create", project["project_id"],
                        description=f"create tag: {repo['name']}:{name}")
    return web.Response(status=201, headers={"Location": f"{call.request.path}/{name}"})


async def delete_tag(call: Call) -> web.Response:
    _, repo = _repo(call, "delete", "tag")
    row = _artifact(call, repo)
    name = call.params["tag"]
    tag = call.harbor.store.tag(repo["name"], name)
    if tag is None or tag["digest"] != row["digest"]:
        raise not_found(f"tag {name}")
    events = call.harbor.events
    events.before_delete(call.user, repo["name"], row["digest"], name)
    call.harbor.storage.meta.delete_tag(repo["name"], name)
    events.deleted(call.user, repo["name"], row["digest"], name)
    return web.Response()


# -- labels on artifacts ----------------------------------------------------------------------------
async def attach_label(call: Call) -> web.Response:
    project, repo = _repo(call, "create", "artifact-label")
    row = _artifact(call, repo)
    label_id = (await call.json()).get("id")
    label = call.harbor.store.label(label_id) if isinstance(label_id, int) else None
    if label is None:
        raise not_found(f"label {label_id}")
    if label["scope"] == "p" and label["project_id"] != project["project_id"]:
        raise harbor_error("BAD_REQUEST", f"label {label_id} belongs to another project")
    if not call.harbor.store.attach_label(repo["name"], row["digest"], label["id"]):
        raise harbor_error("CONFLICT", f"label {label_id} is already added to the artifact")
    call.harbor.store.record(call.user, f"{repo['name']}@{row['digest']}", "artifact-label", "create",
                             project["project_id"], description=f"add label {label['name']}")
    return web.Response(status=201)


async def detach_label(call: Call) -> web.Response:
    project, repo = _repo(call, "delete", "artifact-label")
    row = _artifact(call, repo)
    lid = call.params["lid"]
    if not lid.isdigit() or not call.harbor.store.detach_label(repo["name"], row["digest"], int(lid)):
        raise not_found(f"label {lid} on the artifact")
    call.harbor.store.record(call.user, f"{repo['name']}@{row['digest']}", "artifact-label", "delete",
                             project["project_id"], description=f"remove label {lid}")
    return web.Response()


def install(router: Router) -> None:
    base = "/projects/{project}/repositories/{repo}"
    add = router.add
    add("GET", "/repositories", all_repositories)
    add("GET", "/projects/{project}/repositories", list_repositories)
    add("GET", base, get_repository)
    add("PUT", base, update_repository)
    add("DELETE", base, delete_repository)
    add("GET", base + "/artifacts", list_artifacts)
    add("GET", base + "/artifacts/{ref}", get_artifact)
    add("DELETE", base + "/artifacts/{ref}", delete_artifact)
    add("GET", base + "/artifacts/{ref}/additions/build_history", build_history)
    add("GET", base + "/artifacts/{ref}/tags", list_tags)
    add("POST", base + "/artifacts/{ref}/tags", create_tag)
    add("DELETE", base + "/artifacts/{ref}/tags/{tag}", delete_tag)
    add("POST", base + "/artifacts/{ref}/labels", attach_label)
    add("DELETE", base + "/artifacts/{ref}/labels/{lid}", detach_label)
