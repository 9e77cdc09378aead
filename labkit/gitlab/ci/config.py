"""Loading ``.gitlab-ci.yml`` as GitLab does: ``include: local``, ``extends``, ``default`` (and the legacy
top-level defaults), ``!reference``, then its lint's checks (``keywords.py``, and here the ones that need every
job: stages, ``needs``, ``dependencies``), in its words and with the line of each error.

``load_config()`` returns a ``CiConfig``: the merged file (what lint returns as ``merged_yaml``), the stages,
global variables, ``workflow``, and every visible job fully resolved, or the errors GitLab's lint reports.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .keywords import LEGACY_DEFAULTS, NOT_SUPPORTED, check_job, check_root, variables_of
from .yamlfile import Reference, YamlDoc, YamlSyntaxError, dump, load

DEFAULT_STAGES = ["build", "test", "deploy"]
ROOT_KEYS = ("default", "include", "before_script", "image", "services", "after_script", "variables", "stages",
             "types", "cache", "workflow")
MAX_EXTENDS_DEPTH = 11
MAX_INCLUDES = 150
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
    errors = check_root(data)
    job_items = {str(k): v for k, v in data.items() if k not in ROOT_KEYS}
    visible = {k: v for k, v in job_items.items() if not k.startswith(".")}
    for name, job in visible.items():
        errors += check_job(name, job)
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
