"""From ``.gitlab-ci.yml`` at a commit to the jobs GitLab creates for one pipeline.

``plan(repos, req)`` evaluates ``workflow:rules``, then each job's ``rules`` (or ``only``/``except``), expands
``parallel`` and ``parallel: matrix``, resolves ``when`` with GitLab's defaults, ``needs``, variables, caches and
artifacts, and checks the needs of the jobs that remain. The outcome is a ``PipelinePlan``:

* ``errors``: the pipeline is created failed, with these as its ``yaml_errors`` (CI lint's words);
* ``workflow_blocked``: GitLab creates no pipeline; ``warnings[0]`` says why, as the API's 400 answer words it
  (``Pipeline filtered out by workflow rules.``, the rules left no job, ``[skip ci]``, no CI file);
* otherwise ``jobs`` in stage order, each fully resolved.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from typing import Any

from ..model import JobPlan, Need, PipelinePlan, PipelineRequest, Repos
from . import expressions, globs
from .config import CiConfig, load_config, need_names
from .durations import duration
from .keywords import flatten_commands, scalar, variables_of
from .variables import expand, expand_all, pipeline_variables, push_option_variables, skip_ci

CI_FILE = ".gitlab-ci.yml"
FILTERED_BY_WORKFLOW = "Pipeline filtered out by workflow rules."
NO_JOBS = ("Pipeline will not run for the selected trigger. The rules configuration prevented any jobs from being "
           "added to the pipeline.")
MISSING_FILE = "Missing CI config file"
SKIPPED = "Pipeline skipped: [skip ci] or the ci.skip push option."
REF_KEYWORDS = {"branches", "tags", "api", "external", "pipelines", "pushes", "schedules", "triggers", "web",
                "merge_requests", "chat", "external_pull_requests"}
class _Ctx:
    """What rules are evaluated against for one pipeline."""

    def __init__(self, repos: Repos, req: PipelineRequest):
        self.repos, self.req = repos, req
        self._changed: list[str] | bool | None = False
        self._files: list[str] | None = None

    def changed(self) -> list[str] | None:
        """Paths the push changed; None when every ``changes`` rule is true (no push, a tag, a new branch)."""
        if self._changed is False:
            if self.req.source not in ("push", "merge_request_event") or self.req.tag or not self.req.before_sha \
                    or set(self.req.before_sha) == {"0"}:
                self._changed = None
            else:
                self._changed = self.repos.changed_files(self.req.project.path_with_namespace,
                                                         self.req.before_sha, self.req.sha)
        return self._changed  # type: ignore[return-value]

    def files(self) -> list[str]:
        if self._files is None:
            self._files = self.repos.list_files(self.req.project.path_with_namespace, self.req.sha)
        return self._files


def _changes_match(changes: Any, ctx: _Ctx, variables: Mapping[str, str]) -> bool:
    paths = changes.get("paths", []) if isinstance(changes, dict) else changes
    changed = ctx.changed()
    if changed is None:
        return True
    return globs.any_match([expand(str(p), variables) for p in paths or []], changed)


def _exists_match(exists: Any, ctx: _Ctx, variables: Mapping[str, str]) -> bool:
    paths = exists.get("paths", []) if isinstance(exists, dict) else exists
    if isinstance(paths, str):
        paths = [paths]
    return globs.any_match([expand(str(p), variables) for p in paths or []], ctx.files())


def _flat_rules(rules: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule in rules or []:
        out.extend(rule if isinstance(rule, list) else [rule])
    return out


def _rule_matches(rule: dict[str, Any], ctx: _Ctx, variables: Mapping[str, str]) -> bool:
    if "if" in rule and not expressions.evaluate(rule["if"], variables):
        return False
    if "changes" in rule and not _changes_match(rule["changes"], ctx, variables):
        return False
    return not ("exists" in rule and not _exists_match(rule["exists"], ctx, variables))


def first_rule(rules: list[Any], ctx: _Ctx, variables: Mapping[str, str]) -> dict[str, Any] | None:
    """The first rule whose clauses all hold (first match wins), or None."""
    for rule in _flat_rules(rules):
        if _rule_matches(rule, ctx, variables):
            return rule
    return None


def _ref_matches(pattern: str, req: PipelineRequest) -> bool:
    pattern, _, project = pattern.partition("@")
    if project and project != req.project.path_with_namespace:
        return False
    if pattern in REF_KEYWORDS:
        return {
            "branches": not req.tag, "tags": req.tag, "api": req.source == "api", "pushes": req.source == "push",
            "schedules": req.source == "schedule", "triggers": req.source == "trigger", "web": req.source == "web",
            "merge_requests": req.source == "merge_request_event", "pipelines": req.source == "parent_pipeline",
            "external": req.source == "external", "chat": req.source == "chat",
            "external_pull_requests": req.source == "external_pull_request_event"}[pattern]
    m = re.fullmatch(r"/(.+)/([a-z]*)", pattern)
    if m:
        return expressions.Pattern(m.group(1), m.group(2)).compile().search(req.ref) is not None
    return pattern == req.ref


def _policy(value: Any) -> dict[str, Any]:
    if isinstance(value, (str, list)):
        return {"refs": [value] if isinstance(value, str) else value}
    return value or {}


def _policy_matches(policy: dict[str, Any], ctx: _Ctx, variables: Mapping[str, str], *, any_: bool) -> bool:
    """``only`` (every given key holds) or ``except`` (any given key holds)."""
    checks: list[bool] = []
    if "refs" in policy:
        checks.append(any(_ref_matches(str(r), ctx.req) for r in policy["refs"] or []))
    if "variables" in policy:
        checks.append(any(expressions.evaluate(v, variables) for v in policy["variables"] or []))
    if "changes" in policy:
        checks.append(_changes_match(policy["changes"], ctx, variables))
    if not checks:
        return not any_
    return any(checks) if any_ else all(checks)


def _matrix(job: dict[str, Any], name: str) -> list[tuple[str, dict[str, str]]]:
    """``parallel`` as (job name, its variables): ``test 1/3``…, or ``build: [amd64, 3.12]``…."""
    parallel = job.get("parallel")
    if parallel is None:
        return [(name, {})]
    if isinstance(parallel, int):
        return [(f"{name} {i}/{parallel}", {"CI_NODE_INDEX": str(i), "CI_NODE_TOTAL": str(parallel)})
                for i in range(1, parallel + 1)]
    combos: list[dict[str, str]] = []
    for entry in parallel.get("matrix") or []:
        keys = list(entry)
        values = [[scalar(v) for v in (entry[k] if isinstance(entry[k], list) else [entry[k]])] for k in keys]
        for product in itertools.product(*values):
            combos.append(dict(zip(keys, product, strict=True)))
    total = len(combos)
    return [(f"{name}: [{', '.join(combo.values())}]",
             {**combo, "CI_NODE_INDEX": str(i), "CI_NODE_TOTAL": str(total)}) for i, combo in enumerate(combos, 1)]


def _cache(value: Any, variables: Mapping[str, str], ctx: _Ctx) -> list[dict[str, Any]]:
    caches = value if isinstance(value, list) else ([value] if value else [])
    out: list[dict[str, Any]] = []
    for cache in caches:
        if not isinstance(cache, dict):
            continue
        key = cache.get("key", "default")
        if isinstance(key, dict):  # key: files → a digest of those files' contents (GitLab: their last commit)
            digest = hashlib.sha1()
            for path in key.get("files") or []:
                digest.update(ctx.repos.read_file(ctx.req.project.path_with_namespace, ctx.req.sha,
                                                  str(path)) or b"")
            resolved = digest.hexdigest()
            if key.get("prefix"):
                resolved = f"{expand(str(key['prefix']), variables)}-{resolved}"
        else:
            resolved = expand(scalar(key), variables) or "default"
        out.append({"key": resolved, "paths": list(cache.get("paths") or []),
                    "policy": cache.get("policy", "pull-push"), "when": cache.get("when", "on_success"),
                    "untracked": bool(cache.get("untracked", False)),
                    "fallback_keys": list(cache.get("fallback_keys") or [])})
    return out


def _artifacts(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    out = dict(value)
    out.setdefault("when", "on_success")
    if "paths" in out:
        out["paths"] = list(out["paths"] or [])
    reports = out.get("reports") or {}
    out["reports"] = {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in reports.items()}
    return out


def _retry(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, int):
        return {"max": value, "when": ["always"]}
    when = value.get("when", ["always"])
    codes = value.get("exit_codes", [])
    return {"max": int(value.get("max", 0)), "when": [when] if isinstance(when, str) else list(when),
            "exit_codes": [codes] if isinstance(codes, int) else list(codes)}


def _needs(value: list[Any], expansions: dict[str, list[tuple[str, dict[str, str]]]]) -> list[Need]:
    out: list[Need] = []
    for name, opts in need_names(value):
        names = [name]
        if name in expansions and expansions[name][0][0] != name:
            generated = expansions[name]
            wanted = (opts.get("parallel") or {}).get("matrix")
            if wanted:
                picks = _matrix({"parallel": {"matrix": wanted}}, name)
                pick_names = {p[0] for p in picks}
                names = [n for n, _ in generated if n in pick_names]
            else:
                names = [n for n, _ in generated]
        for n in names:
            out.append(Need(job=n, artifacts=bool(opts.get("artifacts", True)), optional=bool(opts.get("optional",
                                                                                                        False))))
    return out


def _global_variables(job: dict[str, Any], globals_: dict[str, str]) -> dict[str, str]:
    inherit = job.get("inherit") or {}
    which = inherit.get("variables", True) if isinstance(inherit, dict) else True
    if which is False:
        return {}
    if isinstance(which, list):
        return {k: v for k, v in globals_.items() if k in which}
    return dict(globals_)


def _job_plans(config: CiConfig, ctx: _Ctx, predefined: dict[str, str], pipeline_vars: dict[str, str],
               global_vars: dict[str, str]) -> tuple[list[JobPlan], list[str]]:
    expansions = {name: _matrix(job, name) for name, job in config.jobs.items()}
    plans: list[JobPlan] = []
    for name, job in config.jobs.items():
        own_vars = variables_of(job.get("variables"))
        inherited = _global_variables(job, global_vars)
        for job_name, matrix_vars in expansions[name]:
            yaml_vars = {**inherited, **own_vars, **matrix_vars}
            context = {**expand_all({**yaml_vars}, predefined), **pipeline_vars}
            when = job.get("when", "on_success")
            allow_failure = job.get("allow_failure")
            start_in = job.get("start_in")
            needs_value = job.get("needs")
            rule_vars: dict[str, str] = {}
            if job.get("rules") is not None:
                rule = first_rule(job["rules"], ctx, context)
                if rule is None:
                    continue
                when = rule.get("when", when)
                if "allow_failure" in rule:
                    allow_failure = rule["allow_failure"]
                start_in = rule.get("start_in", start_in)
                rule_vars = variables_of(rule.get("variables"))
                if "needs" in rule:
                    needs_value = rule["needs"]
                if when == "never":
                    continue
            else:
                only = _policy(job.get("only")) if "only" in job else (
                    {} if config.workflow.get("rules") else {"refs": ["branches", "tags"]})
                if only and not _policy_matches(only, ctx, context, any_=False):
                    continue
                if "except" in job and _policy_matches(_policy(job["except"]), ctx, context, any_=True):
                    continue
            exit_codes: list[int] = []
            if isinstance(allow_failure, dict):
                codes = allow_failure.get("exit_codes", [])
                exit_codes = [codes] if isinstance(codes, int) else list(codes)
                allow_failure = False
            if allow_failure is None:  # GitLab's ``ignored?``: a job written as manual may fail (not one that
                allow_failure = job.get("when") == "manual"  # only a rule made manual: that one blocks)
            image = job.get("image")
            if isinstance(image, dict):
                image = image.get("name")
            env = job.get("environment")
            plans.append(JobPlan(
                name=job_name, stage=job["stage"], script=flatten_commands(job.get("script")),
                before_script=flatten_commands(job.get("before_script")),
                after_script=flatten_commands(job.get("after_script")),
                image=str(image) if image else None, variables={**yaml_vars, **rule_vars}, when=when,
                start_in=str(start_in) if when == "delayed" and start_in is not None else None,
                allow_failure=bool(allow_failure), allow_failure_exit_codes=exit_codes,
                needs=_needs(needs_value, expansions) if needs_value is not None else None,
                dependencies=[n.job for n in _needs(job["dependencies"], expansions)]
                if job.get("dependencies") is not None else None,
                artifacts=_artifacts(job.get("artifacts")), cache=_cache(job.get("cache"), context, ctx),
                timeout=duration(job["timeout"]) if job.get("timeout") is not None else None,
                retry=_retry(job.get("retry")), interruptible=bool(job.get("interruptible", False)),
                resource_group=expand(job["resource_group"], context) if job.get("resource_group") else None,
                tags=[str(t) for t in job.get("tags") or []],
                environment={"name": env} if isinstance(env, str) else env, coverage=job.get("coverage"),
                manual_blocks=when == "manual" and not allow_failure))
    return plans, _check_needs(plans)


def _check_needs(plans: list[JobPlan]) -> list[str]:
    """Needs of jobs that exist: a missing non-optional one fails the pipeline, optional ones are dropped."""
    present = {p.name for p in plans}
    errors: list[str] = []
    for job in plans:
        if job.needs is None:
            continue
        kept: list[Need] = []
        for need in job.needs:
            if need.job in present:
                kept.append(need)
            elif not need.optional:
                errors.append(f"'{job.name}' job needs '{need.job}' job, but '{need.job}' does not exist in the "
                              "pipeline. This might be because of the only, except, or rules keywords. To need a "
                              "job that sometimes does not exist in the pipeline, use needs:optional.")
        job.needs = kept
        if job.dependencies is not None:
            job.dependencies = [d for d in job.dependencies if d in present]
    return errors


def plan_config(config: CiConfig, repos: Repos, req: PipelineRequest,
                predefined: Mapping[str, str] | None = None) -> PipelinePlan:
    """The pipeline for a loaded configuration."""
    result = PipelinePlan(merged_yaml=config.merged_yaml, warnings=list(config.warnings))
    if config.errors:
        result.errors = [e.message for e in config.errors]
        return result
    ctx = _Ctx(repos, req)
    base = dict(predefined) if predefined is not None else pipeline_variables(req)
    pipeline_vars = {**push_option_variables(req.push_options), **req.variables}
    global_vars = dict(config.variables)
    try:
        rules = (config.workflow or {}).get("rules")
        if rules is not None:
            context = {**expand_all(global_vars, base), **pipeline_vars}
            rule = first_rule(rules, ctx, context)
            if rule is None or rule.get("when", "always") == "never":
                result.workflow_blocked = True
                result.warnings.insert(0, FILTERED_BY_WORKFLOW)
                return result
            global_vars.update(variables_of(rule.get("variables")))
        jobs, errors = _job_plans(config, ctx, base, pipeline_vars, global_vars)
    except expressions.ExpressionError as err:
        result.errors = [str(err)]
        return result
    result.variables = global_vars
    if errors:
        result.errors = errors
        return result
    if all(j.stage in (".pre", ".post") for j in jobs):  # none, or only edge-stage jobs: GitLab runs nothing
        result.workflow_blocked = True
        result.warnings.insert(0, NO_JOBS)
        return result
    order = {stage: i for i, stage in enumerate(config.stages)}
    jobs.sort(key=lambda j: order[j.stage])
    result.jobs = jobs
    result.stages = [s for s in config.stages if any(j.stage == s for j in jobs)]
    return result


def load(repos: Repos, project: str, sha: str, content: str | None = None, web_url: str = "") -> CiConfig | None:
    """``.gitlab-ci.yml`` at a commit (or ``content`` instead), with its local includes; None if there is none."""
    if content is None:
        raw = repos.read_file(project, sha, CI_FILE)
        if raw is None:
            return None
        content = raw.decode("utf-8", "replace")
    return load_config(content, lambda path: repos.read_file(project, sha, path),
                       lambda: repos.list_files(project, sha), project=project, sha=sha, web_url=web_url)


def plan(repos: Repos, req: PipelineRequest, *, predefined: Mapping[str, str] | None = None,
         content: str | None = None) -> PipelinePlan:
    """The jobs GitLab creates for this pipeline (see the module's docstring).

    ``predefined``: the pipeline's predefined variables (default: ``pipeline_variables(req)``); ``content``: a
    configuration to use instead of the commit's ``.gitlab-ci.yml`` (CI lint's dry run).
    """
    if skip_ci(req):
        return PipelinePlan(workflow_blocked=True, warnings=[SKIPPED])
    config = load(repos, req.project.path_with_namespace, req.sha, content, req.project.web_url)
    if config is None:
        if req.source == "push":
            return PipelinePlan(workflow_blocked=True, warnings=[MISSING_FILE])
        return PipelinePlan(errors=[MISSING_FILE])
    return plan_config(config, repos, req, predefined)
