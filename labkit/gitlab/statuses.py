"""GitLab's status arithmetic: the composite status of a set of jobs, and which jobs a status lets run.

This follows GitLab's ``Gitlab::Ci::Status::Composite`` and ``Ci::ProcessBuildService``:

* a failed or canceled job that may fail counts as *success with warnings*; a manual job that may fail
  (a top-level ``when: manual``) is *ignored*, so it blocks nothing;
* for a job in stage order the composite of every earlier stage decides; for a job with ``needs`` the
  composite of its needed jobs (where a skipped or ignored need skips the job);
* ``on_success``/``manual``/``delayed`` jobs run after ``success`` (stage order: also after ``skipped``),
  ``on_failure`` after ``failed``, ``always`` after either; anything else finished skips the job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

COMPLETED = ("success", "failed", "canceled", "skipped")
ACTIVE = ("preparing", "pending", "running", "waiting_for_resource")
CANCELABLE = ("created", "waiting_for_resource", "preparing", "pending", "running", "scheduled")


def _classify(job: dict[str, Any]) -> str:
    status = job["status"]
    if job.get("allow_failure") and status in ("failed", "canceled"):
        return "success_with_warnings"
    if job.get("allow_failure") and status == "manual":
        return "ignored"
    return status


def composite(jobs: Iterable[dict[str, Any]], dag: bool = False) -> str | None:
    """The status GitLab gives a set of jobs (a stage, a pipeline, a job's needs); None for no jobs."""
    found = {_classify(j) for j in jobs}
    if not found:
        return None

    def only(*names: str) -> bool:
        return found <= set(names)

    def any_of(*names: str) -> bool:
        return bool(found & set(names))

    if dag and any_of("skipped", "ignored"):
        return "skipped"
    if only("skipped", "ignored"):
        return "skipped"
    if only("success", "skipped", "success_with_warnings", "ignored"):
        return "success"
    if only("created", "success_with_warnings", "ignored"):
        return "created"
    if only("preparing", "success_with_warnings", "ignored"):
        return "preparing"
    if only("canceled", "success", "skipped", "success_with_warnings", "ignored"):
        return "canceled"
    if only("pending", "created", "skipped", "success_with_warnings", "ignored"):
        return "pending"
    if any_of("running", "pending"):
        return "running"
    if any_of("waiting_for_resource"):
        return "waiting_for_resource"
    if any_of("manual"):
        return "manual"
    if any_of("scheduled"):
        return "scheduled"
    if any_of("preparing"):
        return "preparing"
    if any_of("created"):
        return "running"
    if any_of("canceling"):
        return "canceling"
    return "failed"


def runs_after(when: str, upstream: str, dag: bool) -> bool:
    """Whether a job with this ``when`` is processed (not skipped) once its upstream is ``upstream``."""
    if when in ("on_success", "manual", "delayed"):
        return upstream == "success" or (not dag and upstream == "skipped")
    if when == "on_failure":
        return upstream == "failed"
    if when == "always":
        return upstream in ("success", "failed", "skipped")
    return False
