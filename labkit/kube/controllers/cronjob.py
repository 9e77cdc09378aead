"""The CronJob controller (cronjob-controller v2): a Job per scheduled time, concurrency policies, starting
deadlines, missed start times, history limits and the status kubectl shows. Its clock is injectable, so the
schedule logic is testable without waiting for minutes to pass."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable

from ...core.errors import ApiError
from ..apiserver.objects import Objects
from .base import MANAGER, Controller, EventRecorder, Key, Obj, owned_by, owner_ref, parse_time
from .cron import CronError, Schedule, parse, zone

SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100  # more missed start times than this is worth a warning
COMPONENT = "cronjob-controller"
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    """Go's time.RFC3339: ``Z`` for UTC, else the numeric offset."""
    text = t.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if t.utcoffset() == dt.timedelta(0) else text


def meta_time(t: dt.datetime) -> str:
    """A metav1.Time: RFC3339 in UTC."""
    return rfc3339(t.astimezone(dt.UTC))


def job_name(cronjob: str, scheduled: dt.datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``, as the controller names its Jobs."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def finished(job: Obj) -> str:
    """``Complete`` or ``Failed`` once a Job has finished, else ``''``."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return ""


def most_recent(schedule: Schedule, tz: dt.tzinfo, earliest: dt.datetime, now: dt.datetime
                ) -> tuple[dt.datetime | None, int]:
    """The latest schedule time in (earliest, now] and how many there were."""
    last, count = None, 0
    t = schedule.next(earliest, tz)
    while t is not None and t <= now:
        last, count = t, count + 1
        t = schedule.next(t, tz)
    return last, count


def _datetime(ts: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(parse_time(ts), dt.UTC)


class CronJobController(Controller):
    name = COMPONENT
    watches = ("batch/cronjobs", "batch/jobs")
    owner_kind = "CronJob"
    resync = 1.0  # schedules are checked every second (the real controller requeues for the next time)

    def __init__(self, objects: Objects, recorder: EventRecorder, clock: Clock = utc_now) -> None:
        super().__init__(objects, recorder)
        self.clock = clock
        self._noted: set[tuple[str, str, str]] = set()

    def reconcile(self, key: Key) -> None:
        ns, name = key
        cj = self.store.get("batch/cronjobs", ns, name)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return
        now = self.clock()
        status = copy.deepcopy(cj.get("status") or {})
        jobs = [j for j in self.store.items("batch/jobs", ns) if owned_by(j, cj)]
        self._sync_active(cj, jobs, status)
        self._clean_history(cj, jobs)
        if not cj["spec"].get("suspend"):
            self._schedule(cj, status, now)
        status = {k: v for k, v in status.items() if v}
        if status != (cj.get("status") or {}):
            fresh = self.store.get("batch/cronjobs", ns, name) or cj
            self.objects.update(self.rt("batch", "v1", "cronjobs"), ns, name, {**fresh, "status": status}, MANAGER,
                                "status")

    def _event(self, cj: Obj, kind: str, reason: str, message: str, once: str = "") -> None:
        """Record an event; with ``once``, only the first time for that key (the loop resyncs every second, where
        the real controller syncs on changes and at schedule times)."""
        if once:
            key = (cj["metadata"]["uid"], reason, once)
            if key in self._noted:
                return
            self._noted.add(key)
        self.recorder.emit(cj, kind, reason, message, COMPONENT)

    def _sync_active(self, cj: Obj, jobs: list[Obj], status: Obj) -> None:
        """Finished Jobs leave ``status.active`` (and a Complete one sets lastSuccessfulTime); vanished ones too."""
        active = list(status.get("active") or [])
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        for job in jobs:
            ref = next((r for r in active if r.get("uid") == job["metadata"]["uid"]), None)
            done = finished(job)
            if ref is None and not done:
                if (job["metadata"].get("annotations") or {}).get("cronjob.kubernetes.io/instantiate") != "manual":
                    self._event(cj, "Warning", "UnexpectedJob",
                                f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}",
                                once=job["metadata"]["uid"])
            elif ref is not None and done:
                active.remove(ref)
                self._event(cj, "Normal", "SawCompletedJob",
                            f"Saw completed job: {job['metadata']['name']}, condition: {done}")
                completion = (job.get("status") or {}).get("completionTime")
                if done == "Complete" and completion and parse_time(completion) > parse_time(
                        status.get("lastSuccessfulTime")):
                    status["lastSuccessfulTime"] = completion
        for ref in list(active):
            if ref.get("uid") not in by_uid:
                active.remove(ref)
                self._event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
        status["active"] = active

    def _clean_history(self, cj: Obj, jobs: list[Obj]) -> None:
        """Keep the newest successfulJobsHistoryLimit complete and failedJobsHistoryLimit failed Jobs."""
        for outcome, field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                        ("Failed", "failedJobsHistoryLimit", 1)):
            limit = cj["spec"].get(field)
            limit = default if limit is None else limit
            done = sorted((j for j in jobs if finished(j) == outcome and not j["metadata"].get("deletionTimestamp")),
                          key=lambda j: parse_time((j.get("status") or {}).get("startTime")
                                                   or j["metadata"]["creationTimestamp"]))
            for job in done[: max(0, len(done) - limit)]:
                self._delete_job(cj, job)

    def _delete_job(self, cj: Obj, job: Obj) -> None:
        try:
            self.objects.delete(self.rt("batch", "v1", "jobs"), job["metadata"]["namespace"],
                                job["metadata"]["name"], {"propagationPolicy": "Background"}, False)
        except ApiError as err:
            if err.status != 404:
                raise
        self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")

    def _schedule(self, cj: Obj, status: Obj, now: dt.datetime) -> None:
        spec = cj["spec"]
        try:
            schedule = parse(spec.get("schedule", ""))
        except CronError as err:
            self._event(cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{spec.get("schedule")}" : {err}',
                        once=str(spec.get("schedule")))
            return
        try:
            tz = zone(spec.get("timeZone"))
        except (ValueError, KeyError):
            self._event(cj, "Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}",
                        once=str(spec.get("timeZone")))
            return
        earliest = _datetime(status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"])
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=deadline))
        if earliest > now:
            return
        scheduled, missed = most_recent(schedule, tz, earliest, now)
        if scheduled is None:
            return
        if missed > MAX_MISSED:
            self._event(cj, "Warning", "TooManyMissedTimes",
                        f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds "
                        "or check clock skew", once=scheduled.isoformat())
        if deadline is not None and scheduled + dt.timedelta(seconds=deadline) < now:
            self._event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: "
                        + scheduled.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
                        once=scheduled.isoformat())
            return
        name = job_name(cj["metadata"]["name"], scheduled)
        active = status.get("active") or []
        if any(r.get("name") == name for r in active) or status.get("lastScheduleTime") == meta_time(scheduled):
            return
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self._event(cj, "Normal", "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid",
                        once=scheduled.isoformat())
            return
        if policy == "Replace":
            for ref in list(active):
                job = self.store.get("batch/jobs", cj["metadata"]["namespace"], ref.get("name", ""))
                if job is not None:
                    self._delete_job(cj, job)
                active.remove(ref)
        self._create_job(cj, status, scheduled, name)

    def _create_job(self, cj: Obj, status: Obj, scheduled: dt.datetime, name: str) -> None:
        template = copy.deepcopy(cj["spec"].get("jobTemplate") or {})
        meta = template.get("metadata") or {}
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "labels": meta.get("labels") or {},
                            "annotations": {**(meta.get("annotations") or {}), SCHEDULED: rfc3339(scheduled)},
                            "ownerReferences": [owner_ref(cj)]},
               "spec": template.get("spec") or {}}
        try:
            created, _ = self.objects.create(self.rt("batch", "v1", "jobs"), cj["metadata"]["namespace"], job,
                                             MANAGER)
        except ApiError as err:
            if err.reason != "AlreadyExists":
                self._event(cj, "Warning", "FailedCreate", f"Error creating job: {err.message}")
                return
            created = self.store.get("batch/jobs", cj["metadata"]["namespace"], name)  # made before a restart
            if created is None or not owned_by(created, cj):
                return
        else:
            self._event(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        meta = created["metadata"]
        if not finished(created) and not any(r.get("uid") == meta["uid"] for r in status.get("active") or []):
            status.setdefault("active", []).append(
                {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                 "apiVersion": "batch/v1", "resourceVersion": meta["resourceVersion"]})
        status["lastScheduleTime"] = meta_time(scheduled)
