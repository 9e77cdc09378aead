"""GitLab's CI keywords as its lint checks them: the keys each section takes, what the simulator refuses, and
the value types of the keywords the planner reads (with GitLab's messages); plus the helpers that read values
(scripts, variables, scalars) as GitLab stores them."""

from __future__ import annotations

from typing import Any

from . import expressions
from .durations import duration

DEFAULT_KEYS = ("after_script", "artifacts", "before_script", "cache", "hooks", "image", "interruptible", "retry",
                "services", "tags", "timeout", "id_tokens")
LEGACY_DEFAULTS = ("image", "services", "cache", "before_script", "after_script")
JOB_KEYS = ("tags", "script", "type", "image", "services", "start_in", "artifacts", "cache", "dependencies",
            "before_script", "after_script", "environment", "coverage", "retry", "parallel", "interruptible",
            "timeout", "release", "secrets", "extends", "stage", "only", "except", "rules", "variables", "inherit",
            "allow_failure", "when", "needs", "resource_group", "hooks", "id_tokens", "pages", "run", "identity",
            "manual_confirmation", "dast_configuration", "publish", "trigger")
UNSUPPORTED_JOB_KEYS = ("trigger", "run", "release", "secrets", "identity", "dast_configuration", "pages", "publish",
                        "services", "hooks", "id_tokens", "manual_confirmation")
ALLOWED_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")
RULE_KEYS = ("if", "changes", "exists", "when", "start_in", "allow_failure", "variables", "needs", "interruptible")
RULE_WHEN = ("on_success", "on_failure", "always", "never", "manual", "delayed")
WORKFLOW_RULE_KEYS = ("if", "changes", "exists", "when", "variables", "auto_cancel")
NOT_SUPPORTED = "is not supported by the labkit simulator"


def _is_commands(value: Any, level: int = 0) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list) and level < 10:
        return all(isinstance(v, (str, list)) and _is_commands(v, level + 1) for v in value)
    return False


def flatten_commands(value: Any) -> list[str]:
    """A script as a flat list of lines."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    for item in value:
        out.extend(flatten_commands(item))
    return out


def _is_variables(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for v in value.values():
        if isinstance(v, dict):
            if not set(v) <= {"value", "description", "expand", "options"}:
                return False
        elif not (v is None or isinstance(v, (str, int, float, bool))):
            return False
    return True


def scalar(value: Any) -> str:
    """A YAML scalar as GitLab stores a variable's value (``true``, ``1``, ``1.5``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def variables_of(value: dict[str, Any] | None) -> dict[str, str]:
    """``variables:`` as plain strings (the ``value`` of the hash form)."""
    out: dict[str, str] = {}
    for key, v in (value or {}).items():
        out[str(key)] = scalar(v.get("value") if isinstance(v, dict) else v)
    return out


def _check_rules(where: str, rules: Any, keys: tuple[str, ...], whens: tuple[str, ...]) -> list[str]:
    errors: list[str] = []
    if not isinstance(rules, list) or not all(isinstance(r, (dict, list)) for r in rules):
        return [f"{where} rules should be an array containing hashes and arrays of hashes"]
    flat: list[Any] = []
    for rule in rules:
        flat.extend(rule if isinstance(rule, list) else [rule])
    for rule in flat:
        loc = f"{where}:rules:rule"
        if not isinstance(rule, dict):
            errors.append(f"{where} rules should be an array containing hashes and arrays of hashes")
            continue
        unknown = [str(k) for k in rule if k not in keys]
        if unknown:
            errors.append(f"{loc} config contains unknown keys: {', '.join(unknown)}")
        if "if" in rule and not expressions.valid(rule["if"]):
            errors.append(f"{loc} if invalid expression syntax")
        if "when" in rule and rule["when"] not in whens:
            errors.append(f"{loc} when unknown value: {rule['when']}")
        if "variables" in rule and not _is_variables(rule["variables"]):
            errors.append(f"{loc}:variables config should be a hash of key value pairs")
        changes = rule.get("changes")
        if changes is not None and not (isinstance(changes, list) or
                                        (isinstance(changes, dict) and "paths" in changes)):
            errors.append(f"{loc}:changes config should be an array or a hash")
        if isinstance(changes, dict) and "compare_to" in changes:
            errors.append(f"{loc}:changes compare_to {NOT_SUPPORTED}")
        exists = rule.get("exists")
        if exists is not None and not (isinstance(exists, str) or _strings(exists) or
                                       (isinstance(exists, dict) and _strings(exists.get("paths")))):
            errors.append(f"{loc}:exists config should be an array of strings or a hash")
        if isinstance(changes, list) and not _strings(changes):
            errors.append(f"{loc}:changes config should be an array of strings")
        if "allow_failure" in rule and not isinstance(rule["allow_failure"], bool):
            errors.append(f"{loc} allow_failure should be a boolean value")
    return errors


def check_job(name: str, job: Any) -> list[str]:
    """A visible job's lint errors (its keys, their values, what the simulator refuses)."""
    where = f"jobs:{name}"
    if not isinstance(job, dict) or not ("script" in job or "trigger" in job or "run" in job):
        return [f"jobs {name} config should implement the script:, run:, or trigger: keyword"]
    errors: list[str] = []
    unknown = [str(k) for k in job if k not in JOB_KEYS]
    if unknown:
        errors.append(f"{where} config contains unknown keys: {', '.join(unknown)}")
    for key in UNSUPPORTED_JOB_KEYS:
        if key in job:
            errors.append(f"{where} {key} {NOT_SUPPORTED}")
    if "rules" in job and job["rules"] is not None:
        present = [k for k in ("only", "except", "start_in") if job.get(k) is not None]
        if present:
            errors.append(f"{where} config key may not be used with `rules`: {', '.join(present)}")
        errors += _check_rules(where, job["rules"], RULE_KEYS, RULE_WHEN)
    if "script" in job and not _is_commands(job["script"]):
        errors.append(f"{where}:script config should be a string or a nested array of strings up to 10 levels deep")
    if "script" in job and job["script"] in (None, "", []):
        errors.append(f"{where} script can't be blank")
    for key in ("before_script", "after_script"):
        if key in job and not _is_commands(job[key]):
            errors.append(f"{where}:{key} config should be a string or a nested array of strings up to 10 levels "
                          "deep")
    if "when" in job and job["when"] not in ALLOWED_WHEN:
        errors.append(f"{where} when should be one of: {', '.join(ALLOWED_WHEN)}")
    if job.get("when") == "delayed" and "start_in" not in job and "rules" not in job:
        errors.append(f"{where} start in should be a duration")
    if "start_in" in job and job.get("when") != "delayed" and "rules" not in job:
        errors.append(f"{where} start in must be blank")
    if job.get("when") == "delayed" and "start_in" in job:
        seconds = duration(job["start_in"])
        if seconds is None:
            errors.append(f"{where} start in should be a duration")
        elif seconds > 7 * 86400:
            errors.append(f"{where} start in should not exceed the limit")
    if job.get("timeout") is not None and duration(job["timeout"]) is None:
        errors.append(f"{where}:timeout config should be a duration")
    inherit = job.get("inherit")
    if inherit is not None:
        if not isinstance(inherit, dict):
            errors.append(f"{where}:inherit config should be a hash")
        else:
            unknown = [str(k) for k in inherit if k not in ("default", "variables")]
            if unknown:
                errors.append(f"{where}:inherit config contains unknown keys: {', '.join(unknown)}")
    errors += _check_shapes(where, job)
    if "stage" in job and not isinstance(job["stage"], str):
        errors.append(f"{where}:stage config should be a string")
    if "variables" in job and job["variables"] is not None and not _is_variables(job["variables"]):
        errors.append(f"{where}:variables config should be a hash of key value pairs")
    if "dependencies" in job and not (isinstance(job["dependencies"], list)
                                      and all(isinstance(d, str) for d in job["dependencies"])):
        errors.append(f"{where} dependencies should be an array of strings")
    af = job.get("allow_failure")
    if af is not None and not isinstance(af, (bool, dict)):
        errors.append(f"{where} allow_failure should be a hash or a boolean value")
    if isinstance(af, dict) and set(af) != {"exit_codes"}:
        errors.append(f"{where}:allow_failure config contains unknown keys: "
                      f"{', '.join(k for k in af if k != 'exit_codes') or 'exit_codes is missing'}")
    needs = job.get("needs")
    if needs is not None:
        if not isinstance(needs, list):
            errors.append(f"{where}:needs config can only be a hash or a string")
        else:
            for need in needs:
                if isinstance(need, dict):
                    if "job" not in need:
                        if "pipeline" in need or "project" in need:
                            errors.append(f"{where}:needs cross-pipeline needs {NOT_SUPPORTED}")
                        else:
                            errors.append(f"{where}:needs:need config missing required keys: job")
                elif not isinstance(need, str):
                    errors.append(f"{where}:needs:need has an unsupported type")
    if "resource_group" in job and not isinstance(job["resource_group"], str):
        errors.append(f"{where} resource group should be a string")
    if "interruptible" in job and not isinstance(job["interruptible"], bool):
        errors.append(f"{where}:interruptible config should be a boolean value")
    parallel = job.get("parallel")
    if parallel is not None:
        if isinstance(parallel, int) and not isinstance(parallel, bool):
            if not 1 <= parallel <= 200:
                errors.append(f"{where}:parallel config must be greater than or equal to 1 and less than or equal "
                              "to 200")
        elif isinstance(parallel, dict) and isinstance(parallel.get("matrix"), list):
            if not all(isinstance(m, dict) for m in parallel["matrix"]):
                errors.append(f"{where}:parallel:matrix config should be an array of hashes")
        else:
            errors.append(f"{where}:parallel should be an integer or a hash")
    for key in ("only", "except"):
        if key in job and job[key] is not None:
            errors += _check_policy(f"{where}:{key}", job[key])
    return errors


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _at(where: str) -> str:
    return f"{where}:" if where else ""


def _check_shapes(where: str, job: dict[str, Any]) -> list[str]:
    """The value types of the keywords the planner reads, with GitLab's words."""
    errors: list[str] = []
    if job.get("tags") is not None and not _strings(job["tags"]):
        errors.append(f"{_at(where)}tags config should be an array of strings")
    retry = job.get("retry")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, (int, dict)):
            errors.append(f"{_at(where)}retry config has to be either an integer or a hash")
        elif isinstance(retry, int) and not 0 <= retry <= 2:
            errors.append(f"{_at(where)}retry config must be between 0 and 2")
        elif isinstance(retry, dict):
            unknown = [str(k) for k in retry if k not in ("max", "when", "exit_codes")]
            if unknown:
                errors.append(f"{_at(where)}retry config contains unknown keys: {', '.join(unknown)}")
            if "max" in retry and (isinstance(retry["max"], bool) or not isinstance(retry["max"], int)
                                   or not 0 <= retry["max"] <= 2):
                errors.append(f"{_at(where)}retry max must be an integer between 0 and 2")
            when = retry.get("when", [])
            if not (isinstance(when, str) or _strings(when)):
                errors.append(f"{_at(where)}retry when should be an array of strings or a string")
            codes = retry.get("exit_codes", [])
            if not (isinstance(codes, int) or (isinstance(codes, list) and all(isinstance(c, int) for c in codes))):
                errors.append(f"{_at(where)}retry exit_codes should be an array of integers or an integer")
    caches = job.get("cache")
    for cache in (caches if isinstance(caches, list) else [caches] if caches is not None else []):
        if not isinstance(cache, dict):
            errors.append(f"{_at(where)}cache config should be a hash")
        elif cache.get("paths") is not None and not _strings(cache["paths"]):
            errors.append(f"{_at(where)}cache:paths config should be an array of strings")
        elif isinstance(cache.get("key"), dict) and not _strings(cache["key"].get("files")):
            errors.append(f"{_at(where)}cache:key:files config should be an array of strings")
    artifacts = job.get("artifacts")
    if artifacts is not None:
        if not isinstance(artifacts, dict):
            errors.append(f"{_at(where)}artifacts config should be a hash")
        else:
            for key in ("paths", "exclude"):
                if artifacts.get(key) is not None and not _strings(artifacts[key]):
                    errors.append(f"{_at(where)}artifacts {key} should be an array of strings")
            reports = artifacts.get("reports")
            if reports is not None and not isinstance(reports, dict):
                errors.append(f"{_at(where)}artifacts:reports config should be a hash")
            for name, value in (reports or {}).items() if isinstance(reports, dict) else []:
                if not (isinstance(value, str) or _strings(value)):
                    errors.append(f"{_at(where)}artifacts:reports {name} should be an array of strings or a string")
    env = job.get("environment")
    if env is not None and not (isinstance(env, str) or (isinstance(env, dict) and isinstance(env.get("name"), str))):
        errors.append(f"{_at(where)}environment config should be a hash or a string")
    image = job.get("image")
    if image is not None and not (isinstance(image, str) or (isinstance(image, dict)
                                                              and isinstance(image.get("name"), str))):
        errors.append(f"{_at(where)}image config should be a hash or a string")
    return errors


def _check_policy(where: str, policy: Any) -> list[str]:
    if isinstance(policy, (str, list)):
        items = [policy] if isinstance(policy, str) else policy
        return [] if all(isinstance(i, str) for i in items) else \
            [f"{where} config should be an array of strings or regular expressions using re2 syntax"]
    if isinstance(policy, dict):
        unknown = [k for k in policy if k not in ("refs", "variables", "changes", "kubernetes")]
        if unknown:
            return [f"{where} config contains unknown keys: {', '.join(unknown)}"]
        if "kubernetes" in policy:
            return [f"{where} kubernetes {NOT_SUPPORTED}"]
        errs = [f"{where}:variables invalid expression syntax" for v in policy.get("variables") or []
                if not expressions.valid(v)]
        return errs
    return [f"{where} config should be an array of strings or regular expressions using re2 syntax"]


def _check_defaults(where: str, section: dict[str, Any]) -> list[str]:
    errors = _check_shapes(where, section)
    for key in ("before_script", "after_script"):
        if key in section and not _is_commands(section[key]):
            errors.append(f"{_at(where)}{key} config should be a string or a nested array of strings up to 10 "
                          "levels deep")
    return errors


def check_root(data: dict[str, Any]) -> list[str]:
    """The top-level sections' lint errors (stages, variables, default, workflow, legacy defaults)."""
    errors: list[str] = _check_defaults("", {k: data[k] for k in LEGACY_DEFAULTS if k in data})
    stages = data.get("stages", data.get("types"))
    if stages is not None and not (isinstance(stages, list) and all(isinstance(s, str) for s in stages)):
        errors.append("stages config should be an array of strings")
    if "variables" in data and data["variables"] is not None and not _is_variables(data["variables"]):
        errors.append("variables config should be a hash of key value pairs, value can be a hash")
    default = data.get("default")
    if default is not None:
        if not isinstance(default, dict):
            errors.append("default config should be a hash")
        else:
            unknown = [str(k) for k in default if k not in DEFAULT_KEYS]
            if unknown:
                errors.append(f"default config contains unknown keys: {', '.join(unknown)}")
            errors += [f"default {k} {NOT_SUPPORTED}" for k in default if k in UNSUPPORTED_JOB_KEYS]
            errors += _check_defaults("default", default)
    if data.get("services") is not None:
        errors.append(f"services {NOT_SUPPORTED}")
    workflow = data.get("workflow")
    if workflow is not None:
        if not isinstance(workflow, dict):
            errors.append("workflow config should be a hash")
        else:
            unknown = [str(k) for k in workflow if k not in ("rules", "name", "auto_cancel")]
            if unknown:
                errors.append(f"workflow config contains unknown keys: {', '.join(unknown)}")
            if "auto_cancel" in workflow:
                errors.append(f"workflow auto_cancel {NOT_SUPPORTED}")
            if workflow.get("rules") is not None:
                errors += _check_rules("workflow", workflow["rules"], WORKFLOW_RULE_KEYS, ("always", "never"))
    return errors
