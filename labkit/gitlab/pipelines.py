"""Pipelines and jobs with GitLab's semantics (the ``Pipelines`` contract of ``model``).

A request (push, API, web) becomes a pipeline of jobs planned from ``.gitlab-ci.yml`` (``ci``). Jobs move
through GitLab's statuses as its atomic processing does (``statuses``): ``created`` until the earlier stages
(or the ``needs``) are complete, then ``pending`` (or ``manual``, ``scheduled`` for ``when: delayed``,
``waiting_for_resource`` behind a ``resource_group``), or ``skipped``; the runner's workers (``concurrent``
of them) take pending jobs, oldest first. Retries (``retry:``, the API's job and pipeline retry) clone a job
and mark the old one ``retried``; cancel kills running jobs; a new pipeline on a ref cancels older ones whose
started jobs are all ``interruptible``. Records are GitLab's API JSON, kept in SQLite under the state folder
(keys starting with ``_`` are internal and never shown); traces and artifacts are files beside it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.checkout import Checkout
from ..core.component import Context
from ..core.store import Database
from ..endpoints import NexusEndpoint, RegistryEndpoint
from ..images.pipindex import pip_env
from ..images.pull import ImagePuller
from . import junit
from .ci.plan import plan
from .ci.variables import expand_all, pipeline_variables, push_option_variables, skip_ci
from .instance_variables import InstanceVariables
from .model import FINISHED, PipelineError, PipelinePlan, PipelineRequest, Project, Repos
from .runner import JobResult, JobRun, Runner, RunnerConfig
from .statuses import CANCELABLE, COMPLETED, composite, runs_after
from .store import now
from .variables import job_variables, server_variables

SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, pipeline_id INTEGER NOT NULL, doc TEXT NOT NULL);
"""
DEFAULT_TIMEOUT = 3600  # a project's default job timeout
RETRY_REASONS = {"always", "unknown_failure", "script_failure", "api_failure", "stuck_or_timeout_failure",
                 "runner_system_failure", "runner_unsupported", "stale_schedule", "job_execution_timeout",
                 "archived_failure", "unmet_prerequisites", "scheduler_failure", "data_integrity_failure"}
NO_JOBS = ("Pipeline will not run for the selected trigger. The rules configuration prevented any jobs from "
           "being added to the pipeline.")
Planner = Callable[[PipelineRequest, dict[str, str]], PipelinePlan]


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _seconds(spec: str | None) -> float:
    """``start_in``: ``30 seconds``, ``5 minutes``, ``1 hour``, ``1 day`` (GitLab's durations, simply)."""
    if not spec:
        return 0.0
    units = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600,
             "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
    total, number = 0.0, None
    for word in spec.replace(",", " ").split():
        if word.replace(".", "", 1).isdigit():
            number = float(word)
        else:
            unit = word.lower().rstrip("s") or "s"
            total += (number if number is not None else 1) * units.get(unit, units.get(word.lower(), 1))
            number = None
    return total + (number or 0)


_TEXT = {"success": ("Passed", "passed"), "failed": ("Failed", "failed"), "running": ("Running", "running"),
         "pending": ("Pending", "pending"), "canceled": ("Canceled", "canceled"), "skipped": ("Skipped", "skipped"),
         "manual": ("Blocked", "waiting for manual action"), "created": ("Created", "created"),
         "scheduled": ("Scheduled", "waiting for delayed job"), "preparing": ("Preparing", "preparing"),
         "waiting_for_resource": ("Waiting", "waiting for resource"), "canceling": ("Canceling", "canceling")}


def _detailed_status(pipeline: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """What GitLab's UI shows for the pipeline's status (``passed with warnings`` when allowed failures failed)."""
    status = pipeline["status"]
    text, label = _TEXT.get(status, (status.capitalize(), status))
    warned = status == "success" and any(j["allow_failure"] and j["status"] in ("failed", "canceled") for j in jobs)
    group = "success-with-warnings" if warned else status
    if warned:
        text, label = "Warning", "passed with warnings"
    path = "/" + pipeline["web_url"].split("://", 1)[-1].split("/", 1)[-1]
    return {"icon": f"status_{'warning' if warned else status}", "text": text, "label": label, "group": group,
            "tooltip": label, "has_details": True, "details_path": path, "illustration": None,
            "favicon": f"/assets/ci_favicons/favicon_status_{'warning' if warned else status}.png"}


@dataclass(frozen=True)
class CiSettings:
    """Where the lab's GitLab and registry are (for the predefined variables)."""

    server_url: str  # CI_SERVER_URL
    registry: str = ""  # CI_REGISTRY: the lab registry's name for images (localhost:5001)


class PipelineService:
    """The ``Pipelines`` contract: create, read, cancel, retry and play, run by ``runner``'s workers."""

    def __init__(self, state_dir: Path, repos: Repos, settings: CiSettings, runner: Runner,
                 planner: Planner | None = None) -> None:
        self.state_dir = state_dir
        self.repos = repos
        self.settings = settings
        self.runner = runner
        self.planner = planner or self._plan
        self.instance_variables: InstanceVariables | None = None  # the instance's CI/CD variables (the component's)
        self.creation_observers: list[Callable[[PipelineRequest, float], None]] = []  # (request, seconds) per pipeline
        self.db = Database(state_dir / "pipelines.sqlite", SCHEMA)
        self.traces = state_dir / "traces"
        self.artifact_root = state_dir / "artifacts"
        self._cond = threading.Condition(threading.RLock())
        self._creating = threading.Lock()
        self._pipelines: dict[int, dict[str, Any]] = {}
        self._jobs: dict[int, dict[str, Any]] = {}
        self._cancels: dict[int, threading.Event] = {}
        self._stopping = False
        self.expiry_interval = 60.0  # seconds between two looks for expired artifacts
        self._load()
        self._threads = [threading.Thread(target=self._worker, args=(slot,), name=f"ci-runner-{slot}", daemon=True)
                         for slot in range(runner.config.concurrent)]
        self._threads.append(threading.Thread(target=self._clock, name="ci-delayed", daemon=True))
        for t in self._threads:
            t.start()

    # -- storage -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        for row in self.db.query("SELECT doc FROM pipelines"):
            doc = json.loads(row["doc"])
            self._pipelines[doc["id"]] = doc
        for row in self.db.query("SELECT doc FROM jobs"):
            doc = json.loads(row["doc"])
            self._jobs[doc["id"]] = doc
        lost = [j for j in self._jobs.values() if j["status"] in ("running", "preparing")]
        with self._cond:
            for job in lost:  # the daemon stopped under them: GitLab calls such jobs stuck
                self._finish(job, JobResult("failed", "stuck_or_timeout_failure"))
            for pid in {j["pipeline"]["id"] for j in lost}:
                self._process(pid)

    def _save(self, pipeline: dict[str, Any] | None = None, jobs: list[dict[str, Any]] = ()) -> None:
        with self.db.transaction() as c:
            if pipeline is not None:
                c.execute("INSERT OR REPLACE INTO pipelines (id, project_id, doc) VALUES (?, ?, ?)",
                          (pipeline["id"], pipeline["project_id"], json.dumps(pipeline)))
            for job in jobs:
                c.execute("INSERT OR REPLACE INTO jobs (id, pipeline_id, doc) VALUES (?, ?, ?)",
                          (job["id"], job["pipeline"]["id"], json.dumps(job)))

    def close(self) -> None:
        """Cancel what runs, stop the workers."""
        with self._cond:
            self._stopping = True
            for event in self._cancels.values():
                event.set()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=10)
        self.db.close()

    # -- planning ------------------------------------------------------------------------------------------
    def _plan(self, req: PipelineRequest, variables: dict[str, str]) -> PipelinePlan:
        return plan(self.repos, req, predefined=variables)

    def _instance(self, protected_ref: bool, variables: dict[str, str]) -> dict[str, str]:
        """``variables`` with the instance's CI/CD variables over them (GitLab's precedence: above the
        ``.gitlab-ci.yml`` variables, dotenv reports and predefined variables, below the pipeline's own)."""
        if self.instance_variables is None:
            return variables
        return self.instance_variables.env(protected_ref, variables)

    # -- creation ------------------------------------------------------------------------------------------
    def create(self, req: PipelineRequest) -> dict[str, Any] | None:
        started = time.perf_counter()
        with self._creating:  # one at a time: the id is taken before the planner reads the repository
            pipeline = self._create(req)
        if pipeline is not None:
            for observe in self.creation_observers:  # the metrics: creation time, active jobs
                observe(req, time.perf_counter() - started)
        return pipeline

    def _create(self, req: PipelineRequest) -> dict[str, Any] | None:
        with self._cond:
            pid = max(self._pipelines, default=0) + 1
            iid = 1 + max((p["iid"] for p in self._pipelines.values() if p["project_id"] == req.project.id),
                          default=0)
            created = now()
            variables = pipeline_variables(req, pipeline_id=pid, iid=iid, extra=server_variables(
                self.settings.server_url, self.settings.registry, req.project, pid, created))
            pipeline = self._new_pipeline(req, pid, iid, created, variables)
            if skip_ci(req):
                pipeline["status"] = "skipped"
                self._pipelines[pid] = pipeline
                self._save(pipeline)
                return _public(pipeline)
        protected = req.ref == req.project.default_branch and not req.tag
        plan = self.planner(req, self._instance(protected, variables))  # reads the repository: outside the lock
        with self._cond:
            if plan.workflow_blocked or (not plan.errors and not plan.jobs):
                if req.source == "push":
                    return None
                message = "Pipeline filtered out by workflow rules." if plan.workflow_blocked else NO_JOBS
                raise PipelineError(400, {"message": {"base": [message]}})
            self._pipelines[pid] = pipeline
            if plan.errors:
                pipeline.update(status="failed", yaml_errors=", ".join(plan.errors), finished_at=now(),
                                updated_at=now())
                self._save(pipeline)
                if req.source != "push":
                    raise PipelineError(400, {"message": {"base": list(plan.errors)}})
                return _public(pipeline)
            pipeline["_stages"] = list(plan.stages)
            jobs = []
            next_id = max(self._jobs, default=0) + 1
            for i, jp in enumerate(plan.jobs):
                job = self._new_job(pipeline, next_id + i, dataclasses.asdict(jp), plan.stages)
                self._jobs[job["id"]] = job
                jobs.append(job)
            self._save(pipeline, jobs)
            self._auto_cancel(pipeline)
            self._process(pid)
            return _public(pipeline)

    def _new_pipeline(self, req: PipelineRequest, pid: int, iid: int, created: str,
                      variables: dict[str, str]) -> dict[str, Any]:
        return {
            "id": pid, "iid": iid, "project_id": req.project.id, "sha": req.sha, "ref": req.ref, "status": "created",
            "source": req.source, "created_at": created, "updated_at": created,
            "web_url": f"{req.project.web_url}/-/pipelines/{pid}", "before_sha": req.before_sha or "0" * 40,
            "tag": req.tag, "yaml_errors": None, "user": req.user, "started_at": None, "finished_at": None,
            "committed_at": None, "duration": None, "queued_duration": None, "coverage": None, "name": None,
            "detailed_status": None,
            "_project": dataclasses.asdict(req.project), "_variables": variables,
            "_request_variables": {**push_option_variables(req.push_options), **req.variables},
            "_commit_message": req.commit_message, "_stages": [],
        }

    def _new_job(self, pipeline: dict[str, Any], job_id: int, plan: dict[str, Any],
                 stages: list[str]) -> dict[str, Any]:
        project = pipeline["_project"]
        message = pipeline["_commit_message"]
        return {
            "id": job_id, "name": plan["name"], "stage": plan["stage"], "status": "created", "ref": pipeline["ref"],
            "tag": pipeline["tag"], "coverage": None, "allow_failure": bool(plan["allow_failure"]),
            "created_at": now(), "started_at": None, "finished_at": None, "erased_at": None, "duration": None,
            "queued_duration": None, "user": pipeline["user"], "failure_reason": None, "retried": False,
            "when": plan["when"], "manual": plan["when"] == "manual", "archived": False,
            "commit": {"id": pipeline["sha"], "short_id": pipeline["sha"][:8], "title": message.split("\n", 1)[0],
                       "message": message, "created_at": pipeline["created_at"]},
            "pipeline": {"id": pipeline["id"], "iid": pipeline["iid"], "project_id": pipeline["project_id"],
                         "ref": pipeline["ref"], "sha": pipeline["sha"], "status": pipeline["status"],
                         "source": pipeline["source"], "created_at": pipeline["created_at"],
                         "updated_at": pipeline["updated_at"], "web_url": pipeline["web_url"]},
            "web_url": f"{project['web_url']}/-/jobs/{job_id}", "project": {"ci_job_token_scope_enabled": False},
            "artifacts_file": None, "artifacts": [], "artifacts_expire_at": None, "tag_list": list(plan["tags"]),
            "runner": None, "runner_manager": None, "scheduled_at": None,
            "_plan": plan, "_stage_idx": stages.index(plan["stage"]) if plan["stage"] in stages else 0,
            "_attempt": 0, "_token": None, "_dotenv": {}, "_queued": None, "_exit_code": None,
        }

    # -- processing (GitLab's atomic processing service) ----------------------------------------------------
    def _latest(self, pid: int) -> list[dict[str, Any]]:
        return sorted((j for j in self._jobs.values() if j["pipeline"]["id"] == pid and not j["retried"]),
                      key=lambda j: (j["_stage_idx"], j["id"]))

    def _process(self, pid: int) -> None:
        """Move every ``created`` job whose upstream is complete on; then the resource groups, the status."""
        pipeline = self._pipelines[pid]
        changed: dict[int, dict[str, Any]] = {}
        progress = True
        while progress:
            progress = False
            jobs = self._latest(pid)
            by_name = {j["name"]: j for j in jobs}
            for job in jobs:
                if job["status"] != "created":
                    continue
                needs = job["_plan"]["needs"]
                if needs is not None:
                    upstream = composite([by_name[n["job"]] for n in needs if n["job"] in by_name], dag=True)
                else:
                    upstream = composite([j for j in jobs if j["_stage_idx"] < job["_stage_idx"]])
                upstream = upstream or "success"
                if upstream not in COMPLETED:
                    continue
                if runs_after(job["_plan"]["when"], upstream, needs is not None):
                    self._start(job)
                else:
                    self._set(job, "skipped")
                changed[job["id"]] = job
                progress = True
        changed.update(self._assign_resources(pipeline["project_id"]))
        self._update_status(pipeline)
        self._save(pipeline, list(changed.values()))
        self._cond.notify_all()

    def _start(self, job: dict[str, Any]) -> None:
        when = job["_plan"]["when"]
        if when == "manual":
            self._set(job, "manual")
        elif when == "delayed":
            at = time.time() + _seconds(job["_plan"]["start_in"])
            job["scheduled_at"] = now(at)
            self._set(job, "scheduled")
        else:
            self._enqueue(job)

    def _enqueue(self, job: dict[str, Any]) -> None:
        job["_queued"] = time.time()
        self._set(job, "waiting_for_resource" if job["_plan"]["resource_group"] else "pending")

    def _assign_resources(self, project_id: int) -> dict[int, dict[str, Any]]:
        """One job at a time per ``resource_group`` (oldest waiting first)."""
        changed: dict[int, dict[str, Any]] = {}
        jobs = [j for j in self._jobs.values() if j["pipeline"]["project_id"] == project_id
                and j["_plan"]["resource_group"] and not j["retried"]]
        for group in {j["_plan"]["resource_group"] for j in jobs}:
            members = [j for j in jobs if j["_plan"]["resource_group"] == group]
            if any(j["status"] in ("pending", "running", "preparing") for j in members):
                continue
            waiting = sorted((j for j in members if j["status"] == "waiting_for_resource"), key=lambda j: j["id"])
            if waiting:
                self._set(waiting[0], "pending")
                changed[waiting[0]["id"]] = waiting[0]
                self._save(self._pipelines[waiting[0]["pipeline"]["id"]])
        return changed

    def _set(self, job: dict[str, Any], status: str) -> None:
        job["status"] = status
        if status in COMPLETED and not job["finished_at"] and status != "skipped":
            job["finished_at"] = now()
            started = _epoch(job["started_at"])
            job["duration"] = round(time.time() - started, 3) if started else None

    def _update_status(self, pipeline: dict[str, Any]) -> None:
        jobs = self._latest(pipeline["id"])
        status = composite(jobs) or "skipped"
        if status != pipeline["status"]:
            pipeline["status"] = status
            pipeline["updated_at"] = now()
        if status in ("running", "success", "failed", "canceled") and not pipeline["started_at"]:
            starts = [j["started_at"] for j in jobs if j["started_at"]]
            pipeline["started_at"] = min(starts) if starts else None
        if status in FINISHED:
            if not pipeline["finished_at"]:
                pipeline["finished_at"] = now()
            started = _epoch(pipeline["started_at"])
            ended = _epoch(pipeline["finished_at"])
            pipeline["duration"] = round(ended - started) if started and ended else None
        else:
            pipeline["finished_at"] = None
            pipeline["duration"] = None
        pipeline["detailed_status"] = _detailed_status(pipeline, jobs)
        for job in jobs:
            job["pipeline"].update(status=status, updated_at=pipeline["updated_at"])
        coverage = [float(j["coverage"]) for j in jobs if j.get("coverage") is not None]
        pipeline["coverage"] = f"{sum(coverage) / len(coverage):.2f}" if coverage else None

    def _auto_cancel(self, pipeline: dict[str, Any]) -> None:
        """Older pipelines of the ref are canceled when no non-interruptible job of theirs has started."""
        for other in self._pipelines.values():
            if (other["project_id"] != pipeline["project_id"] or other["ref"] != pipeline["ref"]
                    or other["id"] >= pipeline["id"] or other["status"] in FINISHED or other["source"] != "push"
                    or pipeline["source"] != "push"):
                continue
            started = [j for j in self._latest(other["id"]) if j["started_at"]]
            if all(j["_plan"]["interruptible"] for j in started):
                self._cancel_pipeline(other)

    # -- the workers ---------------------------------------------------------------------------------------
    def _worker(self, slot: int) -> None:
        while True:
            with self._cond:
                job = None
                while not self._stopping:
                    pending = [j for j in self._jobs.values() if j["status"] == "pending"
                               and self.runner.config.can_run(j["_plan"]["tags"])]
                    if pending:
                        job = min(pending, key=lambda j: j["id"])
                        break
                    self._cond.wait(timeout=1.0)
                if self._stopping or job is None:
                    return
                run = self._prepare(job, slot)
            result = self.runner.run(run, slot)
            with self._cond:
                self._cancels.pop(job["id"], None)
                self._finish(job, result)
                self._process(job["pipeline"]["id"])

    def _prepare(self, job: dict[str, Any], slot: int) -> JobRun:
        pipeline = self._pipelines[job["pipeline"]["id"]]
        project = Project(**pipeline["_project"])
        token = f"glcbt-{secrets.token_urlsafe(20)}"
        job.update(status="running", started_at=now(), _token=token,
                   runner={"id": 1, "description": self.runner.config.name, "active": True, "paused": False,
                           "is_shared": True, "runner_type": "instance_type", "name": "gitlab-runner",
                           "online": True, "status": "online"})
        job["queued_duration"] = round(time.time() - (job["_queued"] or time.time()), 3)
        self._update_status(pipeline)
        self._save(pipeline, [job])
        timeout = int(job["_plan"]["timeout"] or DEFAULT_TIMEOUT)
        project_dir = self.runner.config.builds_dir / str(slot) / project.path_with_namespace
        dependencies, dotenv = self._dependencies(job)
        variables = dict(pipeline["_variables"])
        variables.update(job_variables(job, project.web_url, str(project_dir), str(self.runner.config.builds_dir),
                                       token, slot, job["_plan"]["image"], timeout))
        matrix = re.match(r"^(.+): \[.*\]$", job["name"])
        if matrix:  # parallel:matrix: the job's place among its set, as for parallel: N
            siblings = [j["id"] for j in self._latest(pipeline["id"])
                        if j["name"].startswith(f"{matrix.group(1)}: [") and j["name"].endswith("]")]
            siblings = sorted(set(siblings) | {job["id"]})
            variables.update(CI_NODE_INDEX=str(siblings.index(job["id"]) + 1), CI_NODE_TOTAL=str(len(siblings)))
        variables = expand_all(job["_plan"]["variables"], variables)
        variables.update(dotenv)
        variables = self._instance(pipeline["ref"] == project.default_branch and not pipeline["tag"], variables)
        variables = expand_all(pipeline["_request_variables"], variables)
        cancel = self._cancels.setdefault(job["id"], threading.Event())
        return JobRun(job=copy.deepcopy(job), project=project, sha=pipeline["sha"], ref=pipeline["ref"],
                      variables=variables, timeout=timeout, trace=self.traces / f"{job['id']}.log",
                      artifacts_dir=self.artifact_root / str(job["id"]), dependencies=dependencies, cancel=cancel)

    def _dependencies(self, job: dict[str, Any]) -> tuple[list[tuple[int, str, Path]], dict[str, str]]:
        """The artifacts (and dotenv variables) a job gets: its ``dependencies``, else its ``needs``, else every
        job of the earlier stages."""
        plan = job["_plan"]
        jobs = self._latest(job["pipeline"]["id"])
        if plan["dependencies"] is not None:
            names = set(plan["dependencies"])
            sources = [j for j in jobs if j["name"] in names]
        elif plan["needs"] is not None:
            names = {n["job"] for n in plan["needs"] if n.get("artifacts", True)}
            sources = [j for j in jobs if j["name"] in names]
        else:
            sources = [j for j in jobs if j["_stage_idx"] < job["_stage_idx"]]
        archives, dotenv = [], {}
        for src in sources:
            archive = self.artifact_root / str(src["id"]) / "artifacts.zip"
            if src["artifacts_file"] and archive.exists():
                archives.append((src["id"], src["name"], archive))
            dotenv.update(src["_dotenv"])
        return archives, dotenv

    def _finish(self, job: dict[str, Any], result: JobResult) -> None:
        plan = job["_plan"]
        if job["status"] == "canceled":  # canceled while it ran: whatever the runner saw last
            result.status, result.failure_reason = "canceled", None
        job["_token"] = None
        job["_exit_code"] = result.exit_code
        job["_dotenv"] = result.dotenv
        if result.status == "failed" and plan["allow_failure_exit_codes"]:
            job["allow_failure"] = result.exit_code in plan["allow_failure_exit_codes"]
        self._record_artifacts(job, result)
        job["coverage"] = self._coverage(job)
        job["failure_reason"] = result.failure_reason if result.status == "failed" else None
        self._set(job, result.status)
        pipeline = self._pipelines[job["pipeline"]["id"]]
        if result.status == "failed" and self._auto_retry(job, result):
            clone = self._clone(job, pipeline)
            self._enqueue(clone)
            self._save(pipeline, [job, clone])
        else:
            self._save(pipeline, [job])

    def _coverage(self, job: dict[str, Any]) -> float | None:
        """``coverage:``: the first number in the last capture (or match) of the regular expression on the trace's
        last matching line, as GitLab reads it."""
        pattern = job["_plan"]["coverage"]
        trace = self.traces / f"{job['id']}.log"
        if not pattern or not trace.exists():
            return None
        pattern = pattern[1:-1] if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/") else pattern
        try:
            regex = re.compile(pattern)
        except re.error:
            return None
        for line in reversed(trace.read_text(errors="replace").splitlines()):  # as GitLab scans it: last line first
            matches = list(regex.finditer(line))
            if not matches:
                continue
            last = matches[-1]
            text = next((g for g in reversed(last.groups()) if g is not None), last.group(0))
            number = re.search(r"\d+(?:\.\d+)?", text)
            if number:
                return float(number.group(0))
        return None

    def _record_artifacts(self, job: dict[str, Any], result: JobResult) -> None:
        files = []
        if result.archive and result.archive.exists():
            size = result.archive.stat().st_size
            job["artifacts_file"] = {"filename": "artifacts.zip", "size": size}
            files.append({"file_type": "archive", "size": size, "filename": "artifacts.zip", "file_format": "zip"})
        for kind, path in result.reports.items():
            files.append({"file_type": kind, "size": path.stat().st_size, "filename": path.name,
                          "file_format": "gzip"})
        trace = self.traces / f"{job['id']}.log"
        if trace.exists():
            files.append({"file_type": "trace", "size": trace.stat().st_size, "filename": "job.log",
                          "file_format": None})
        job["artifacts"] = files
        expire = (job["_plan"]["artifacts"] or {}).get("expire_in")
        if files and expire and expire != "never":
            at = time.time() + _seconds(str(expire))
            job["artifacts_expire_at"] = now(at)

    def _auto_retry(self, job: dict[str, Any], result: JobResult) -> bool:
        retry = job["_plan"]["retry"] or {}
        if job["_attempt"] >= int(retry.get("max", 0)):
            return False
        whens = retry.get("when") or ["always"]
        whens = [whens] if isinstance(whens, str) else whens
        codes = retry.get("exit_codes") or []
        codes = [codes] if isinstance(codes, int) else codes
        by_reason = "always" in whens or (result.failure_reason in whens and result.failure_reason in RETRY_REASONS)
        by_code = result.exit_code in codes
        if retry.get("when") is None and codes:
            return by_code
        return by_reason or by_code

    def _clone(self, job: dict[str, Any], pipeline: dict[str, Any]) -> dict[str, Any]:
        job["retried"] = True
        clone = self._new_job(pipeline, max(self._jobs) + 1, job["_plan"], pipeline["_stages"])
        clone["_attempt"] = job["_attempt"] + 1
        clone["user"] = job["user"]
        self._jobs[clone["id"]] = clone
        return clone

    def _expire_artifacts(self) -> None:
        """Artifacts past their ``expire_in`` are deleted, as GitLab's expiry worker does (reports and trace stay)."""
        for job in self._jobs.values():
            at = _epoch(job["artifacts_expire_at"]) if job["artifacts_file"] else None
            if at is not None and at <= time.time():
                (self.artifact_root / str(job["id"]) / "artifacts.zip").unlink(missing_ok=True)
                job["artifacts_file"] = None
                job["artifacts"] = [a for a in job["artifacts"] if a["file_type"] != "archive"]
                self._save(None, [job])

    def _clock(self) -> None:
        """Delayed jobs start when their time comes; expired artifacts go (once a minute)."""
        last_expiry = float("-inf")
        while True:
            with self._cond:
                if self._stopping:
                    return
                if time.monotonic() - last_expiry >= self.expiry_interval:
                    self._expire_artifacts()
                    last_expiry = time.monotonic()
                due = [j for j in self._jobs.values() if j["status"] == "scheduled"
                       and (_epoch(j["scheduled_at"]) or 0) <= time.time()]
                for job in due:
                    self._enqueue(job)
                    self._save(None, [job])
                for pid in {j["pipeline"]["id"] for j in due}:
                    self._process(pid)
                self._cond.wait(timeout=0.5)

    # -- reading -------------------------------------------------------------------------------------------
    def list(self, project_id: int) -> list[dict[str, Any]]:
        with self._cond:
            return [_public(p) for p in sorted(self._pipelines.values(), key=lambda p: -p["id"])
                    if p["project_id"] == project_id]

    def get(self, project_id: int, pipeline_id: int) -> dict[str, Any] | None:
        with self._cond:
            p = self._pipelines.get(pipeline_id)
            return _public(p) if p and p["project_id"] == project_id else None

    def jobs(self, project_id: int, pipeline_id: int | None = None,
             include_retried: bool = True) -> list[dict[str, Any]]:
        """Newest first, as GitLab lists them (the API leaves retried ones out unless asked)."""
        with self._cond:
            return [_public(j) for j in sorted(self._jobs.values(), key=lambda j: -j["id"])
                    if j["pipeline"]["project_id"] == project_id
                    and (pipeline_id is None or j["pipeline"]["id"] == pipeline_id)
                    and (include_retried or not j["retried"])]

    def job(self, project_id: int, job_id: int) -> dict[str, Any] | None:
        with self._cond:
            j = self._jobs.get(job_id)
            return _public(j) if j and j["pipeline"]["project_id"] == project_id else None

    def trace(self, project_id: int, job_id: int) -> str:
        if self.job(project_id, job_id) is None:
            raise PipelineError(404, {"message": "404 Job Not Found"})
        path = self.traces / f"{job_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def artifacts(self, project_id: int, job_id: int) -> Path | None:
        job = self.job(project_id, job_id)
        path = self.artifact_root / str(job_id) / "artifacts.zip"
        return path if job and job["artifacts_file"] and path.exists() else None

    def report(self, project_id: int, job_id: int, kind: str) -> bytes | None:
        """A job's ``junit`` or ``dotenv`` report (uncompressed), or None."""
        import gzip

        job = self.job(project_id, job_id)
        entry = next((a for a in (job or {}).get("artifacts", []) if a["file_type"] == kind), None)
        if not job or not entry:
            return None
        return gzip.decompress((self.artifact_root / str(job_id) / entry["filename"]).read_bytes())

    def test_report(self, project_id: int, pipeline_id: int) -> dict[str, Any]:
        """The pipeline's JUnit reports as GitLab's ``test_report`` (one suite per job that uploaded one)."""
        import gzip

        with self._cond:
            self._own_pipeline(project_id, pipeline_id)
            jobs = [j for j in self._latest(pipeline_id) if any(a["file_type"] == "junit" for a in j["artifacts"])]
        suites = []
        for job in sorted(jobs, key=lambda j: j["id"]):
            folder = self.artifact_root / str(job["id"])
            files = sorted(folder.glob("junit*.xml.gz"))
            suites.append(junit.suite(job["name"], [gzip.decompress(f.read_bytes()) for f in files]))
        return junit.report(suites)

    def job_for_token(self, token: str) -> dict[str, Any] | None:
        with self._cond:
            job = next((j for j in self._jobs.values() if j["_token"] == token and j["status"] == "running"), None)
            return _public(job) if job else None

    def wait(self, project_id: int, pipeline_id: int, timeout: float = 120.0) -> dict[str, Any]:
        """Block until the pipeline is finished or waits for someone (manual); returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                p = self._pipelines.get(pipeline_id)
                if p is None or p["project_id"] != project_id:
                    raise PipelineError(404, {"message": "404 Not found"})
                if p["status"] in (*FINISHED, "manual"):
                    return _public(p)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"pipeline {pipeline_id} is still {p['status']} after {timeout}s")
                self._cond.wait(timeout=min(left, 0.5))

    # -- actions -------------------------------------------------------------------------------------------
    def _own_job(self, project_id: int, job_id: int) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None or job["pipeline"]["project_id"] != project_id:
            raise PipelineError(404, {"message": "404 Job Not Found"})
        return job

    def _own_pipeline(self, project_id: int, pipeline_id: int) -> dict[str, Any]:
        p = self._pipelines.get(pipeline_id)
        if p is None or p["project_id"] != project_id:
            raise PipelineError(404, {"message": "404 Not found"})
        return p

    def _cancel_job(self, job: dict[str, Any]) -> None:
        """Canceled at once, as GitLab records it; a running job's processes are killed by its worker."""
        if job["status"] == "running":
            self._cancels.setdefault(job["id"], threading.Event()).set()
        if job["status"] in CANCELABLE:
            self._set(job, "canceled")

    def _cancel_pipeline(self, pipeline: dict[str, Any]) -> None:
        jobs = [j for j in self._latest(pipeline["id"]) if j["status"] in CANCELABLE]
        for job in jobs:
            self._cancel_job(job)
        self._update_status(pipeline)
        self._save(pipeline, jobs)

    def cancel(self, project_id: int, pipeline_id: int) -> dict[str, Any]:
        with self._cond:
            pipeline = self._own_pipeline(project_id, pipeline_id)
            self._cancel_pipeline(pipeline)
            self._cond.notify_all()
            return _public(pipeline)

    def cancel_job(self, project_id: int, job_id: int) -> dict[str, Any]:
        with self._cond:
            job = self._own_job(project_id, job_id)
            self._cancel_job(job)
            self._process(job["pipeline"]["id"])
            return _public(job)

    def play(self, project_id: int, job_id: int) -> dict[str, Any]:
        with self._cond:
            job = self._own_job(project_id, job_id)
            if job["status"] not in ("manual", "scheduled"):
                raise PipelineError(400, {"message": "400 Unplayable Job"})
            self._enqueue(job)
            self._reset_skipped(self._pipelines[job["pipeline"]["id"]])  # jobs that waited for it run after it
            self._process(job["pipeline"]["id"])
            return _public(job)

    def retry_job(self, project_id: int, job_id: int) -> dict[str, Any]:
        with self._cond:
            job = self._own_job(project_id, job_id)
            if job["retried"] or job["status"] not in ("success", "failed", "canceled"):
                raise PipelineError(403, {"message": "403 Forbidden - Job is not retryable"})
            pipeline = self._pipelines[job["pipeline"]["id"]]
            clone = self._clone(job, pipeline)
            self._enqueue(clone)
            self._reset_skipped(pipeline)
            self._save(pipeline, [job, clone])
            self._process(pipeline["id"])
            return _public(clone)

    def retry(self, project_id: int, pipeline_id: int) -> dict[str, Any]:
        with self._cond:
            pipeline = self._own_pipeline(project_id, pipeline_id)
            changed = []
            for job in self._latest(pipeline_id):
                if job["status"] in ("failed", "canceled"):
                    changed += [job, self._clone(job, pipeline)]
            self._reset_skipped(pipeline)
            pipeline["finished_at"] = None
            self._save(pipeline, changed)
            self._process(pipeline_id)
            return _public(pipeline)

    def _reset_skipped(self, pipeline: dict[str, Any]) -> None:
        """Skipped jobs (and blocked manual ones after a retry) are processed again."""
        reset = [j for j in self._latest(pipeline["id"]) if j["status"] == "skipped"]
        for job in reset:
            job.update(status="created", finished_at=None, duration=None)
        self._save(None, reset)


def for_lab(ctx: Context, repos: Repos, base_url: str) -> PipelineService:
    """The lab's pipeline service: its runner's ``config.toml`` in the state folder, job images from the lab
    registry, kaniko's stand-in pushing there, the lab's kubeconfig for ``kubectl`` (as a Kubernetes executor's
    service account), ``PIP_INDEX_URL``: the lab's Nexus group (``pypi-group``), else the shop's wheelhouse for
    ``pip install`` (no index is asked)."""
    state = ctx.state_dir("gitlab") / "ci"
    config = RunnerConfig.load(state / "runner" / "config.toml")
    registry = ctx.endpoints.get("registry")
    mirrors: dict[str, str] = {}
    extra: dict[str, str] = {}
    image_host = ""
    if isinstance(registry, RegistryEndpoint):
        image_host = registry.pull or registry.push
        mirrors = {h: registry.url for h in {registry.pull, registry.push} if h}
        extra["LABKIT_REGISTRY_HOSTS"] = ",".join(f"{h}={u}" for h, u in mirrors.items())  # kaniko pushes with the
        # job's own Docker config (HARBOR_USER/HARBOR_PASSWORD, registry_access.py), never the runner's
    if ctx.paths.kubeconfig.exists() or "kubernetes" in ctx.endpoints:
        extra["KUBECONFIG"] = str(ctx.paths.kubeconfig)
    nexus = ctx.endpoints.get("nexus")  # every pip install of a job goes through Nexus' group, else the wheelhouse
    extra.update(pip_env(Checkout.find().wheelhouse, nexus.pypi if isinstance(nexus, NexusEndpoint) else None))
    puller = ImagePuller(state / "images", mirrors) if mirrors else None
    runner = Runner(config, repos, mirrors, puller.pull if puller else None, extra)
    return PipelineService(state, repos, CiSettings(base_url, image_host), runner)
