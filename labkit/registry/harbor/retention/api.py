"""``/retentions``: a project's tag retention policy (create, get, update, delete; one per project, its id in
the project's ``retention_id`` metadata), ``/retentions/metadatas``, executions (run now, ``dry_run``; list;
stop) and their tasks (one per repository) with each task's log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from aiohttp import web

from ....core.http import json_response
from ..errors import harbor_error, not_found
from ..query import paged
from ..router import PREFIX, Call, Router
from ..shapes import iso
from . import policy as rules
from .execution import RetentionRunner
from .store import ERROR, PENDING, RUNNING, STOPPED, SUCCESS

RETENTION_ID = "retention_id"
_STATUS_CODE = {PENDING: 0, RUNNING: 2, STOPPED: 3, ERROR: 3, SUCCESS: 3}


def runner(call: Call) -> RetentionRunner:
    return call.harbor.retention


def _policy(call: Call) -> tuple[dict[str, Any], sqlite3.Row]:
    """The route's policy and its project; 404 as Harbor answers an unknown id."""
    call.signed_in()
    raw = call.params["id"]
    found = runner(call).policies.policy(int(raw)) if raw.isdigit() else None
    if found is None:
        raise not_found(f"retention policy {raw}")
    project = call.harbor.store.project(int(found["scope"]["ref"]))
    if project is None:
        raise not_found(f"project {found['scope']['ref']}")
    return found, project


def _bound(project: sqlite3.Row, policy_id: int) -> None:
    """The policy must be the one the project's metadata names (Harbor's requirePolicyAccess)."""
    if json.loads(project["metadata"]).get(RETENTION_ID) != str(policy_id):
        raise not_found(f"the retention policy id {policy_id} does not match")


async def metadatas(call: Call) -> web.Response:
    call.signed_in()
    return json_response(rules.metadata())


async def create(call: Call) -> web.Response:
    call.signed_in()
    policy = rules.validate(await call.json())
    project = call.harbor.store.project(policy["scope"]["ref"])
    if project is None:
        call.require(None, "tag-retention", "create")
        raise harbor_error("BAD_REQUEST", f"invalid Project id {policy['scope']['ref']}")
    call.require(project, "tag-retention", "create")
    old = json.loads(project["metadata"]).get(RETENTION_ID)
    if old:
        raise harbor_error("BAD_REQUEST", f"project {project['project_id']} already has retention policy {old}")
    policy_id = runner(call).policies.create(project["project_id"], policy)
    call.harbor.store.update_project(project["project_id"], None, {RETENTION_ID: str(policy_id)})
    call.harbor.store.record(call.user, f"{project['name']}/retention/{policy_id}", "retention", "create",
                             project["project_id"], description=f"create retention policy {policy_id}")
    return web.Response(status=201, headers={"Location": f"{PREFIX}/retentions/{policy_id}"})


async def get(call: Call) -> web.Response:
    found, project = _policy(call)
    call.require(project, "tag-retention", "read")
    return json_response(found)


async def update(call: Call) -> web.Response:
    found, project = _policy(call)
    policy = rules.validate(await call.json())
    call.require(project, "tag-retention", "update")
    _bound(project, found["id"])
    if policy["scope"]["ref"] != project["project_id"]:
        raise harbor_error("BAD_REQUEST", "the scope of a retention policy cannot move to another project")
    runner(call).policies.update(found["id"], policy)
    call.harbor.store.record(call.user, f"{project['name']}/retention/{found['id']}", "retention", "update",
                             project["project_id"], description=f"update retention policy {found['id']}")
    return web.Response()


async def delete(call: Call) -> web.Response:
    found, project = _policy(call)
    call.require(project, "tag-retention", "delete")
    runner(call).policies.delete(found["id"])
    call.harbor.store.drop_project_metadata(project["project_id"], RETENTION_ID)
    call.harbor.store.record(call.user, f"{project['name']}/retention/{found['id']}", "retention", "delete",
                             project["project_id"], description=f"delete retention policy {found['id']}")
    return web.Response()


def _execution(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "policy_id": row["policy_id"], "start_time": iso(row["start_time"]),
            "end_time": iso(row["end_time"]), "status": row["status"], "trigger": row["trigger"],
            "dry_run": bool(row["dry_run"])}


def _task(row: dict[str, Any]) -> dict[str, Any]:
    job_id = hashlib.sha1(f"retention-{row['execution_id']}-{row['id']}".encode()).hexdigest()[:24]
    return {"id": row["id"], "execution_id": row["execution_id"], "repository": row["repository"],
            "job_id": job_id, "status": row["status"], "status_code": _STATUS_CODE.get(row["status"], -1),
            "status_revision": 0, "start_time": iso(row["start_time"]), "end_time": iso(row["end_time"]),
            "total": row["total"], "retained": row["retained"]}


async def trigger(call: Call) -> web.Response:
    found, project = _policy(call)
    body = await call.json()
    call.require(project, "tag-retention", "update")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise harbor_error("UNPROCESSABLE_ENTITY", "validation failure list:\nbody.dry_run in body must be of "
                                                   "type boolean")
    execution_id = runner(call).trigger(found["id"], dry_run, call.user)
    return web.Response(status=201, headers={"Location": f"{call.request.path.rstrip('/')}/{execution_id}"})


def _owned_execution(call: Call, policy_id: int) -> dict[str, Any]:
    raw = call.params["eid"]
    row = runner(call).policies.execution(int(raw)) if raw.isdigit() else None
    if row is None or row["policy_id"] != policy_id:
        raise not_found(f"execution id {raw}")
    return row


async def list_executions(call: Call) -> web.Response:
    found, project = _policy(call)
    call.require(project, "tag-retention", "list")
    return paged(call.request, runner(call).policies.executions(found["id"]), _execution)


async def operate(call: Call) -> web.Response:
    found, project = _policy(call)
    body = await call.json()
    if body.get("action") != "stop":
        raise harbor_error("BAD_REQUEST", "action should be 'stop'")
    call.require(project, "tag-retention", "update")
    _bound(project, found["id"])
    execution = _owned_execution(call, found["id"])
    runner(call).stop_execution(execution["id"])
    return web.Response()


async def list_tasks(call: Call) -> web.Response:
    found, project = _policy(call)
    call.require(project, "tag-retention", "list")
    _bound(project, found["id"])
    execution = _owned_execution(call, found["id"])
    return paged(call.request, runner(call).policies.tasks(execution["id"]), _task)


async def task_log(call: Call) -> web.Response:
    found, project = _policy(call)
    call.require(project, "tag-retention", "read")
    _bound(project, found["id"])
    execution = _owned_execution(call, found["id"])
    raw = call.params["tid"]
    task = runner(call).policies.task(int(raw)) if raw.isdigit() else None
    if task is None or task["execution_id"] != execution["id"]:
        raise not_found(f"task {raw}")
    return web.Response(text=task["log"], content_type="text/plain")


def install(router: Router) -> None:
    add = router.add
    add("GET", "/retentions/metadatas", metadatas)
    add("POST", "/retentions", create)
    add("GET", "/retentions/{id}", get)
    add("PUT", "/retentions/{id}", update)
    add("DELETE", "/retentions/{id}", delete)
    add("POST", "/retentions/{id}/executions", trigger)
    add("GET", "/retentions/{id}/executions", list_executions)
    add("PATCH", "/retentions/{id}/executions/{eid}", operate)
    add("GET", "/retentions/{id}/executions/{eid}/tasks", list_tasks)
    add("GET", "/retentions/{id}/executions/{eid}/tasks/{tid}", task_log)
