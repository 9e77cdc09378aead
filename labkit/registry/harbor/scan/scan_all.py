"""Scan all (``/system/scanAll/schedule`` with ``Manual``, ``/scans/all/metrics``, ``/system/scanAll/stop``): a
vulnerability scan of every image in the registry, queued on the same workers, its progress counted as Harbor
counts it. The system admin's; a periodic scan-all schedule is not supported by the simulator."""

from __future__ import annotations

import time

from aiohttp import web

from ....core.errors import ApiError
from ....core.http import json_response
from ..errors import harbor_error, unsupported
from ..router import Call, Router
from .layout import is_image
from .reports import ERROR, FINAL, PENDING, RUNNING, STOPPED, SUCCESS, VULNERABILITY
from .worker import ScanAll, ScanJobs


def _latest(call: Call) -> ScanAll | None:
    return call.harbor.scans.latest_scan_all


def _run(call: Call) -> ScanAll:
    jobs: ScanJobs = call.harbor.scans
    execution = ScanAll("Manual", time.time())
    storage, store = call.harbor.storage, call.harbor.store
    for project in store.projects():
        for repo in store.repositories(project["project_id"]):
            for artifact in store.artifacts(repo["name"]):
                row = storage.meta.manifest(repo["name"], artifact["digest"])
                if row is None or not is_image(row):
                    continue
                try:
                    execution.report_ids.append(jobs.submit(repo["name"], row.digest, VULNERABILITY, call.user).uuid)
                except ApiError:  # already being scanned: counted as Harbor counts a conflict, skipped
                    continue
    return execution


async def create_schedule(call: Call) -> web.Response:
    call.admin()
    kind = ((await call.json()).get("schedule") or {}).get("type")
    if kind == "None":
        return web.Response(status=201)
    if kind != "Manual":
        raise unsupported(f"a {kind} scan-all schedule (trigger it with type Manual)")
    latest = _latest(call)
    if latest is not None and any(s not in FINAL for s in latest.statuses(call.harbor.scans)):
        raise harbor_error("CONFLICT", "a previous scan all job aleady exits, its status is Running")
    call.harbor.scans.latest_scan_all = _run(call)
    return web.Response(status=201)


async def update_schedule(call: Call) -> web.Response:
    call.admin()
    kind = ((await call.json()).get("schedule") or {}).get("type")
    if kind == "None":
        return web.Response()
    if kind == "Manual":
        raise harbor_error("BAD_REQUEST", "fail to update scan all schedule as wrong schedule type: Manual")
    raise unsupported(f"a {kind} scan-all schedule (trigger it with POST and type Manual)")


async def get_schedule(call: Call) -> web.Response:
    call.admin()
    return web.Response(status=200, content_type="application/json")  # no schedule: Harbor's empty payload


async def metrics(call: Call) -> web.Response:
    call.admin()
    latest = _latest(call)
    if latest is None:
        return json_response({"total": 0, "completed": 0, "ongoing": False})
    statuses = latest.statuses(call.harbor.scans)
    counts = {s: statuses.count(s) for s in (PENDING, RUNNING, SUCCESS, ERROR, STOPPED)}
    completed = counts[SUCCESS] + counts[ERROR] + counts[STOPPED]
    return json_response({"total": len(statuses), "completed": completed, "metrics": counts,
                          "ongoing": completed != len(statuses), "trigger": latest.trigger})


async def stop(call: Call) -> web.Response:
    call.admin()
    latest = _latest(call)
    if latest is None:
        raise harbor_error("BAD_REQUEST", "no scan all job is found currently")
    jobs: ScanJobs = call.harbor.scans
    for report_id in latest.report_ids:
        report = jobs.reports.get(report_id)
        if report is not None and not report.final:
            jobs.stop_scan(report.repo, report.digest, VULNERABILITY)
    return web.Response(status=202)


def install(router: Router) -> None:
    router.add("POST", "/system/scanAll/schedule", create_schedule)
    router.add("GET", "/system/scanAll/schedule", get_schedule)
    router.add("PUT", "/system/scanAll/schedule", update_schedule)
    router.add("POST", "/system/scanAll/stop", stop)
    router.add("GET", "/scans/all/metrics", metrics)
    router.add("GET", "/scans/schedule/metrics", metrics)
