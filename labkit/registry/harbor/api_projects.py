"""``/projects`` (CRUD, ``/summary``, members), ``/quotas`` and ``/projects/{p}/immutabletagrules``."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from aiohttp import web

from ...core.http import json_response
from . import shapes
from .errors import harbor_error, not_found
from .query import paged, query_filter, sort_rows
from .router import PREFIX, Call, Router
from .selectors import valid_selector
from .store import ROLES, UNLIMITED

PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
BOOL_METADATA = ("public", "enable_content_trust", "enable_content_trust_cosign", "prevent_vul", "auto_scan",
                 "auto_sbom_generation", "reuse_sys_cve_allowlist")
SEVERITIES = ("none", "low", "medium", "high", "critical")


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("metadata") or {}
    if not isinstance(raw, dict):
        raise harbor_error("BAD_REQUEST", "metadata must be an object")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key in BOOL_METADATA:
            text = str(value).lower()
            if text not in ("true", "false"):
                raise harbor_error("BAD_REQUEST", f"invalid bool value {value!r} for {key}")
            out[key] = text
        elif key == "severity":
            if str(value) not in SEVERITIES:
                raise harbor_error("BAD_REQUEST", f"invalid severity {value!r}")
            out[key] = str(value)
        elif key == "retention_id":  # set by /retentions; a request may only repeat it (checked by the caller)
            out[key] = str(value)
        else:
            raise harbor_error("BAD_REQUEST", f"metadata {key!r} is not supported by the labkit simulator")
    if isinstance(body.get("public"), bool) and "public" not in out:  # ProjectReq.public (deprecated)
        out["public"] = "true" if body["public"] else "false"
    return out


def _shape(call: Call, row: sqlite3.Row) -> dict[str, Any]:
    store = call.harbor.store
    owner = store.user(int(row["owner_id"]))
    user = store.user(call.user) if call.user else None
    role = store.role(row["project_id"], user["user_id"]) if user is not None else None
    return shapes.project(row, store.repo_count(row["project_id"]), owner["username"] if owner else "", role)


async def list_projects(call: Call) -> web.Response:
    store, policy = call.harbor.store, call.harbor.policy
    rows = [dict(r) for r in store.projects()
            if r["public"] == "true" or policy.is_admin(call.user) or _member(call, r)]
    name = call.request.query.get("name")
    if name:
        rows = [r for r in rows if name in r["name"]]
    public = call.request.query.get("public")
    if public in ("true", "false"):
        rows = [r for r in rows if r["public"] == public]
    rows = [r for r in rows if query_filter(call.request, {"name": "name", "public": "public",
                                                            "project_id": "project_id"})(r)]
    rows = sort_rows(call.request, rows, {"name": "name", "creation_time": "creation_time",
                                          "update_time": "update_time", "project_id": "project_id"})
    return paged(call.request, rows, lambda r: _shape(call, store.project(r["name"])))  # type: ignore[arg-type]


def _member(call: Call, row: sqlite3.Row) -> bool:
    if not call.user:
        return False
    if call.user.startswith("robot$"):
        robot = call.harbor.store.robot(call.user)
        return robot is not None and bool(robot.actions(row["name"]))
    user = call.harbor.store.user(call.user)
    return user is not None and call.harbor.store.role(row["project_id"], user["user_id"]) is not None


async def head_project(call: Call) -> web.Response:
    name = call.request.query.get("project_name", "")
    if call.harbor.store.project(name) is None:
        raise not_found(f"project {name}")
    return web.Response()


async def create_project(call: Call) -> web.Response:
    call.signed_in()
    if call.user.startswith("robot$"):
        raise harbor_error("FORBIDDEN", "a robot account cannot create projects")
    body = await call.json()
    name = str(body.get("project_name") or "")
    if not name or len(name) > 255 or not PROJECT_NAME.match(name):
        raise harbor_error("BAD_REQUEST", "project name is not in lower case or contains illegal characters!")
    if body.get("registry_id"):
        raise harbor_error("BAD_REQUEST", "proxy cache projects (registry_id) are not supported by the labkit "
                                          "simulator")
    metadata = _metadata(body)
    if metadata.pop("retention_id", ""):
        raise harbor_error("BAD_REQUEST", "the retention_id in the request's payload when creating a project should "
                                          "be omitted, alternatively passing an empty string")
    public = metadata.pop("public", "false") == "true"
    limit = _storage_limit(body.get("storage_limit", UNLIMITED))
    store = call.harbor.store
    if store.project(name) is not None:
        raise harbor_error("CONFLICT", f"The project named {name} already exists")
    pid = store.create_project(name, call.harbor.policy.user_id(call.user), public, metadata, limit)
    store.record(call.user, name, "project", "create", pid, description=f"create project: {name}")
    return web.Response(status=201, headers={"Location": f"{PREFIX}/projects/{pid}"})


def _storage_limit(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and value != UNLIMITED) or value == 0:
        raise harbor_error("BAD_REQUEST", f"invalid storage limit {value!r}: a number of bytes, or -1 for "
                                          "unlimited")
    return value


async def get_project(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "project", "read")
    return json_response(_shape(call, row))


async def update_project(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "project", "update")
    body = await call.json()
    metadata = _metadata(body)
    public = metadata.pop("public", None)
    if "retention_id" in metadata and metadata["retention_id"] != json.loads(row["metadata"]).get("retention_id"):
        raise harbor_error("BAD_REQUEST", "the retention_id in the request's payload when updating a project should "
                                          "be omitted, alternatively passing the one that has already been "
                                          "associated to this project")
    call.harbor.store.update_project(row["project_id"], None if public is None else public == "true", metadata)
    call.harbor.store.record(call.user, row["name"], "project", "update", row["project_id"],
                             description=f"update project: {row['name']}")
    return web.Response()


async def delete_project(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "project", "delete")
    store = call.harbor.store
    if store.repo_count(row["project_id"]):
        raise harbor_error("PRECONDITION", f"the project {row['name']} contains repositories, can not be deleted")
    store.delete_project(row["project_id"])
    store.record(call.user, row["name"], "project", "delete", row["project_id"],
                 description=f"delete project: {row['name']}")
    return web.Response()


async def summary(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "project", "read")
    store = call.harbor.store
    counts = {name: 0 for name in ROLES.values()}
    for m in store.members(row["project_id"]):
        counts[ROLES[m["role_id"]]] += 1
    used = call.harbor.events.usage(row["name"])
    return json_response({
        "repo_count": store.repo_count(row["project_id"]), "project_admin_count": counts["projectAdmin"],
        "maintainer_count": counts["maintainer"], "developer_count": counts["developer"],
        "guest_count": counts["guest"], "limited_guest_count": counts["limitedGuest"],
        "quota": {"hard": {"storage": row["storage_limit"]}, "used": {"storage": used}}})


# -- members --------------------------------------------------------------------------------
async def list_members(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "member", "list")
    rows = call.harbor.store.members(row["project_id"])
    name = call.request.query.get("entityname")
    if name:
        rows = [m for m in rows if name in m["username"]]
    return paged(call.request, rows, shapes.member)


async def add_member(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "member", "create")
    body = await call.json()
    role = body.get("role_id")
    if role not in ROLES:
        raise harbor_error("BAD_REQUEST", f"invalid role_id {role!r}")
    if body.get("member_group"):
        raise harbor_error("BAD_REQUEST", "group members are not supported by the labkit simulator")
    member = body.get("member_user") or {}
    user = call.harbor.store.user(int(member["user_id"])) if member.get("user_id") else \
        call.harbor.store.user(str(member.get("username", "")))
    if user is None:
        raise not_found(f"user {member.get('username') or member.get('user_id')}")
    if call.harbor.store.role(row["project_id"], user["user_id"]) is not None:
        raise harbor_error("CONFLICT", f"The user {user['username']} is already a member of project {row['name']}")
    mid = call.harbor.store.add_member(row["project_id"], user["user_id"], role)
    call.harbor.store.record(call.user, user["username"], "member", "create", row["project_id"],
                             description=f"add member {user['username']} as {ROLES[role]}")
    return web.Response(status=201, headers={"Location": f"{PREFIX}/projects/{row['project_id']}/members/{mid}"})


def _member_row(call: Call, row: sqlite3.Row) -> sqlite3.Row:
    mid = call.params["mid"]
    for m in call.harbor.store.members(row["project_id"]):
        if str(m["id"]) == mid:
            return m
    raise not_found(f"member {mid}")


async def get_member(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "member", "read")
    return json_response(shapes.member(_member_row(call, row)))


async def update_member(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "member", "update")
    member = _member_row(call, row)
    role = (await call.json()).get("role_id")
    if role not in ROLES:
        raise harbor_error("BAD_REQUEST", f"invalid role_id {role!r}")
    call.harbor.store.update_member(member["id"], role)
    return web.Response()


async def delete_member(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "member", "delete")
    member = _member_row(call, row)
    call.harbor.store.delete_member(member["id"])
    call.harbor.store.record(call.user, member["username"], "member", "delete", row["project_id"],
                             description=f"remove member {member['username']}")
    return web.Response()


# -- quotas ---------------------------------------------------------------------------------------
async def list_quotas(call: Call) -> web.Response:
    call.admin()
    rows = call.harbor.store.projects()
    reference = call.request.query.get("reference_id")
    if reference:
        rows = [r for r in rows if str(r["project_id"]) == reference]
    return paged(call.request, rows, lambda r: shapes.quota(r, call.harbor.events.usage(r["name"])))


def _quota_project(call: Call) -> sqlite3.Row:
    row = call.harbor.store.project(int(call.params["id"])) if call.params["id"].isdigit() else None
    if row is None:
        raise not_found(f"quota {call.params['id']}")
    return row


async def get_quota(call: Call) -> web.Response:
    row = _quota_project(call)
    call.require(row, "quota", "read")
    return json_response(shapes.quota(row, call.harbor.events.usage(row["name"])))


async def update_quota(call: Call) -> web.Response:
    call.admin()
    row = _quota_project(call)
    hard = (await call.json()).get("hard")
    if not isinstance(hard, dict) or set(hard) != {"storage"}:
        raise harbor_error("BAD_REQUEST", "hard must be {\"storage\": <bytes, or -1>}")
    limit = _storage_limit(hard["storage"])
    call.harbor.store.set_storage_limit(row["project_id"], limit)
    call.harbor.store.record(call.user, row["name"], "quota", "update", row["project_id"],
                             description=f"set storage quota of {row['name']} to {limit}")
    return web.Response()


# -- tag immutability rules ----------------------------------------------------------------------
def _rule(body: dict[str, Any]) -> dict[str, Any]:
    tag_selectors = body.get("tag_selectors")
    repos = (body.get("scope_selectors") or {}).get("repository")
    if not isinstance(tag_selectors, list) or not tag_selectors or not all(
            valid_selector(s, ("matches", "excludes")) for s in tag_selectors):
        raise harbor_error("BAD_REQUEST", "tag_selectors: one or more {kind: doublestar, decoration: "
                                          "matches|excludes, pattern}")
    if not isinstance(repos, list) or not repos or not all(
            valid_selector(s, ("repoMatches", "repoExcludes")) for s in repos):
        raise harbor_error("BAD_REQUEST", "scope_selectors.repository: one or more {kind: doublestar, decoration: "
                                          "repoMatches|repoExcludes, pattern}")
    if body.get("action", "immutable") != "immutable" or body.get("template", "immutable_template") != \
            "immutable_template":
        raise harbor_error("BAD_REQUEST", "an immutability rule's action is immutable (template "
                                          "immutable_template)")
    return {"priority": body.get("priority") or 0, "disabled": bool(body.get("disabled")),
            "tag_selectors": tag_selectors, "scope_selectors": {"repository": repos}}


async def list_rules(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "immutable-tag", "list")
    return paged(call.request, call.harbor.store.immutable_rules(row["project_id"]), shapes.immutable_rule)


async def create_rule(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "immutable-tag", "create")
    rule = _rule(await call.json())
    store = call.harbor.store
    for existing in store.immutable_rules(row["project_id"]):
        same = shapes.immutable_rule(existing)
        if (same["tag_selectors"], same["scope_selectors"]) == (rule["tag_selectors"], rule["scope_selectors"]):
            raise harbor_error("CONFLICT", "a rule with the same selectors already exists")
    rid = store.save_immutable_rule(row["project_id"], rule)
    store.record(call.user, f"{row['name']}/immutabletagrules/{rid}", "immutable_rule", "create",
                 row["project_id"], description="create tag immutability rule")
    return web.Response(status=201, headers={
        "Location": f"{PREFIX}/projects/{row['project_id']}/immutabletagrules/{rid}"})


def _rule_row(call: Call, row: sqlite3.Row) -> sqlite3.Row:
    rule = call.harbor.store.immutable_rule(int(call.params["rid"])) if call.params["rid"].isdigit() else None
    if rule is None or rule["project_id"] != row["project_id"]:
        raise not_found(f"immutable tag rule {call.params['rid']}")
    return rule


async def update_rule(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "immutable-tag", "update")
    rule = _rule_row(call, row)
    body = await call.json()
    if set(body) <= {"id", "disabled"}:  # the UI's enable/disable toggle
        current = shapes.immutable_rule(rule)
        current["disabled"] = bool(body.get("disabled"))
        new = current
    else:
        new = _rule(body)
    call.harbor.store.save_immutable_rule(row["project_id"], new, rule["id"])
    return web.Response()


async def delete_rule(call: Call) -> web.Response:
    row = call.project()
    call.require(row, "immutable-tag", "delete")
    rule = _rule_row(call, row)
    call.harbor.store.delete_immutable_rule(rule["id"])
    call.harbor.store.record(call.user, f"{row['name']}/immutabletagrules/{rule['id']}", "immutable_rule",
                             "delete", row["project_id"], description="delete tag immutability rule")
    return web.Response()


def install(router: Router) -> None:
    add = router.add
    add("GET", "/projects", list_projects)
    add("HEAD", "/projects", head_project)
    add("POST", "/projects", create_project)
    add("GET", "/projects/{project}", get_project)
    add("PUT", "/projects/{project}", update_project)
    add("DELETE", "/projects/{project}", delete_project)
    add("GET", "/projects/{project}/summary", summary)
    add("GET", "/projects/{project}/members", list_members)
    add("POST", "/projects/{project}/members", add_member)
    add("GET", "/projects/{project}/members/{mid}", get_member)
    add("PUT", "/projects/{project}/members/{mid}", update_member)
    add("DELETE", "/projects/{project}/members/{mid}", delete_member)
    add("GET", "/quotas", list_quotas)
    add("GET", "/quotas/{id}", get_quota)
    add("PUT", "/quotas/{id}", update_quota)
    add("GET", "/projects/{project}/immutabletagrules", list_rules)
    add("POST", "/projects/{project}/immutabletagrules", create_rule)
    add("PUT", "/projects/{project}/immutabletagrules/{rid}", update_rule)
    add("DELETE", "/projects/{project}/immutabletagrules/{rid}", delete_rule)
