"""Scan all: ``/system/scanAll/schedule`` (POST ``Manual`` runs it now; a schedule, ``Hourly``/``Daily``/
``Weekly``/``Custom`` with Harbor's six-field cron, runs it periodically; PUT changes it, ``None`` removes it),
``/scans/all/metrics`` and ``/system/scanAll/stop``: a vulnerability scan of every image on the same workers.
The system admin's."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ....core.http import json_response
from .. import schedule
from ..errors import harbor_error
from ..router import Call, Router
from ..shapes import iso
from .reports import ERROR, FINAL, PENDING, RUNNING, STOPPED, SUCCESS, VULNERABILITY
from .worker import ScanJobs

PERIODIC = ("Hourly", "Daily", "Weekly", "Custom", "Schedule")


def _jobs(call: Call) -> ScanJobs:
    return call.harbor.scans


async def _requested(call: Call) -> tuple[str, str]:
    """The body's schedule type and cron (a preset's own cron when none is given), checked."""
    body = (await call.json()).get("schedule") or {}
    kind, cron = str(body.get("type") or ""), str(body.get("cron") or "")
    if kind not in (*PERIODIC, "Manual", "None"):
        raise harbor_error("BAD_REQUEST", f"invalid schedule type: {kind}")
    if kind in PERIODIC:
        cron = cron or schedule.PRESETS.get(kind, "")
        problem = schedule.check(cron)
        if problem:
            raise harbor_error("BAD_REQUEST", f"invalid cron string for scan all: {cron}, error: {problem}")
    return kind, cron


async def create_schedule(call: Call) -> web.Response:
    call.admin()
    kind, cron = await _requested(call)
    jobs = _jobs(call)
    if kind == "Manual":
        latest = jobs.latest_scan_all
        if latest is not None and any(s not in FINAL for s in latest.statuses(jobs)):
            raise harbor_error("CONFLICT", "a previous scan all job aleady exits, its status is Running")
        jobs.scan_all("Manual", call.user)
    elif kind != "None":
        if jobs.reports.schedule() is not None:
            raise harbor_error("PRECONDITION", "fail to set schedule for scan all as always had one, please delete "
                                               "it firstly then to re-schedule")
        jobs.reports.set_schedule(kind, cron)
    return web.Response(status=201)


async def update_schedule(call: Call) -> web.Response:
    call.admin()
    kind, cron = await _requested(call)
    if kind == "Manual":
        raise harbor_error("BAD_REQUEST", "fail to update scan all schedule as wrong schedule type: Manual")
    if kind == "None":
        _jobs(call).reports.drop_schedule()
    else:
        _jobs(call).reports.set_schedule(kind, cron)
    return web.Response()


async def get_schedule(call: Call) -> web.Response:
    call.admin()
    found = _jobs(call).reports.schedule()
    if found is None:
        return web.Response(status=200, content_type="application/json")  # Harbor's empty payload
    body: dict[str, Any] = {
        "id": 1, "status": "", "creation_time": iso(found["creation_time"]),
        "update_time": iso(found["update_time"]), "parameters": {},
        "schedule": {"type": found["type"], "cron": found["cron"],
                     "next_scheduled_time": iso(schedule.next_run(found["cron"], found["update_time"]))}}
    return json_response(body)


async def metrics(call: Call) -> web.Response:
    call.admin()
    latest = _jobs(call).latest_scan_all
    if latest is None:
        return json_response({"total": 0, "completed": 0, "ongoing": False})
    statuses = latest.statuses(_jobs(call))
    counts = {s: statuses.count(s) for s in (PENDING, RUNNING, SUCCESS, ERROR, STOPPED)}
    completed = counts[SUCCESS] + counts[ERROR] + counts[STOPPED]
    return json_response({"total": len(statuses), "completed": completed, "metrics": counts,
                          "ongoing": completed != len(statuses), "trigger": latest.trigger})


async def stop(call: Call) -> web.Response:
    call.admin()
    jobs = _jobs(call)
    latest = jobs.latest_scan_all
    if latest is None:
        raise harbor_error("BAD_REQUEST", "no scan all job is found currently")
    for report_id in latest.report_ids:
        report = jobs.reports.get(report_id)
        if report is not None and not report.final:
            jobs.stop_scan(report.repo, report.digest, VULNERABILITY)
    return web.Response(status=202)


def install(router: Router) -> None:
    router.add("POST", "/system/scanAll/schedule", create_schedule)
    router.add("PUT", "/system/scanAll/schedule", update_schedule)
    router.add("GET", "/system/scanAll/schedule", get_schedule)
    router.add("POST", "/system/scanAll/stop", stop)
    router.add("GET", "/scans/all/metrics", metrics)
    router.add("GET", "/scans/schedule/metrics", metrics)
