"""Running a retention policy: one task per repository in its scope, each deciding what the rules keep and
deleting the rest through Harbor's own delete path (so every delete is in the audit log), or, on a dry
run, only writing down what it would delete. Runs in the background, as Harbor's jobservice does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ....core.errors import ApiError
from ....core.tasks import cancel
from ...storage import RegistryStorage
from .. import schedule
from ..store import HarborStore
from . import policy as rules
from .store import ERROR, STOPPED, SUCCESS, RetentionStore

MANUAL, SCHEDULED = "MANUAL", "SCHEDULE"
DEL, RETAIN, IMMUTABLE, ERR = "DEL", "RETAIN", "IMMUTABLE", "ERR"

Delete = Callable[[str, str, str], None]  # (user, repo, digest); raises ApiError when Harbor refuses
Immutable = Callable[[str, str], bool]  # (repo, tag)


@dataclass
class RetentionRunner:
    policies: RetentionStore
    harbor: HarborStore
    storage: RegistryStorage
    delete: Delete
    immutable: Immutable
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("labkit.registry.retention"))

    def __post_init__(self) -> None:
        self._running: dict[int, asyncio.Task[None]] = {}
        self._scheduler: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Close what a stop of the daemon cut short; start the scheduler (in the running event loop)."""
        for execution_id in self.policies.interrupted():
            self.policies.end_execution(execution_id, STOPPED)
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule(), name="retention-scheduler")

    async def stop(self) -> None:
        await cancel(self._scheduler)  # type: ignore[arg-type]
        for task in list(self._running.values()):
            await cancel(task)  # type: ignore[arg-type]

    async def _schedule(self) -> None:
        """Run each scheduled policy when its cron comes due (as Harbor's jobservice user, trigger SCHEDULE)."""
        await schedule.run_schedules(self.policies.scheduled,
                                     lambda policy_id: self.trigger(policy_id, False, schedule.JOBSERVICE, SCHEDULED),
                                     self.logger)

    def trigger(self, policy_id: int, dry_run: bool, operator: str, trigger: str = MANUAL) -> int:
        """Start an execution of the policy in the background; returns its id."""
        policy = self.policies.policy(policy_id)
        assert policy is not None
        execution_id = self.policies.start_execution(policy_id, trigger, dry_run, operator)
        task = asyncio.get_running_loop().create_task(self._execute(execution_id, policy, dry_run),
                                                      name=f"retention-{execution_id}")
        self._running[execution_id] = task
        task.add_done_callback(lambda _: self._running.pop(execution_id, None))
        return execution_id

    def stop_execution(self, execution_id: int) -> None:
        task = self._running.get(execution_id)
        if task is not None:
            task.cancel()

    async def wait(self, execution_id: int) -> None:
        task = self._running.get(execution_id)
        if task is not None:
            await asyncio.wait({task})

    # -- the job ---------------------------------------------------------------------------
    async def _execute(self, execution_id: int, policy: dict[str, Any], dry_run: bool) -> None:
        status = SUCCESS
        try:
            project = self.harbor.project(int(policy["scope"]["ref"]))
            if project is None:
                raise LookupError(f"project {policy['scope']['ref']} not found")
            plan = []
            for row in self.harbor.repositories(project["project_id"]):
                name = row["name"].partition("/")[2]
                chosen = rules.rules_for(policy["rules"], name)
                if chosen:
                    plan.append((row["name"], chosen, self.policies.add_task(execution_id, name)))
            for repo, chosen, task_id in plan:
                if not self._repository(task_id, repo, chosen, dry_run, policy["algorithm"]):
                    status = ERROR
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.policies.end_execution(execution_id, STOPPED)
            for task in self.policies.tasks(execution_id):
                if task["status"] not in (SUCCESS, ERROR):
                    self.policies.end_task(task["id"], STOPPED, task["total"], task["retained"],
                                           "Retention job is stopped\n")
            raise
        except Exception:
            self.logger.exception("retention execution %s failed", execution_id)
            status = ERROR
        self.policies.end_execution(execution_id, status)

    def candidates(self, repo: str) -> list[rules.Candidate]:
        """The repository's artifacts as retention sees them (accessories go with their subject)."""
        namespace, _, name = repo.partition("/")
        out = []
        for a in self.harbor.artifacts(repo):
            row = self.storage.meta.manifest(repo, a["digest"])
            if row is not None and row.subject:
                continue
            tags = self.harbor.tags(repo, a["digest"])
            pushed = max([a["push_time"], *(t["push_time"] for t in tags)])
            pulled = max([a["pull_time"] or 0.0, *((t["pull_time"] or 0.0) for t in tags)])
            labels = tuple(label["name"] for label in self.harbor.artifact_labels(repo, a["digest"]))
            out.append(rules.Candidate(namespace, name, a["digest"], tuple(t["name"] for t in tags), labels,
                                       pushed, pulled, a["push_time"]))
        return out

    def _repository(self, task_id: int, repo: str, chosen: list[dict[str, Any]], dry_run: bool,
                    algorithm: str) -> bool:
        """One task: returns False if a delete failed."""
        self.policies.start_task(task_id)
        log = [f"Run retention process.\n Repository: {repo} \n Rule Algorithm: {algorithm} \n Dry Run: {dry_run}"]
        candidates = self.candidates(repo)
        log.append(f"Load {len(candidates)} candidates from repository {repo}")
        keep = rules.retained(chosen, candidates)
        marks: dict[str, str] = {}
        errors: list[str] = []
        for c in candidates:
            if c.digest in keep:
                marks[c.digest] = RETAIN
            elif any(self.immutable(repo, t) for t in c.tags):
                marks[c.digest] = IMMUTABLE
            elif dry_run:
                marks[c.digest] = DEL
            else:
                try:
                    self.delete(schedule.JOBSERVICE, repo, c.digest)
                    marks[c.digest] = DEL
                except ApiError as exc:
                    marks[c.digest] = ERR
                    errors.append(f"Retention error for artifact image:{repo}:{c.digest} : {exc.message}")
        log.append(_table(candidates, marks))
        log.extend(errors)
        deleted = sum(1 for m in marks.values() if m == DEL)
        self.policies.end_task(task_id, ERROR if errors else SUCCESS, len(candidates), len(candidates) - deleted,
                               "\n".join(log) + "\n")
        return not errors


def _when(ts: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(ts)) if ts > 0 else ""


def _table(candidates: list[rules.Candidate], marks: dict[str, str]) -> str:
    """The task log's table (Digest, Tag, Kind, Labels, PushedTime, PulledTime, CreatedTime, Retention)."""
    header = ["Digest", "Tag", "Kind", "Labels", "PushedTime", "PulledTime", "CreatedTime", "Retention"]
    rows = [[c.digest, ",".join(c.tags), "image", ",".join(c.labels), _when(c.pushed), _when(c.pulled),
             _when(c.created), marks[c.digest]] for c in candidates]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
