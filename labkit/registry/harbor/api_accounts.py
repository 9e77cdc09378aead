"""``/users`` and robot accounts (``/robots``, and a project's ``/projects/{p}/robots``)."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from aiohttp import web

from ...core.http import json_response
from . import shapes
from .errors import harbor_error, not_found
from .policy import api_may
from .query import paged, query_filter, sort_rows
from .router import PREFIX, Call, Router
from .store import ADMIN_ID, ROBOT_PREFIX, UNLIMITED

ROBOT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
USERNAME_FORBIDDEN = set(',"~#$%')
# The resources and actions a project robot may be given (Harbor's robot permission list, the parts served here).
ROBOT_ACCESS = {"repository": {"pull", "push", "delete", "list", "read", "update"},
                "artifact": {"read", "list", "delete", "create"}, "tag": {"list", "create", "delete"},
                "artifact-label": {"create", "delete"}, "scan": {"create", "stop", "read"},
                "sbom": {"create", "stop", "read"}, "label": {"read", "list", "create", "update", "delete"},
                "immutable-tag": {"list", "create", "update", "delete"}, "log": {"list"}, "quota": {"read"},
                "project": {"read"}, "member": {"read", "list"}}


# -- users ----------------------------------------------------------------------------------------
def _check_password(password: str) -> None:
    """Harbor's rule: 8-128 characters with an upper-case letter, a lower-case letter and a digit."""
    if not (8 <= len(password) <= 128 and re.search(r"[A-Z]", password) and re.search(r"[a-z]", password)
            and re.search(r"[0-9]", password)):
        raise harbor_error("BAD_REQUEST", "the password must be 8-128 characters with at least one uppercase "
                                          "letter, one lowercase letter and one number")


async def list_users(call: Call) -> web.Response:
    call.admin()
    items = [dict(r) for r in call.harbor.store.users()]
    username = call.request.query.get("username")
    if username:
        items = [u for u in items if username in u["username"]]
    items = [u for u in items if query_filter(call.request, {"username": "username", "email": "email"})(u)]
    items = sort_rows(call.request, items, {"username": "username", "creation_time": "creation_time"})
    return paged(call.request, items, lambda u: shapes.user(call.harbor.store.user(u["user_id"])))  # type: ignore[arg-type]


async def search_users(call: Call) -> web.Response:
    call.signed_in()
    needle = call.request.query.get("username", "")
    items = [u for u in call.harbor.store.users() if needle in u["username"]]
    return paged(call.request, items, lambda u: {"user_id": u["user_id"], "username": u["username"]})


async def create_user(call: Call) -> web.Response:
    call.admin()
    body = await call.json()
    username, password = str(body.get("username") or ""), str(body.get("password") or "")
    if not username or len(username) > 255 or USERNAME_FORBIDDEN & set(username) or \
            username.startswith(ROBOT_PREFIX):
        raise harbor_error("BAD_REQUEST", f"invalid username {username!r}")
    _check_password(password)
    store = call.harbor.store
    if store.user(username) is not None:
        raise harbor_error("CONFLICT", f"username {username} is already used")
    uid = store.create_user(username, password, str(body.get("email") or ""), str(body.get("realname") or ""),
                            str(body.get("comment") or ""))
    store.record(call.user, username, "user", "create", description=f"create user: {username}")
    return web.Response(status=201, headers={"Location": f"{PREFIX}/users/{uid}"})


def _user(call: Call) -> sqlite3.Row:
    uid = call.params["uid"]
    row = call.harbor.store.user(int(uid)) if uid.isdigit() else None
    if row is None:
        raise not_found(f"user {uid}")
    if not call.harbor.policy.is_admin(call.user) and row["username"] != call.user:
        call.signed_in()
        raise harbor_error("FORBIDDEN", "forbidden")
    return row


async def current_user(call: Call) -> web.Response:
    call.signed_in()
    row = call.harbor.store.user(call.user)
    if row is None:
        raise not_found(f"user {call.user}")
    return json_response(shapes.user(row))


async def get_user(call: Call) -> web.Response:
    return json_response(shapes.user(_user(call)))


async def update_user(call: Call) -> web.Response:
    """The profile: email, realname, comment (the user or the admin)."""
    row = _user(call)
    body = await call.json()
    call.harbor.store.update_user(row["user_id"], str(body.get("email", row["email"] or "")),
                                  str(body.get("realname", row["realname"] or "")),
                                  str(body.get("comment", row["comment"] or "")))
    return web.Response()


async def change_password(call: Call) -> web.Response:
    """The user gives the old password; the admin need not. The admin's own password is the lab's secret."""
    row = _user(call)
    if row["user_id"] == ADMIN_ID:
        raise harbor_error("BAD_REQUEST", "the admin's password is the lab's secret (registry-admin-password): "
                                          "changing it is not supported by the labkit simulator")
    body = await call.json()
    new = str(body.get("new_password") or "")
    if not call.harbor.policy.is_admin(call.user) and not call.harbor.store.check_user(
            row["username"], str(body.get("old_password") or "")):
        raise harbor_error("FORBIDDEN", "the old password is wrong")
    _check_password(new)
    call.harbor.store.set_password(row["user_id"], new)
    call.harbor.policy.forget()
    call.harbor.store.record(call.user, row["username"], "user", "update",
                             description=f"change the password of user: {row['username']}")
    return web.Response()


async def delete_user(call: Call) -> web.Response:
    call.admin()
    row = _user(call)
    if row["user_id"] == ADMIN_ID:
        raise harbor_error("FORBIDDEN", "the admin user cannot be deleted")
    call.harbor.store.delete_user(row["user_id"])
    call.harbor.policy.forget()
    call.harbor.store.record(call.user, row["username"], "user", "delete", description=f"delete user: "
                                                                                     f"{row['username']}")
    return web.Response()


# -- robot accounts --------------------------------------------------------------------------------
def _permissions(body: dict[str, Any], level: str) -> list[dict[str, Any]]:
    perms = body.get("permissions")
    if not isinstance(perms, list) or not perms:
        raise harbor_error("BAD_REQUEST", "permissions: at least one {kind, namespace, access}")
    for perm in perms:
        if not isinstance(perm, dict) or perm.get("kind") != "project" or not isinstance(perm.get("namespace"), str):
            raise harbor_error("BAD_REQUEST", "a permission is {kind: project, namespace: <project>, access: [...]} "
                                              "(system-level permissions are not supported by the labkit simulator)")
        access = perm.get("access")
        if not isinstance(access, list) or not access:
            raise harbor_error("BAD_REQUEST", "a permission's access lists {resource, action}")
        for a in access:
            if not isinstance(a, dict) or a.get("action") not in ROBOT_ACCESS.get(str(a.get("resource")), set()):
                raise harbor_error("BAD_REQUEST", f"unsupported access {a!r}")
            if a.get("effect", "allow") != "allow":
                raise harbor_error("BAD_REQUEST", "deny effects are not supported by the labkit simulator")
    if level == "project" and len(perms) != 1:
        raise harbor_error("BAD_REQUEST", "a project-level robot has exactly one permission, on its project")
    return [{"kind": "project", "namespace": p["namespace"],
             "access": [{"resource": a["resource"], "action": a["action"]} for a in p["access"]]} for p in perms]


def _duration(body: dict[str, Any]) -> int:
    duration = body.get("duration", UNLIMITED)
    if not isinstance(duration, int) or isinstance(duration, bool) or duration == 0 or duration < UNLIMITED:
        raise harbor_error("BAD_REQUEST", f"invalid duration {duration!r}: days, or -1 for never expiring")
    return duration


def _may_manage(call: Call, perms: list[dict[str, Any]], level: str, action: str) -> sqlite3.Row | None:
    """A system robot is the admin's; a project robot its project admin's. Returns the project (project level)."""
    call.signed_in()
    if level == "system":
        call.admin()
        return None
    project = call.harbor.store.project(str(perms[0]["namespace"]))
    if project is None:
        raise not_found(f"project {perms[0]['namespace']}")
    call.require(project, "robot", action)
    return project


async def _create(call: Call, body: dict[str, Any], level: str, perms: list[dict[str, Any]]) -> web.Response:
    name = str(body.get("name") or "")
    if not ROBOT_NAME.match(name):
        raise harbor_error("BAD_REQUEST", f"invalid robot name {name!r}: lower case letters, digits and ._-")
    project = _may_manage(call, perms, level, "create")
    full = f"{ROBOT_PREFIX}{project['name']}+{name}" if project is not None else f"{ROBOT_PREFIX}{name}"
    store = call.harbor.store
    if store.robot(full) is not None:
        raise harbor_error("CONFLICT", f"robot account {full} already exists")
    rid, secret, expires_at = store.create_robot(full, str(body.get("description") or ""), level,
                                                 project["project_id"] if project is not None else None,
                                                 _duration(body), perms, bool(body.get("disable")))
    if isinstance(body.get("secret"), str) and body["secret"]:
        secret = store.refresh_robot_secret(rid, body["secret"])
    row = store.robot_row(rid)
    assert row is not None
    store.record(call.user, full, "robot", "create", project["project_id"] if project is not None else 0,
                 description=f"create robot: {full}")
    return json_response({"id": rid, "name": full, "secret": secret, "creation_time": shapes.iso(
        row["creation_time"]), "expires_at": expires_at}, 201, {"Location": f"{PREFIX}/robots/{rid}"})


async def create_robot(call: Call) -> web.Response:
    body = await call.json()
    level = body.get("level")
    if level not in ("project", "system"):
        raise harbor_error("BAD_REQUEST", "level must be project or system")
    return await _create(call, body, level, _permissions(body, level))


def _robot(call: Call, project: sqlite3.Row | None = None) -> sqlite3.Row:
    rid = call.params["rid"]
    row = call.harbor.store.robot_row(int(rid)) if rid.isdigit() else None
    if row is None or (project is not None and row["project_id"] != project["project_id"]):
        raise not_found(f"robot {rid}")
    return row


def _visible(call: Call, row: sqlite3.Row, action: str) -> None:
    if row["level"] == "system":
        call.admin()
        return
    project = call.harbor.store.project(int(row["project_id"]))
    call.require(project, "robot", action)


async def list_robots(call: Call) -> web.Response:
    call.signed_in()
    policy, store = call.harbor.policy, call.harbor.store
    items = []
    for r in store.robots():
        item = {**dict(r), "Level": r["level"], "ProjectID": r["project_id"] or 0}
        if policy.is_admin(call.user) or (r["project_id"] and api_may(
                policy, call.user, dict(store.project(int(r["project_id"])) or {}), "robot", "list")):
            items.append(item)
    items = [r for r in items if query_filter(call.request, {"Level": "Level", "ProjectID": "ProjectID",
                                                             "name": "name"})(r)]
    items = sort_rows(call.request, items, {"name": "name", "creation_time": "creation_time", "id": "id"})
    return paged(call.request, items, lambda r: shapes.robot(store.robot_row(r["id"])))  # type: ignore[arg-type]


async def get_robot(call: Call) -> web.Response:
    row = _robot(call)
    _visible(call, row, "read")
    return json_response(shapes.robot(row))


async def update_robot(call: Call) -> web.Response:
    row = _robot(call)
    _visible(call, row, "update")
    body = await call.json()
    if body.get("name") not in (None, row["name"]) or body.get("level", row["level"]) != row["level"]:
        raise harbor_error("BAD_REQUEST", "a robot's name and level cannot be changed")
    perms = _permissions(body, row["level"]) if "permissions" in body else shapes.robot(row)["permissions"]
    if row["level"] == "project" and perms[0]["namespace"] != shapes.robot(row)["permissions"][0]["namespace"]:
        raise harbor_error("BAD_REQUEST", "a project robot's permission stays on its project")
    call.harbor.store.update_robot(row["id"], str(body.get("description", row["description"])),
                                   bool(body.get("disable", row["disabled"])),
                                   _duration({"duration": body.get("duration", row["duration"])}), perms)
    call.harbor.store.record(call.user, row["name"], "robot", "update", row["project_id"] or 0,
                             description=f"update robot: {row['name']}")
    return web.Response()


async def refresh_secret(call: Call) -> web.Response:
    row = _robot(call)
    _visible(call, row, "update")
    body = await call.json()
    given = body.get("secret")
    if given is not None and (not isinstance(given, str) or len(given) < 8):
        raise harbor_error("BAD_REQUEST", "a robot secret has at least 8 characters")
    secret = call.harbor.store.refresh_robot_secret(row["id"], given or None)
    call.harbor.store.record(call.user, row["name"], "robot", "update", row["project_id"] or 0,
                             description=f"refresh the secret of robot: {row['name']}")
    return json_response({"secret": secret})


async def delete_robot(call: Call) -> web.Response:
    row = _robot(call)
    _visible(call, row, "delete")
    call.harbor.store.delete_robot(row["id"])
    call.harbor.store.record(call.user, row["name"], "robot", "delete", row["project_id"] or 0,
                             description=f"delete robot: {row['name']}")
    return web.Response()


# -- a project's robots (the v1 API: access as {resource, action}) ------------------------------------
async def project_robots(call: Call) -> web.Response:
    project = call.project()
    call.require(project, "robot", "list")
    rows = [r for r in call.harbor.store.robots() if r["project_id"] == project["project_id"]]
    return paged(call.request, rows, shapes.robot)


async def create_project_robot(call: Call) -> web.Response:
    project = call.project()
    body = await call.json()
    access = body.get("access")
    if not isinstance(access, list) or not access:
        raise harbor_error("BAD_REQUEST", "access lists {resource, action}")
    prefix = f"/project/{project['project_id']}/"
    converted = [{"resource": str(a.get("resource", "")).removeprefix(prefix), "action": a.get("action")}
                 for a in access if isinstance(a, dict)]
    perms = _permissions({"permissions": [{"kind": "project", "namespace": project["name"],
                                           "access": converted}]}, "project")
    body = {**body, "duration": body.get("duration", UNLIMITED)}
    return await _create(call, body, "project", perms)


async def get_project_robot(call: Call) -> web.Response:
    project = call.project()
    call.require(project, "robot", "read")
    return json_response(shapes.robot(_robot(call, project)))


async def delete_project_robot(call: Call) -> web.Response:
    project = call.project()
    _robot(call, project)
    return await delete_robot(call)


def install(router: Router) -> None:
    add = router.add
    add("GET", "/users", list_users)
    add("POST", "/users", create_user)
    add("GET", "/users/search", search_users)
    add("GET", "/users/current", current_user)
    add("GET", "/users/{uid}", get_user)
    add("PUT", "/users/{uid}", update_user)
    add("PUT", "/users/{uid}/password", change_password)
    add("DELETE", "/users/{uid}", delete_user)
    add("GET", "/robots", list_robots)
    add("POST", "/robots", create_robot)
    add("GET", "/robots/{rid}", get_robot)
    add("PUT", "/robots/{rid}", update_robot)
    add("PATCH", "/robots/{rid}", refresh_secret)
    add("DELETE", "/robots/{rid}", delete_robot)
    add("GET", "/projects/{project}/robots", project_robots)
    add("POST", "/projects/{project}/robots", create_project_robot)
    add("GET", "/projects/{project}/robots/{rid}", get_project_robot)
    add("DELETE", "/projects/{project}/robots/{rid}", delete_project_robot)
