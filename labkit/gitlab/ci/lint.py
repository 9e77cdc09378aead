"""The CI lint API's answer (``POST``/``GET /projects/:id/ci/lint``): ``valid``, ``errors``, ``warnings``,
``merged_yaml``, ``includes`` and, when asked, ``jobs`` — statically (every job as written), or as a dry run
(the pipeline a push to ``ref`` would create, rules evaluated)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import JobPlan, PipelineRequest, Project, Repos
from .config import CiConfig
from .keywords import flatten_commands
from .plan import _matrix, load, plan_config


def _static_jobs(config: CiConfig) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    order = {s: i for i, s in enumerate(config.stages)}
    for name, job in sorted(config.jobs.items(), key=lambda kv: order.get(kv[1]["stage"], 0)):
        when = job.get("when", "on_success")
        env = job.get("environment")
        for job_name, _ in _matrix(job, name):
            entry: dict[str, Any] = {
                "name": job_name, "stage": job["stage"],
                "before_script": flatten_commands(job.get("before_script")),
                "script": flatten_commands(job.get("script")),
                "after_script": flatten_commands(job.get("after_script")),
                "tag_list": [str(t) for t in job.get("tags") or []],
                "environment": env.get("name") if isinstance(env, dict) else env,
                "when": when,
                "allow_failure": job["allow_failure"] if isinstance(job.get("allow_failure"), bool)
                else when == "manual" and "rules" not in job,
            }
            if "rules" not in job and not config.workflow.get("rules"):
                entry["only"] = job.get("only", {"refs": ["branches", "tags"]})
                if "except" in job:
                    entry["except"] = job["except"]
            if job.get("needs") is not None:
                entry["needs"] = [{"name": n if isinstance(n, str) else n["job"]} for n in job["needs"]]
            jobs.append(entry)
    return jobs


def _planned_job(job: JobPlan) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": job.name, "stage": job.stage, "before_script": job.before_script, "script": job.script,
        "after_script": job.after_script, "tag_list": job.tags,
        "environment": (job.environment or {}).get("name"), "when": job.when, "allow_failure": job.allow_failure}
    if job.needs is not None:
        entry["needs"] = [{"name": n.job} for n in job.needs]
    return entry


def lint(repos: Repos, project: Project, *, sha: str, ref: str, content: str | None = None,
         dry_run: bool = False, include_jobs: bool = False, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """CI lint's JSON for ``content`` (or the commit's ``.gitlab-ci.yml``) in ``project`` at ``sha``."""
    config = load(repos, project.path_with_namespace, sha, content, project.web_url)
    if config is None:
        return {"valid": False, "errors": ["Please provide content of .gitlab-ci.yml"], "warnings": [],
                "merged_yaml": None, "includes": []}
    answer: dict[str, Any] = {"valid": not config.errors, "errors": [e.message for e in config.errors],
                              "warnings": list(config.warnings), "merged_yaml": config.merged_yaml or None,
                              "includes": config.includes}
    if config.errors:
        if include_jobs:
            answer["jobs"] = []
        return answer
    if dry_run:
        req = PipelineRequest(project=project, ref=ref, sha=sha, source="push",
                              user=user or {"id": 0, "username": "", "name": ""})
        planned = plan_config(config, repos, req)
        warnings = list(planned.warnings)
        # the simulated pipeline's creation errors: the config's, or why no pipeline would be created
        errors = list(planned.errors) or ([warnings.pop(0)] if planned.workflow_blocked and warnings else [])
        answer.update(valid=not errors, errors=errors, warnings=warnings)
        if include_jobs:
            answer["jobs"] = [_planned_job(j) for j in planned.jobs]
    elif include_jobs:
        answer["jobs"] = _static_jobs(config)
    return answer


class _FileReader:
    """``Repos`` reading side from two functions (what the server hands the lint); no push to compare with."""

    def __init__(self, read: Callable[[str, str, str], bytes | None], list_files: Callable[[str, str], list[str]]):
        self.read_file, self.list_files = read, list_files

    def changed_files(self, project: str, before: str | None, after: str) -> list[str] | None:
        return None  # a dry run has no push: every changes rule holds, as in GitLab's simulation

    def checkout(self, project: str, sha: str, dest: Path) -> None:
        raise NotImplementedError("CI lint never checks out")


def lint_api(*, read: Callable[[str, str, str], bytes | None], list_files: Callable[[str, str], list[str]],
             project: dict[str, Any] | Project, content: str | None, ref: str, sha: str, dry_run: bool = False,
             include_jobs: bool = True, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """``lint()`` as the API layer calls it: the project as GitLab's JSON, the repository as two functions."""
    if isinstance(project, dict):
        project = Project(id=int(project["id"]), path_with_namespace=project["path_with_namespace"],
                          default_branch=project.get("default_branch") or "main",
                          http_url_to_repo=project.get("http_url_to_repo", ""), web_url=project.get("web_url", ""))
    return lint(_FileReader(read, list_files), project, sha=sha, ref=ref, content=content, dry_run=dry_run,
                include_jobs=include_jobs, user=user)


def diagnose(repos: Repos, project: str, sha: str, content: str | None = None) -> list[dict[str, Any]]:
    """Each lint error with where it is: ``{"message", "path", "line", "text"}`` (``line``/``text`` None when
    GitLab's message names no place) — what the chapter shows beside a failed pipeline's ``yaml_errors``."""
    config = load(repos, project, sha, content)
    if config is None:
        return [{"message": "Please provide content of .gitlab-ci.yml", "path": ".gitlab-ci.yml", "line": None,
                 "text": None}]
    out: list[dict[str, Any]] = []
    for error in config.errors:
        path, line, text = ".gitlab-ci.yml", None, None
        if error.location:
            path, _, number = error.location.partition(":")
            line = int(number) if number.isdigit() else None
        if line is not None:
            source = content if path == ".gitlab-ci.yml" and content is not None else \
                (repos.read_file(project, sha, path) or b"").decode("utf-8", "replace")
            lines = source.splitlines()
            text = lines[line - 1] if 0 < line <= len(lines) else None
        out.append({"message": error.message, "path": path, "line": line, "text": text})
    return out
