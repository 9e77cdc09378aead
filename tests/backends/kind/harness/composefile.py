"""A compose project read as Docker Compose v2 reads it: env files, interpolation, the Compose Specification.

The env files (``--env-file``) are parsed as compose's dotenv does; the shell's environment wins over them.
Every string of the YAML is interpolated (``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+alt}``, ``${VAR+alt}``, ``$$``) with compose's messages,
then the result is validated against ``tests/backends/kind/schemas/compose-spec.json`` and a refusal is
worded as compose words it (the most specific error, ``validating FILE: PATH MESSAGE``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .flags import Failure
from .schemas import validator

if TYPE_CHECKING:
    import jsonschema

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


class InvalidTemplate(Exception):
    """compose-go's InvalidTemplateError: a ``$`` that starts no valid substitution."""


def parse_env_file(text: str, lookup: dict[str, str]) -> dict[str, str]:
    """``KEY=VALUE`` lines as compose's dotenv reads them (quotes, ``export``, comments, ``${}`` expansion)."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            if _NAME.fullmatch(key) and key in lookup:
                out[key] = lookup[key]
            continue
        if " " in key or not key:
            raise Failure(f"line {number}: key cannot contain a space")
        value = value.lstrip()
        env = {**lookup, **out}
        if value[:1] == "'" and "'" in value[1:]:
            out[key] = value[1:value.index("'", 1)]
        elif value[:1] == '"' and '"' in value[1:]:
            body = re.match(r'"((?:[^"\\]|\\.)*)"', value)
            quoted = body.group(1) if body else value[1:]
            quoted = quoted.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            out[key] = interpolate(quoted, env, "")
        else:
            out[key] = interpolate(re.sub(r"\s+#.*$", "", value).rstrip(), env, "")
    return out


def interpolate(text: str, env: dict[str, str], path: str) -> str:
    """One string, substituted as compose-go's template package does."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InvalidTemplate(text)
            out.append(_braced(text[i + 2:end], env, path, text))
            i = end + 1
        else:
            match = _NAME.match(text, i + 1)
            if not match:
                raise InvalidTemplate(text)
            out.append(_value(match.group(0), env, path))
            i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{" and text[j - 1] == "$":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _value(name: str, env: dict[str, str], path: str) -> str:
    if name not in env:
        print(f'WARN[0000] The "{name}" variable is not set. Defaulting to a blank string.', file=sys.stderr)
        return ""
    return env[name]


def _braced(body: str, env: dict[str, str], path: str, whole: str) -> str:
    match = re.fullmatch(r"([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?)([-+?])(.*))?", body, re.S)
    if not match:
        raise InvalidTemplate(whole)
    name, colon, op, arg = match.groups()
    if op is None:
        return _value(name, env, path)
    present = name in env and (not colon or env[name] != "")
    if op == "-":
        return env[name] if present else interpolate(arg, env, path)
    if op == "+":
        return interpolate(arg, env, path) if present else ""
    if not present:
        reason = interpolate(arg, env, path)
        detail = f": {reason}" if reason else ""
        raise Failure(f"error while interpolating {path}: required variable {name} is missing a value{detail}")
    return env[name]


def _walk(node: Any, env: dict[str, str], path: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, env, [*path, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, env, [*path, "[]"]) for v in node]
    if isinstance(node, str):
        where = ".".join(path)
        try:
            return interpolate(node, env, where)
        except InvalidTemplate as err:
            raise Failure(f"invalid interpolation format for {where}.\nYou may need to escape any $ with another $."
                          f"\n{err}") from None
    return node


def _errors(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    return [err, *(e for c in err.context or [] for e in _errors(c))]


def _specificity(err: jsonschema.ValidationError) -> int:
    return len(err.absolute_path) + (1 if err.validator == "additionalProperties" else 0)


def _human_type(want: Any) -> str:
    names = sorted("mapping" if t == "object" else str(t) for t in (want if isinstance(want, list) else [want]))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _message(err: jsonschema.ValidationError) -> str:
    """A schema error as compose-go words it: ``services.haproxy additional properties 'foo' not allowed``."""
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "type":
        return f"{path} must be a {_human_type(err.validator_value)}"
    if err.validator == "minimum":
        return f"{path} must be greater than or equal to {err.validator_value}"
    if err.validator == "maximum":
        return f"{path} must be less than or equal to {err.validator_value}"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        extra = [k for k in extra if not any(re.search(p, k) for p in err.schema.get("patternProperties", {}))]
        return f"{path} additional properties {', '.join(repr(k) for k in extra)} not allowed"
    if err.validator == "enum":
        return f"{path} value must be one of {', '.join(repr(v) for v in err.validator_value)}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"{path} missing property '{missing}'"
    return f"{path} {err.message}"


@dataclass
class Project:
    """A loaded compose project: its name, files, working folder, merged model and environment."""

    name: str
    files: list[Path]
    workdir: Path
    model: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    def services(self, profiles: list[str]) -> dict[str, dict[str, Any]]:
        """The services that run with these profiles (those without ``profiles`` always do)."""
        return {name: svc for name, svc in (self.model.get("services") or {}).items()
                if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)}

    def container_name(self, service: str) -> str:
        svc = self.model["services"][service]
        return svc.get("container_name") or f"{self.name}-{service}-1"


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def load(files: list[str], env_files: list[str] | None, project_name: str, project_dir: str | None) -> Project:
    """Read the project as ``docker compose --file ... --env-file ... --project-name ...`` does."""
    cwd = Path.cwd()
    paths = [(cwd / f).resolve() for f in files]
    if not paths:
        base = Path(project_dir).resolve() if project_dir else cwd
        found = next((base / n for n in DEFAULT_FILES if (base / n).is_file()), None)
        if found is None:
            raise Failure("no configuration file provided: not found")
        paths = [found]
    for p in paths:
        if not p.is_file():
            raise Failure(f"open {p}: no such file or directory")
    workdir = Path(project_dir).resolve() if project_dir else paths[0].parent
    env_paths = [(cwd / e).resolve() for e in env_files] if env_files else [workdir / ".env"]
    file_env: dict[str, str] = {}
    for e in env_paths:
        if not e.exists():
            if env_files:
                raise Failure(f"couldn't find env file: {e}")
            continue
        file_env.update(parse_env_file(e.read_text(), {**file_env, **os.environ}))
    env = {**file_env, **os.environ}
    name = project_name or env.get("COMPOSE_PROJECT_NAME") or workdir.name
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise Failure(f'invalid project name "{name}": must consist only of lowercase alphanumeric characters, '
                      "hyphens, and underscores as well as start with a letter or number")
    model: dict[str, Any] = {}
    for p in paths:
        try:
            raw = yaml.safe_load(p.read_text())
        except yaml.YAMLError as err:
            raise Failure(f"yaml: {err}") from None
        if raw is None:
            raise Failure("empty compose file")
        if not isinstance(raw, dict):
            raise Failure("top-level object must be a mapping")
        doc = _walk(raw, env, [])
        errors = [e for top in validator("compose-spec.json").iter_errors(doc) for e in _errors(top)]
        if errors:
            worst = max(errors, key=_specificity)
            raise Failure(f"validating {p}: {_message(worst)}")
        model = _merge(model, doc)
    return Project(name, paths, workdir, model, env)
