"""``/health``, ``/systeminfo``, ``/labels`` and the audit log (``/auditlog-exts``, legacy ``/audit-logs``, and a
project's ``/logs`` and ``/auditlog-exts``)."""

from __future__ import annotations

import re
import sqlite3
import time

from aiohttp import web

from ...core.http import json_response
from . import shapes
from .errors import harbor_error, not_found
from .query import paged, query_filter, sort_rows
from .router import PREFIX, Call, Router

HARBOR_VERSION = "v2.13.0-labkit"
COMPONENTS = ("core", "database", "jobservice", "portal", "redis", "registry", "registryctl", "trivy")
COLOR = re.compile(r"^(#[0-9a-fA-F]{6})?$")


async def health(call: Call) -> web.Response:
    return json_response({"status": "healthy", "components": [{"name": n, "status": "healthy"}
                                                              for n in COMPONENTS]})


async def systeminfo(call: Call) -> web.Response:
    """What Harbor tells anyone, and more to a signed-in caller."""
    host = call.request.host
    info: dict[str, object] = {
        "with_notary": False, "auth_mode": "db_auth", "primary_auth_mode": False, "self_registration": False,
        "harbor_version": HARBOR_VERSION, "banner_message": "", "oidc_provider_name": "",
        "authproxy_settings": None, "current_time": shapes.iso(time.time())}
    if call.user:
        info |= {"registry_url": host, "external_url": f"{call.request.scheme}://{host}",
                 "project_creation_restriction": "everyone", "has_ca_root": False, "read_only": False,
                 "with_chartmuseum": False, "notification_enable": True,
                 "registry_storage_provider_name": "filesystem"}
    return json_response(info)


async def ping(call: Call) -> web.Response:
    return web.Response(text="Pong")


async def statistics(call: Call) -> web.Response:
    """Counts of the projects and repositories the caller may see (``/statistics``)."""
    call.signed_in()
    store, policy = call.harbor.store, call.harbor.policy
    stats = dict.fromkeys(("private_project_count", "private_repo_count", "public_project_count",
                           "public_repo_count", "total_project_count", "total_repo_count"), 0)
    for project in store.projects():
        public = project["public"] == "true"
        user = store.user(call.user)
        if not (public or policy.is_admin(call.user) or (user is not None and store.role(
                project["project_id"], user["user_id"]) is not None)):
            continue
        kind = "public" if public else "private"
        stats[f"{kind}_project_count"] += 1
        stats[f"{kind}_repo_count"] += store.repo_count(project["project_id"])
    stats["total_project_count"] = stats["public_project_count"] + stats["private_project_count"]
    stats["total_repo_count"] = stats["public_repo_count"] + stats["private_repo_count"]
    if policy.is_admin(call.user):
        stats["total_storage_consumption"] = sum(call.harbor.events.usage(p["name"]) for p in store.projects())
    return json_response(stats)


# -- labels ---------------------------------------------------------------------------------------
def _label_project(call: Call, scope: str, project_id: int) -> sqlite3.Row | None:
    if scope == "g":
        return None
    project = call.harbor.store.project(project_id)
    if project is None:
        raise not_found(f"project {project_id}")
    return project


async def list_labels(call: Call) -> web.Response:
    scope = call.request.query.get("scope", "g")
    if scope not in ("g", "p"):
        raise harbor_error("BAD_REQUEST", "scope is g (global) or p (project)")
    raw_pid = call.request.query.get("project_id", "0")
    if scope == "p" and not raw_pid.isdigit():
        raise harbor_error("BAD_REQUEST", "a project label list needs project_id")
    project = _label_project(call, scope, int(raw_pid or 0))
    if project is not None:
        call.require(project, "label", "list")
    items = [dict(r) for r in call.harbor.store.labels(scope, project["project_id"] if project else 0)]
    name = call.request.query.get("name")
    if name:
        items = [r for r in items if name in r["name"]]
    items = [r for r in items if query_filter(call.request, {"name": "name"})(r)]
    items = sort_rows(call.request, items, {"name": "name", "creation_time": "creation_time", "id": "id"})
    return paged(call.request, items, lambda r: shapes.label(call.harbor.store.label(r["id"])))  # type: ignore[arg-type]


def _label_body(body: dict[str, object]) -> tuple[str, str, str]:
    name, color = str(body.get("name") or ""), str(body.get("color") or "")
    if not name or len(name) > 128:
        raise harbor_error("BAD_REQUEST", "a label needs a name (at most 128 characters)")
    if not COLOR.match(color):
        raise harbor_error("BAD_REQUEST", f"invalid color {color!r}: #RRGGBB")
    return name, str(body.get("description") or ""), color


async def create_label(call: Call) -> web.Response:
    body = await call.json()
    scope = body.get("scope")
    if scope not in ("g", "p"):
        raise harbor_error("BAD_REQUEST", "scope is g (global) or p (project)")
    pid = body.get("project_id") or 0
    project = _label_project(call, str(scope), int(pid) if isinstance(pid, int) else -1)
    if project is None:
        call.admin()
    else:
        call.require(project, "label", "create")
    name, description, color = _label_body(body)
    store = call.harbor.store
    if any(r["name"] == name for r in store.labels(str(scope), project["project_id"] if project else 0)):
        raise harbor_error("CONFLICT", f"label {name} already exists")
    lid = store.create_label(name, description, color, str(scope), project["project_id"] if project else 0)
    store.record(call.user, name, "label", "create", project["project_id"] if project else 0,
                 description=f"create label: {name}")
    return web.Response(status=201, headers={"Location": f"{PREFIX}/labels/{lid}"})


def _label(call: Call, action: str) -> sqlite3.Row:
    lid = call.params["lid"]
    row = call.harbor.store.label(int(lid)) if lid.isdigit() else None
    if row is None:
        raise not_found(f"label {lid}")
    if row["scope"] == "g":
        if action != "read":
            call.admin()
    else:
        call.require(call.harbor.store.project(int(row["project_id"])), "label", action)
    return row


async def get_label(call: Call) -> web.Response:
    return json_response(shapes.label(_label(call, "read")))


async def update_label(call: Call) -> web.Response:
    row = _label(call, "update")
    body = await call.json()
    name, description, color = _label_body({**shapes.label(row), **body})
    call.harbor.store.update_label(row["id"], name, description, color)
    call.harbor.store.record(call.user, name, "label", "update", row["project_id"],
                             description=f"update label: {name}")
    return web.Response()


async def delete_label(call: Call) -> web.Response:
    row = _label(call, "delete")
    call.harbor.store.delete_label(row["id"])
    call.harbor.store.record(call.user, row["name"], "label", "delete", row["project_id"],
                             description=f"delete label: {row['name']}")
    return web.Response()


# -- the audit log ------------------------------------------------------------------------------------
_AUDIT_FIELDS = {"username": "username", "resource": "resource", "resource_type": "resource_type",
                 "operation": "operation", "op_time": "op_time", "operation_result": "operation_result"}


def _audit(call: Call, rows: list[sqlite3.Row], extended: bool) -> web.Response:
    items = [{**dict(r), "operation_result": bool(r["operation_result"])} for r in rows]
    items = [r for r in items if query_filter(call.request, _AUDIT_FIELDS)(r)]
    items = sort_rows(call.request, items, {"op_time": "op_time", "id": "id", "username": "username",
                                            "resource": "resource", "operation": "operation"})
    return paged(call.request, items, lambda r: shapes.audit(r, extended))


async def audit_logs(call: Call) -> web.Response:
    """``/audit-logs`` (legacy) and ``/auditlog-exts``: the system admin's view of every entry."""
    call.admin()
    return _audit(call, call.harbor.store.audit_log(), call.request.path.endswith("auditlog-exts"))


async def project_logs(call: Call) -> web.Response:
    project = call.project()
    call.require(project, "log", "list")
    return _audit(call, call.harbor.store.audit_log(project["project_id"]),
                  call.request.path.endswith("auditlog-exts"))


def install(router: Router) -> None:
    add = router.add
    add("GET", "/health", health)
    add("GET", "/systeminfo", systeminfo)
    add("GET", "/ping", ping)
    add("GET", "/statistics", statistics)
    add("GET", "/labels", list_labels)
    add("POST", "/labels", create_label)
    add("GET", "/labels/{lid}", get_label)
    add("PUT", "/labels/{lid}", update_label)
    add("DELETE", "/labels/{lid}", delete_label)
    add("GET", "/audit-logs", audit_logs)
    add("GET", "/auditlog-exts", audit_logs)
    add("GET", "/projects/{project}/logs", project_logs)
    add("GET", "/projects/{project}/auditlog-exts", project_logs)
