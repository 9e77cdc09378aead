"""Loading ``.gitlab-ci.yml`` as GitLab does: ``include: local``, ``extends``, ``default`` (and the legacy
top-level defaults), ``!reference``, and the static checks of its lint, in its words.

``load_config()`` returns a ``CiConfig``: the merged file (what lint returns as ``merged_yaml``), the stages,
global variables, ``workflow``, and every visible job fully resolved, or the errors GitLab's lint reports.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import expressions
from .durations import duration
from .yamlfile import Reference, YamlDoc, YamlSyntaxError, dump, load

DEFAULT_STAGES = ["build", "test", "deploy"]
ROOT_KEYS = ("default", "include", "before_script", "image", "services", "after_script", "variables", "stages",
             "types", "cache", "workflow")
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
MAX_EXTENDS_DEPTH = 11
MAX_INCLUDES = 150
NOT_SUPPORTED = "is not supported by the labkit simulator"
MULTIPLE_PIPELINES_WARNING = ("may allow multiple pipelines to run for a single action due to `rules:when` clause "
                              "with no `workflow:rules` - read more: "
                              "https://docs.gitlab.com/ee/ci/troubleshooting.html#pipeline-warnings")

FileReader = Callable[[str], "bytes | None"]
FileLister = Callable[[], "list[str]"]


@dataclass
class ConfigError:
    """One lint error: GitLab's message, and where it is when that is known (``path:line``)."""

    message: str
    location: str | None = None


@dataclass
class CiConfig:
    """The resolved configuration, or its errors."""

    merged: dict[str, Any] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    workflow: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # visible jobs, extends/default applied
    includes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: dict[tuple[str, ...], str] = field(default_factory=dict)  # key path → "file:line"

    @property
    def merged_yaml(self) -> str:
        return dump(self.merged) if self.merged else ""

    def where(self, *key: str) -> str | None:
        """Where a key (a job, or a job's key) is written."""
        return self.lines.get(tuple(key)) or (self.lines.get(key[:1]) if key else None)


class _Fail(Exception):
    def __init__(self, message: str, location: str | None = None):
        super().__init__(message)
        self.error = ConfigError(message, location)


# --- include ----------------------------------------------------------------------------------------------


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Hashes merge key by key, anything else is replaced (GitLab's ``deep_merge``)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _include_entries(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _local_path(entry: Any) -> tuple[str | None, str | None]:
    """(local path, None) or (None, why it is not supported)."""
    if isinstance(entry, str):
        if re.match(r"\A\w+://", entry):
            return None, f"Included file `{entry}` (remote) {NOT_SUPPORTED}"
        return entry, None
    if isinstance(entry, dict):
        if "local" in entry:
            extra = [k for k in entry if k != "local"]
            if extra:
                return None, f"`include: local` with {', '.join(f'`{k}`' for k in extra)} {NOT_SUPPORTED}"
            return str(entry["local"]), None
        kind = next(iter(entry), "include")
        return None, f"`include: {kind}` {NOT_SUPPORTED}; use `include: local`"
    return None, "Include config should be a string or a hash"


class _Loader:
    """Reads the root file and its local includes, merging them as GitLab does."""

    def __init__(self, read: FileReader, list_files: FileLister | None, project: str, sha: str, web_url: str):
        self.read, self.list_files, self.project, self.sha = read, list_files, project, sha
        self.web_url = web_url or f"/{project}"
        self.includes: list[dict[str, Any]] = []
        self.lines: dict[tuple[str, ...], str] = {}
        self.count = 0

    def _record_lines(self, doc: YamlDoc) -> None:
        for key, line in doc.lines.items():
            self.lines[key] = f"{doc.path}:{line}"

    def expand(self, doc: YamlDoc, stack: tuple[str, ...]) -> dict[str, Any]:
        data = doc.data
        if not isinstance(data, dict):
            raise _Fail("Invalid configuration format" if data is not None else
                        "Please provide content of .gitlab-ci.yml", doc.path)
        merged: dict[str, Any] = {}
        # GitLab maps a file's includes first (recording each), then expands them one by one
        paths = [self._register(path, stack) for entry in _include_entries(data.get("include"))
                 for path in self._resolve(entry, doc.path)]
        for path, content in paths:
            merged = _deep_merge(merged, self._include(path, content, stack))
        own = {k: v for k, v in data.items() if k != "include"}
        self._record_lines(doc)
        return _deep_merge(merged, own)

    def _resolve(self, entry: Any, parent: str) -> list[str]:
        path, problem = _local_path(entry)
        if problem or path is None:
            raise _Fail(problem or "Include config should be a string or a hash", parent)
        path = path.lstrip("/")
        if any(ch in path for ch in "*?["):
            files = self.list_files() if self.list_files else []
            found = [f for f in files if fnmatch.fnmatchcase(f, path) and f.endswith((".yml", ".yaml"))]
            return sorted(found)
        return [path]

    def _register(self, path: str, stack: tuple[str, ...]) -> tuple[str, bytes]:
        self.count += 1
        if self.count > MAX_INCLUDES:
            raise _Fail(f"Maximum of {MAX_INCLUDES} nested includes are allowed!")
        if not path.endswith((".yml", ".yaml")):
            raise _Fail(f"Included file `{path}` does not have YAML extension!")
        if path in stack:
            raise _Fail(f"Include `{path}` was already included!")
        content = self.read(path)
        if content is None:
            raise _Fail(f"Local file `{path}` does not exist!")
        self.includes.append({
            "type": "local", "location": path, "blob": f"{self.web_url}/-/blob/{self.sha}/{path}",
            "raw": f"{self.web_url}/-/raw/{self.sha}/{path}", "extra": {}, "context_project": self.project,
            "context_sha": self.sha})
        return path, content

    def _include(self, path: str, content: bytes, stack: tuple[str, ...]) -> dict[str, Any]:
        text = content.decode("utf-8", "replace")
        invalid = f"Included file `{path}` does not have valid YAML syntax!"
        try:
            doc = load(text, path)
        except YamlSyntaxError as err:
            raise _Fail(invalid, f"{path}:{err.line}" if err.line else path) from err
        if not doc.data or not isinstance(doc.data, dict):  # an empty (or comments-only) file too
            raise _Fail(invalid, path)
        return self.expand(doc, (*stack, path))


# --- extends and !reference -------------------------------------------------------------------------------


def _extends_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _resolve_extends(name: str, config: dict[str, Any], done: dict[str, dict[str, Any]],
                     stack: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in done:
        return done[name]
    job = config[name]
    if not isinstance(job, dict) or "extends" not in job:
        done[name] = job
        return job
    if name in stack:
        raise _Fail(f"{name}: circular dependency detected in `extends`")
    if len(stack) >= MAX_EXTENDS_DEPTH:
        raise _Fail(f"{name}: nesting too deep in `extends`")
    if not isinstance(job["extends"], (str, list)):
        raise _Fail(f"jobs:{name} extends should be an array of strings or a string")
    bases = _extends_list(job["extends"])
    if not all(isinstance(b, str) for b in bases):
        raise _Fail(f"jobs:{name} extends should be an array of strings or a string")
    unknown = [b for b in bases if b not in config]
    if unknown:
        raise _Fail(f"{name}: unknown keys in `extends` ({', '.join(unknown)})")
    merged: dict[str, Any] = {}
    for base in bases:
        resolved = _resolve_extends(base, config, done, (*stack, name))
        if not isinstance(resolved, dict):
            raise _Fail(f"{name}: invalid base hash in `extends`")
        merged = _deep_merge(merged, {k: v for k, v in resolved.items() if k != "extends"})
    merged = _deep_merge(merged, job)
    done[name] = merged
    return merged


def _ruby_list(path: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{p}"' for p in path) + "]"


def _resolve_references(value: Any, root: dict[str, Any], chain: tuple[tuple[str, ...], ...] = ()) -> Any:
    """``!reference`` tags replaced by what they point at (GitLab's ``Yaml::Tags::Resolver`` messages)."""
    if isinstance(value, Reference):
        if value.path in chain:
            raise _Fail(f"!reference {_ruby_list(value.path)} is part of a circular chain")
        target: Any = root
        for part in value.path:
            if not isinstance(target, dict) or part not in target:
                raise _Fail(f"!reference {_ruby_list(value.path)} could not be found")
            target = target[part]
        return _resolve_references(target, root, (*chain, value.path))
    if isinstance(value, dict):
        return {k: _resolve_references(v, root, chain) for k, v in value.items()}
    if isinstance(value, list):  # a referenced list inside a script stays nested (scripts are flattened later)
        return [_resolve_references(item, root, chain) for item in value]
    return value


# --- validation ---------------------------------------------------------------------------------------------


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


def _check_job(name: str, job: Any) -> list[str]:
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


def _check_root(data: dict[str, Any]) -> list[str]:
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


# --- defaults ---------------------------------------------------------------------------------------------


def _apply_default(job: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    inherit = job.get("inherit") or {}
    which = inherit.get("default", True) if isinstance(inherit, dict) else True
    out = dict(job)
    for key, value in default.items():
        if key in out:
            continue
        if which is False or (isinstance(which, list) and key not in which):
            continue
        out[key] = value
    return out


def load_config(text: str, read: FileReader, list_files: FileLister | None = None, *, project: str = "",
                sha: str = "", path: str = ".gitlab-ci.yml", web_url: str = "") -> CiConfig:
    """The configuration in ``text`` with its local includes (``read(path)``), resolved and checked."""
    result = CiConfig()
    if not text or not text.strip():
        result.errors.append(ConfigError("Please provide content of .gitlab-ci.yml", path))
        return result
    loader = _Loader(read, list_files, project, sha, web_url)
    try:
        doc = load(text, path)
        data = loader.expand(doc, (path,))
        result.lines, result.includes = loader.lines, loader.includes
        data = _expand_extends(data)
        data = _resolve_references(data, data)
    except YamlSyntaxError as err:
        result.errors.append(ConfigError(str(err), f"{path}:{err.line}" if err.line else path))
        return result
    except _Fail as fail:
        result.lines, result.includes = loader.lines, loader.includes
        result.errors.append(fail.error)
        return result
    result.merged = data
    errors = _check_root(data)
    job_items = {str(k): v for k, v in data.items() if k not in ROOT_KEYS}
    visible = {k: v for k, v in job_items.items() if not k.startswith(".")}
    for name, job in visible.items():
        errors += _check_job(name, job)
    if not visible:
        errors.append("jobs config should contain at least one visible job")
    if errors:
        result.errors = [ConfigError(e, _locate(e, result.lines)) for e in errors]
        return result

    stages = list(data.get("stages") or data.get("types") or DEFAULT_STAGES)
    result.stages = [".pre", *[s for s in stages if s not in (".pre", ".post")], ".post"]
    result.variables = variables_of(data.get("variables"))
    result.workflow = data.get("workflow") or {}
    default = {k: data[k] for k in LEGACY_DEFAULTS if k in data}
    default.update(data.get("default") or {})
    has_workflow_rules = bool(result.workflow.get("rules"))
    for name, job in visible.items():
        rules = job.get("rules")
        if rules and not has_workflow_rules:
            last = rules[-1]
            if isinstance(last, dict) and list(last) == ["when"] and last["when"] != "never":
                result.warnings.append(f"jobs:{name} {MULTIPLE_PIPELINES_WARNING}")
        job = _apply_default(job, default)
        job.setdefault("stage", job.pop("type", "test") if "type" in job else "test")
        result.jobs[name] = job
    _check_stages_and_needs(result)
    return result


def _expand_extends(data: dict[str, Any]) -> dict[str, Any]:
    done: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in ROOT_KEYS and isinstance(value, dict) and "extends" in value:
            resolved = dict(_resolve_extends(str(key), data, done))
            resolved.pop("extends", None)
            out[key] = resolved
        else:
            out[key] = value
    return out


def need_names(needs: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``needs:`` entries as (job name, options)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for need in needs:
        if isinstance(need, str):
            out.append((need, {}))
        elif isinstance(need, dict) and "job" in need:
            out.append((str(need["job"]), need))
    return out


def _check_stages_and_needs(result: CiConfig) -> None:
    """The checks GitLab's YAML processor makes once every job is known (it reports the first)."""
    stages = result.stages
    for name, job in result.jobs.items():
        stage = job.get("stage")
        if stage not in stages:
            message = (f"{name} job: chosen stage {stage} does not exist; available stages are "
                       f"{', '.join(stages)}")
            result.errors.append(ConfigError(message, result.where(name, "stage")))
            return
    for name, job in result.jobs.items():
        index = stages.index(job["stage"])
        needs = job.get("needs")
        for need, _ in need_names(needs or []):
            if need not in result.jobs:
                result.errors.append(ConfigError(f"{name} job: undefined need: {need}", result.where(name, "needs")))
                return
            if stages.index(result.jobs[need]["stage"]) > index:
                result.errors.append(ConfigError(f"{name} job: need {need} is not defined in current or prior stages",
                                                 result.where(name, "needs")))
                return
        for dep in job.get("dependencies") or []:
            if dep not in result.jobs:
                result.errors.append(ConfigError(f"{name} job: undefined dependency: {dep}",
                                                 result.where(name, "dependencies")))
                return
            if stages.index(result.jobs[dep]["stage"]) > index:
                result.errors.append(ConfigError(f"{name} job: dependency {dep} is not defined in current or prior "
                                                 "stages", result.where(name, "dependencies")))
                return
        if needs is not None and job.get("dependencies"):
            missing = [d for d in job["dependencies"] if d not in [n for n, _ in need_names(needs)]]
            if missing:
                result.errors.append(ConfigError(f"jobs:{name} dependencies the {', '.join(missing)} should be part "
                                                 "of needs", result.where(name, "dependencies")))
                return


_JOB_IN_MESSAGE = re.compile(r"\A(?:jobs[: ](?P<a>[^: ]+)|(?P<b>[^ ]+) job:|(?P<c>[^ :]+):)")


def _locate(message: str, lines: dict[tuple[str, ...], str]) -> str | None:
    """The line of the job or root key a lint message is about."""
    m = _JOB_IN_MESSAGE.match(message)
    if m:
        name = m.group("a") or m.group("b") or m.group("c")
        unknown = re.search(r"unknown keys: ([^,\s]+)", message)
        if unknown and (name, unknown.group(1)) in lines:
            return lines[(name, unknown.group(1))]
        key = re.search(r"\A\S+?:(\w+)", message)
        if key and (name, key.group(1)) in lines:
            return lines[(name, key.group(1))]
        if (name,) in lines:
            return lines[(name,)]
    first = message.split(" ", 1)[0]
    return lines.get((first,))
