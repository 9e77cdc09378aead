"""The contracts between the GitLab emulator's parts: the git server, the CI planner and the pipeline runner.

* ``Repos`` (the git side, ``git.py``/``repos.py``) serves repositories over smart HTTP and reads them for the
  others: a file at a commit, the files of a commit, the paths a push changed, a working copy.
* ``plan()`` (``ci/``) turns ``.gitlab-ci.yml`` at a commit, with the pipeline's variables, into a
  ``PipelinePlan`` — the jobs GitLab would create, each fully resolved (``extends``, ``default``,
  ``include: local``, ``rules``, ``parallel: matrix``), or ``errors`` (``yaml_errors``) as CI lint words them.
* ``Pipelines`` (``pipelines.py`` + ``runner/``) stores pipelines and jobs, runs them with GitLab's semantics
  and returns them as GitLab's REST API v4 shows them (plain dicts in GitLab's field names), so the API layer
  only routes, authenticates, filters and paginates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# GitLab's pipeline and job statuses, in its words.
PIPELINE_STATUSES = ("created", "waiting_for_resource", "preparing", "pending", "running", "success", "failed",
                     "canceled", "skipped", "manual", "scheduled")
JOB_STATUSES = PIPELINE_STATUSES
FINISHED = ("success", "failed", "canceled", "skipped")
SOURCES = ("push", "web", "api", "trigger", "schedule", "merge_request_event", "parent_pipeline")


@dataclass(frozen=True)
class Project:
    """What the runner and planner need to know of a project."""

    id: int
    path_with_namespace: str  # "shop/catalog"
    default_branch: str
    http_url_to_repo: str  # what ``git clone`` takes (credentials not included)
    web_url: str


@dataclass
class Need:
    """One ``needs:`` entry: a job of this pipeline (``artifacts``: whether its artifacts are fetched)."""

    job: str
    artifacts: bool = True
    optional: bool = False


@dataclass
class JobPlan:
    """One job as GitLab creates it: everything resolved, nothing left to interpret but the script."""

    name: str  # "test", or "test 1/3", or "build: [amd64, py3.12]" for parallel jobs
    stage: str
    script: list[str]
    before_script: list[str] = field(default_factory=list)
    after_script: list[str] = field(default_factory=list)
    image: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # global + job + rule variables, job wins
    when: str = "on_success"  # on_success, on_failure, always, manual, delayed (never: not planned)
    start_in: str | None = None  # for when: delayed
    allow_failure: bool = False
    allow_failure_exit_codes: list[int] = field(default_factory=list)
    needs: list[Need] | None = None  # None: stage order; []: starts at once
    dependencies: list[str] | None = None  # None: all earlier (or needed) jobs' artifacts
    artifacts: dict[str, Any] | None = None  # paths, exclude, when, expire_in, reports{junit, dotenv}, name
    cache: list[dict[str, Any]] = field(default_factory=list)  # key (resolved string), paths, policy, when
    timeout: int | None = None  # seconds
    retry: dict[str, Any] = field(default_factory=dict)  # {"max": n, "when": [...], "exit_codes": [...]}
    interruptible: bool = False
    resource_group: str | None = None
    tags: list[str] = field(default_factory=list)
    environment: dict[str, Any] | None = None
    coverage: str | None = None
    manual_blocks: bool = False  # a manual job that blocks later stages (from rules, or allow_failure: false)


@dataclass
class PipelinePlan:
    """``.gitlab-ci.yml`` resolved for one pipeline: its stages in order and its jobs, or why there is none."""

    stages: list[str] = field(default_factory=list)
    jobs: list[JobPlan] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # global variables (incl. workflow:rules variables)
    errors: list[str] = field(default_factory=list)  # yaml_errors: the pipeline fails with these
    warnings: list[str] = field(default_factory=list)
    # GitLab creates no pipeline at all (workflow:rules said no, the rules left no job, no CI file on a push);
    # warnings[0] is why, in the words of the API's 400 answer ({"message": {"base": [warnings[0]]}})
    workflow_blocked: bool = False
    merged_yaml: str = ""  # what CI lint returns as merged_yaml


class Repos(Protocol):
    """Reading the lab's git repositories (written by the git server)."""

    def read_file(self, project: str, sha: str, path: str) -> bytes | None:
        """A file at a commit, or None."""

    def list_files(self, project: str, sha: str) -> list[str]:
        """Every file path at a commit (for ``exists`` rules)."""

    def changed_files(self, project: str, before: str | None, after: str) -> list[str] | None:
        """Paths changed between two commits (``changes`` rules); None when unknown (a new branch)."""

    def checkout(self, project: str, sha: str, dest: Path) -> None:
        """A working copy of a commit (with its ``.git``) in ``dest``, as the runner's git fetch makes it."""


@dataclass
class PipelineRequest:
    """Everything that starts a pipeline (a push, the API, the web, a trigger)."""

    project: Project
    ref: str
    sha: str
    source: str  # one of SOURCES
    user: dict[str, Any]  # GitLab's user object of who started it ({"id", "username", "name", ...})
    variables: dict[str, str] = field(default_factory=dict)  # API/trigger variables
    before_sha: str | None = None  # the push's old commit (changes rules)
    tag: bool = False
    push_options: list[str] = field(default_factory=list)  # "ci.skip", "ci.variable=K=V"
    commit_message: str = ""


class PipelineError(Exception):
    """A pipeline or job request GitLab refuses: ``status`` and the JSON ``body`` it answers with
    (``{"message": {"base": ["..."]}}``, ``{"message": "400 Unplayable Job"}``)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", body)))
        self.status = status
        self.body = body


class Pipelines(Protocol):
    """Pipelines and jobs: created from a request, run by the runner, read in GitLab's API shapes."""

    def create(self, req: PipelineRequest) -> dict[str, Any] | None:
        """The new pipeline (GitLab's JSON), or None when none is created ([skip ci], workflow:rules)."""

    def list(self, project_id: int) -> list[dict[str, Any]]:
        """A project's pipelines, newest first (the API layer filters and paginates)."""

    def get(self, project_id: int, pipeline_id: int) -> dict[str, Any] | None: ...

    def cancel(self, project_id: int, pipeline_id: int) -> dict[str, Any]: ...

    def retry(self, project_id: int, pipeline_id: int) -> dict[str, Any]: ...

    def jobs(self, project_id: int, pipeline_id: int | None = None) -> list[dict[str, Any]]: ...

    def job(self, project_id: int, job_id: int) -> dict[str, Any] | None: ...

    def trace(self, project_id: int, job_id: int) -> str: ...

    def play(self, project_id: int, job_id: int) -> dict[str, Any]: ...

    def retry_job(self, project_id: int, job_id: int) -> dict[str, Any]: ...

    def cancel_job(self, project_id: int, job_id: int) -> dict[str, Any]: ...

    def artifacts(self, project_id: int, job_id: int) -> Path | None:
        """The job's artifacts archive (a zip), or None."""

    def job_for_token(self, token: str) -> dict[str, Any] | None:
        """The running job a CI_JOB_TOKEN belongs to (JOB-TOKEN auth), or None."""
