"""CronJobs: the cron-schedule parser (robfig/cron's standard grammar and errors), the controller's schedule logic
under an injected clock (against the real object store), and the live path with real kubectl: a every-minute
schedule that runs a Job, ``kubectl create job --from=cronjob/...`` and the API server's validation."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from labkit.kube.apiserver.api import KubeApi
from labkit.kube.apiserver.objects import WriteOptions
from labkit.kube.apiserver.store import Store
from labkit.kube.controllers.base import EventRecorder
from labkit.kube.controllers.cron import CronError, parse
from labkit.kube.controllers.cronjob import SCHEDULED, CronJobController
from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

UTC = dt.UTC


def at(text: str, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def nexts(spec: str, start: str, n: int = 3, tz: dt.tzinfo = UTC) -> list[str]:
    out, t = [], at(start, tz)
    for _ in range(n):
        t = parse(spec).next(t, tz)
        out.append(t.isoformat())
    return out


# -- the parser ---------------------------------------------------------------------------------------------------

def test_schedules_follow_the_standard_cron_grammar() -> None:
    assert nexts("*/15 * * * *", "2026-03-01T10:07:00") == [
        "2026-03-01T10:15:00+00:00", "2026-03-01T10:30:00+00:00", "2026-03-01T10:45:00+00:00"]
    assert nexts("0 9-17/4 * * *", "2026-03-01T10:00:00") == [
        "2026-03-01T13:00:00+00:00", "2026-03-01T17:00:00+00:00", "2026-03-02T09:00:00+00:00"]
    assert nexts("30 2 * JAN,jul MON-WED", "2026-06-30T00:00:00") == [  # 2026-07-01 is a Wednesday
        "2026-07-01T02:30:00+00:00", "2026-07-06T02:30:00+00:00", "2026-07-07T02:30:00+00:00"]
    # day of month and day of week both restricted: either matches (cron's OR); with a * only the other counts
    assert nexts("0 0 13 * FRI", "2026-02-01T00:00:00") == [
        "2026-02-06T00:00:00+00:00", "2026-02-13T00:00:00+00:00", "2026-02-20T00:00:00+00:00"]
    assert nexts("0 0 * * 5", "2026-02-01T00:00:00", 1) == ["2026-02-06T00:00:00+00:00"]
    assert nexts("0 0 29 2 *", "2026-01-01T00:00:00", 1) == ["2028-02-29T00:00:00+00:00"]
    assert nexts("5/20 * * * *", "2026-01-01T00:00:00") == [  # N/step means N-max/step
        "2026-01-01T00:05:00+00:00", "2026-01-01T00:25:00+00:00", "2026-01-01T00:45:00+00:00"]


def test_macros_and_time_zones() -> None:
    assert nexts("@hourly", "2026-01-01T00:30:00", 1) == ["2026-01-01T01:00:00+00:00"]
    assert nexts("@daily", "2026-01-01T00:30:00", 1) == ["2026-01-02T00:00:00+00:00"]
    assert nexts("@weekly", "2026-01-01T00:30:00", 1) == ["2026-01-04T00:00:00+00:00"]  # a Sunday
    assert nexts("@monthly", "2026-01-01T00:30:00", 1) == ["2026-02-01T00:00:00+00:00"]
    assert nexts("@yearly", "2026-01-01T00:30:00", 1) == nexts("@annually", "2026-01-01T00:30:00", 1) == [
        "2027-01-01T00:00:00+00:00"]
    seoul = ZoneInfo("Asia/Seoul")
    assert parse("0 9 * * *").next(at("2026-05-01T00:30:00"), seoul) == at("2026-05-02T09:00:00", seoul)
    # 02:30 does not exist in Berlin on the day clocks spring forward: that day is skipped
    berlin = ZoneInfo("Europe/Berlin")
    assert nexts("30 2 * * *", "2026-03-28T12:00:00", 2, berlin) == [
        "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
    assert parse("@every 90s").next(at("2026-01-01T00:00:00")) == at("2026-01-01T00:01:30")
    assert parse("CRON_TZ=Asia/Seoul 0 9 * * *") == parse("0 9 * * *")  # the parser takes it; the API refuses it


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-3 * * * *", "beginning of range (5) beyond end of range (3): 5-3"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("TZ=Nowhere/Land 0 * * * *", "provided bad location Nowhere/Land: unknown time zone Nowhere/Land"),
])
def test_bad_schedules_are_refused_in_the_parsers_words(spec: str, message: str) -> None:
    with pytest.raises(CronError) as err:
        parse(spec)
    assert str(err.value) == message


# -- the controller's schedule logic, on a clock the test moves ---------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, t: dt.datetime) -> None:
        self.now = t


class Harness:
    """The real object store and API semantics, the real controller, and a clock under the test's control."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path / "objects.sqlite")
        self.objects = KubeApi(self.store).objects
        self.clock = Clock()
        self.controller = CronJobController(self.objects, EventRecorder(self.objects), clock=self.clock)
        self.cj_rt = self.objects.registry.find("batch", "v1", "cronjobs")
        self.job_rt = self.objects.registry.find("batch", "v1", "jobs")

    def cronjob(self, name: str, schedule: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
        created, _ = self.objects.create(self.cj_rt, "default", body, WriteOptions())
        return created

    def created_at(self, name: str) -> dt.datetime:
        ts = self.store.get("batch/cronjobs", "default", name)["metadata"]["creationTimestamp"]
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))

    def tick(self, name: str, t: dt.datetime) -> dict[str, Any]:
        self.clock.set(t)
        self.controller.reconcile(("default", name))
        return self.store.get("batch/cronjobs", "default", name)

    def jobs(self) -> list[str]:
        return sorted(j["metadata"]["name"] for j in self.store.items("batch/jobs", "default"))

    def finish(self, job: str, outcome: str = "Complete", when: dt.datetime | None = None) -> None:
        current = self.store.get("batch/jobs", "default", job)
        stamp = (when or self.clock.now).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"conditions": [{"type": outcome, "status": "True"}], "startTime": stamp}
        if outcome == "Complete":
            status["completionTime"] = stamp
        self.objects.update(self.job_rt, "default", job, {**current, "status": status}, WriteOptions(), "status")

    def events(self, reason: str) -> list[str]:
        return [e["message"] for e in self.store.items("/events", "default") if e["reason"] == reason]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.store.close()


def minute_after(t: dt.datetime, minutes: int = 0) -> dt.datetime:
    """The start of the minute after ``t``, plus ``minutes``."""
    return t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1 + minutes)


def test_a_job_per_scheduled_time_named_by_its_minute(h: Harness) -> None:
    h.cronjob("tick", "* * * * *")
    first = minute_after(h.created_at("tick"))
    cj = h.tick("tick", first - dt.timedelta(seconds=1))
    assert h.jobs() == [] and not (cj.get("status") or {}).get("lastScheduleTime")
    cj = h.tick("tick", first + dt.timedelta(seconds=5))
    name = f"tick-{int(first.timestamp()) // 60}"
    assert h.jobs() == [name]
    job = h.store.get("batch/jobs", "default", name)
    assert job["metadata"]["annotations"][SCHEDULED] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob" and job["metadata"]["ownerReferences"][0][
        "controller"]
    assert cj["status"]["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [(a["kind"], a["name"]) for a in cj["status"]["active"]] == [("Job", name)]
    assert h.events("SuccessfulCreate") == [f"Created job {name}"]
    h.tick("tick", first + dt.timedelta(seconds=30))  # the same minute again: nothing new
    assert h.jobs() == [name]
    h.finish(name)
    cj = h.tick("tick", first + dt.timedelta(seconds=40))
    assert "active" not in cj["status"] and cj["status"]["lastSuccessfulTime"]
    assert h.events("SawCompletedJob") == [f"Saw completed job: {name}, condition: Complete"]


def test_concurrency_policies(h: Harness) -> None:
    for name, policy in (("allow", "Allow"), ("forbid", "Forbid"), ("replace", "Replace")):
        h.cronjob(name, "*/5 * * * *", concurrencyPolicy=policy)
    start = h.created_at("allow")
    first = start.replace(minute=start.minute - start.minute % 5, second=0, microsecond=0) + dt.timedelta(minutes=5)
    second = first + dt.timedelta(minutes=5)
    for name in ("allow", "forbid", "replace"):
        h.tick(name, first + dt.timedelta(seconds=1))
        h.tick(name, second + dt.timedelta(seconds=1))
    m1, m2 = int(first.timestamp()) // 60, int(second.timestamp()) // 60
    assert h.jobs() == sorted([f"allow-{m1}", f"allow-{m2}", f"forbid-{m1}", f"replace-{m2}"])
    assert h.events("JobAlreadyActive") == [
        "Not starting job because prior execution is running and concurrency policy is Forbid"]
    assert f"Deleted job replace-{m1}" in h.events("SuccessfulDelete")
    forbid = h.store.get("batch/cronjobs", "default", "forbid")
    assert [a["name"] for a in forbid["status"]["active"]] == [f"forbid-{m1}"]
    assert forbid["status"]["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    h.finish(f"forbid-{m1}")  # once the running one is done, the most recent missed time runs
    h.tick("forbid", second + dt.timedelta(seconds=20))
    assert f"forbid-{m2}" in h.jobs()


def test_suspend_deadline_and_missed_start_times(h: Harness) -> None:
    h.cronjob("paused", "* * * * *", suspend=True)
    h.cronjob("late", "0 * * * *", startingDeadlineSeconds=60)
    h.cronjob("lost", "* * * * *")
    start = h.created_at("lost")
    h.tick("paused", start + dt.timedelta(minutes=10))
    assert h.jobs() == []
    top = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    h.tick("late", top + dt.timedelta(minutes=30))  # 30 minutes late for a 60 s deadline: skipped
    assert h.jobs() == []
    h.tick("late", top + dt.timedelta(hours=1, seconds=30))  # within the deadline of the next hour
    assert h.jobs() == [f"late-{int((top + dt.timedelta(hours=1)).timestamp()) // 60}"]
    later = start + dt.timedelta(hours=3)  # 180 missed minutes: a warning, and only the latest runs
    h.tick("lost", later)
    latest = later.replace(second=0, microsecond=0)
    assert f"lost-{int(latest.timestamp()) // 60}" in h.jobs()
    assert len([j for j in h.jobs() if j.startswith("lost-")]) == 1
    [warning] = h.events("TooManyMissedTimes")
    assert warning.startswith("too many missed start times: 1") and warning.endswith(
        ". Set or decrease .spec.startingDeadlineSeconds or check clock skew")
    missed = int(warning.split(": ")[1].split(".")[0])
    assert missed in (179, 180)


def test_history_limits_and_time_zone(h: Harness) -> None:
    h.cronjob("hist", "* * * * *", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    start = minute_after(h.created_at("hist"))
    names = []
    for i in range(4):
        t = start + dt.timedelta(minutes=i)
        h.tick("hist", t + dt.timedelta(seconds=1))
        names.append(f"hist-{int(t.timestamp()) // 60}")
        h.finish(names[-1], "Failed" if i == 3 else "Complete", when=t)
    h.tick("hist", start + dt.timedelta(minutes=3, seconds=30))
    assert [j for j in h.jobs() if j.startswith("hist-")] == [names[2]]  # newest complete kept, failed none
    assert sorted(h.events("SuccessfulDelete")) == sorted(f"Deleted job {n}" for n in (names[0], names[1], names[3]))
    h.cronjob("seoul", "0 9 * * *", timeZone="Asia/Seoul")
    seoul = ZoneInfo("Asia/Seoul")
    created = h.created_at("seoul").astimezone(seoul)
    nine = created.replace(hour=9, minute=0, second=0, microsecond=0)
    nine = nine if nine > created else nine + dt.timedelta(days=1)
    h.tick("seoul", nine - dt.timedelta(minutes=1))
    assert not [j for j in h.jobs() if j.startswith("seoul-")]
    h.tick("seoul", nine + dt.timedelta(seconds=2))
    name = f"seoul-{int(nine.timestamp()) // 60}"
    job = h.store.get("batch/jobs", "default", name)
    assert job["metadata"]["annotations"][SCHEDULED] == nine.strftime("%Y-%m-%dT%H:%M:%S+09:00")


# -- live, with kubectl -------------------------------------------------------------------------------------------

def test_every_minute_schedule_runs_a_job_with_kubectl(runtime_lab: Lab, ns: str) -> None:
    """A CronJob made with ``kubectl create cronjob`` on the shortest schedule runs at the next minute."""
    lab = runtime_lab
    out = k(lab, "-n", ns, "create", "cronjob", "tick", "--image=localhost:5001/test/web:1",
            "--schedule=* * * * *", "--", "python", "-c", "print('tick')")
    assert out.strip() == "cronjob.batch/tick created"
    cj = json.loads(k(lab, "-n", ns, "get", "cronjob", "tick", "-o", "json"))
    assert cj["spec"]["concurrencyPolicy"] == "Allow" and cj["spec"]["successfulJobsHistoryLimit"] == 3
    header, row = k(lab, "-n", ns, "get", "cronjob", "tick").splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert row.split()[:6] == ["tick", "*", "*", "*", "*", "*"] and row.split()[6:10] == ["<none>", "False", "0",
                                                                                            "<none>"]
    created = dt.datetime.fromisoformat(cj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    due = created.replace(second=0) + dt.timedelta(minutes=1)
    deadline = time.monotonic() + (due - dt.datetime.now(UTC)).total_seconds() + 40
    job = None
    while time.monotonic() < deadline and job is None:
        items = json.loads(k(lab, "-n", ns, "get", "jobs", "-o", "json"))["items"]
        job = next((j for j in items if (j.get("status") or {}).get("succeeded")), None)
        time.sleep(1)
    assert job is not None, f"no Job completed by {due} + 40 s"
    assert job["metadata"]["name"] == f"tick-{int(due.timestamp()) // 60}"
    assert job["metadata"]["annotations"][SCHEDULED] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    logs = k(lab, "-n", ns, "logs", f"job/{job['metadata']['name']}")
    assert logs.strip() == "tick"
    kubectl(lab, "-n", ns, "wait", "cronjob/tick", "--for=jsonpath={.status.lastSuccessfulTime}", "--timeout=15s")
    cj = json.loads(k(lab, "-n", ns, "get", "cronjob", "tick", "-o", "json"))
    assert cj["status"]["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    described = k(lab, "-n", ns, "describe", "cronjob", "tick")
    assert "Schedule:                      * * * * *" in described and "Last Schedule Time:" in described, described
    assert f"Created job {job['metadata']['name']}" in described
    out = k(lab, "-n", ns, "create", "job", "by-hand", "--from=cronjob/tick")
    assert out.strip() == "job.batch/by-hand created"
    kubectl(lab, "-n", ns, "wait", "job/by-hand", "--for=condition=Complete", "--timeout=40s")
    manual = json.loads(k(lab, "-n", ns, "get", "job", "by-hand", "-o", "json"))
    assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert manual["metadata"]["ownerReferences"][0]["name"] == "tick"


def test_the_api_server_validates_schedules_and_time_zones(runtime_lab: Lab, ns: str) -> None:
    lab = runtime_lab

    def create(schedule: str, *extra: str) -> str:
        res = kubectl(lab, "-n", ns, "create", "cronjob", "bad", "--image=busybox", f"--schedule={schedule}",
                      *extra, check=False)
        assert res.returncode == 1
        return res.stderr.strip()

    assert create("61 * * * *") == ('error: failed to create cronjob: CronJob.batch "bad" is invalid: spec.schedule: '
                                    'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61')
    assert create("CRON_TZ=UTC * * * * *").endswith(
        'spec.schedule: Invalid value: "CRON_TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
        "field instead")
    manifest = json.dumps({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bad"}, "spec": {
        "schedule": "0 3 * * *", "timeZone": "Europe/Pariss", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
    res = kubectl(lab, "-n", ns, "create", "-f", "-", input=manifest, check=False)
    assert res.stderr.strip() == ('The CronJob "bad" is invalid: spec.timeZone: Invalid value: "Europe/Pariss": '
                                  "unknown time zone Europe/Pariss")
    good = manifest.replace("Europe/Pariss", "Europe/Paris")
    k(lab, "-n", ns, "create", "-f", "-", input=good)
    row = k(lab, "-n", ns, "get", "cronjob", "bad", "--no-headers").split()
    assert row[:7] == ["bad", "0", "3", "*", "*", "*", "Europe/Paris"]
