"""Fluent Bit's configuration, read from either of its formats: the classic one (``[SERVICE]``, ``[INPUT]``,
``[FILTER]``, ``[OUTPUT]``, ``[PARSER]``, ``[MULTILINE_PARSER]`` sections, ``@INCLUDE``, ``@SET``) and the YAML one
(``service``, ``pipeline.inputs/filters/outputs``, ``parsers``, ``multiline_parsers``, ``includes``, ``env``).

Both become one :class:`Config`; ``${VAR}`` is replaced from ``@SET``/``env`` and then the environment, as Fluent Bit
does. Every section's keys are checked against what the labkit collector implements: a key it does not know is an
error at start that names it (``ConfigError``), never ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COMMON = {"name", "alias", "match", "match_regex", "tag", "log_level"}
SERVICE_KEYS = {"flush", "grace", "daemon", "log_level", "parsers_file", "http_server", "http_listen", "http_port",
                "health_check", "hc_errors_count", "hc_retry_failure_count", "hc_period", "scheduler.base",
                "scheduler.cap", "storage.metrics"}
PLUGIN_KEYS: dict[str, dict[str, set[str]]] = {
    "input": {
        "tail": {"path", "exclude_path", "db", "db.sync", "db.locking", "db.journal_mode", "read_from_head",
                 "refresh_interval", "rotate_wait", "mem_buf_limit", "skip_long_lines", "skip_empty_lines",
                 "buffer_chunk_size", "buffer_max_size", "multiline.parser", "parser", "path_key", "offset_key",
                 "key", "ignore_older", "inotify_watcher", "storage.type"},
    },
    "filter": {
        "kubernetes": {"kube_url", "kube_ca_file", "kube_token_file", "kube_tag_prefix", "merge_log",
                       "merge_log_key", "merge_log_trim", "keep_log", "labels", "annotations", "k8s-logging.parser",
                       "k8s-logging.exclude", "kube_meta_cache_ttl", "buffer_size", "tls.verify", "regex_parser"},
        "modify": {"set", "add", "remove", "remove_wildcard", "remove_regex", "rename", "hard_rename", "copy",
                   "hard_copy", "condition"},
        "grep": {"regex", "exclude", "logical_op"},
        "record_modifier": {"record", "remove_key", "allowlist_key", "whitelist_key", "uuid_key"},
        "parser": {"key_name", "parser", "reserve_data", "preserve_key"},
    },
    "output": {
        "es": {"host", "port", "path", "index", "type", "logstash_format", "logstash_prefix", "logstash_prefix_key",
               "logstash_dateformat", "time_key", "time_key_format", "time_key_nanos", "include_tag_key",
               "tag_key", "generate_id", "id_key", "write_operation", "replace_dots", "suppress_type_name",
               "retry_limit", "http_user", "http_passwd", "tls", "tls.verify", "tls.ca_file", "buffer_size",
               "trace_error", "trace_output", "current_time_index", "workers"},
    },
}
PLUGIN_KEYS["output"]["opensearch"] = PLUGIN_KEYS["output"]["es"]
PARSER_KEYS = {"name", "format", "regex", "time_key", "time_format", "time_keep", "time_offset", "types",
               "decode_field", "decode_field_as", "skip_empty_values"}
MULTILINE_KEYS = {"name", "type", "flush_timeout", "rule", "rules", "key_content", "parser"}
MULTI_VALUED = {"set", "add", "remove", "remove_wildcard", "remove_regex", "rename", "hard_rename", "copy",
                "hard_copy", "condition", "regex", "exclude", "record", "remove_key", "allowlist_key",
                "whitelist_key", "rule", "parsers_file", "parser"}
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot run; ``str()`` says which section and key, as Fluent Bit's start error does."""


@dataclass
class Section:
    """One plugin instance or parser: its (lower-cased) keys; a key given several times keeps every value."""

    kind: str  # input, filter, output, parser, multiline_parser
    props: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.get("name")

    def get(self, key: str, default: str = "") -> str:
        values = self.props.get(key)
        return values[-1] if values else default

    def all(self, key: str) -> list[str]:
        return list(self.props.get(key, []))

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        return default if value == "" else to_bool(value)

    def number(self, key: str, default: float) -> float:
        value = self.get(key)
        return default if value == "" else float(value)

    def size(self, key: str, default: int) -> int:
        value = self.get(key)
        return default if value == "" else to_size(value)


@dataclass
class Config:
    service: Section
    inputs: list[Section]
    filters: list[Section]
    outputs: list[Section]
    parsers: list[Section]
    multiline_parsers: list[Section]
    base: Path  # the folder relative paths (parsers_file, @INCLUDE) are read from


def to_bool(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise ConfigError(f"invalid boolean value '{value}'")


def to_size(value: str) -> int:
    """Fluent Bit's sizes: ``32k``, ``5MB``, ``1G`` (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", str(value))
    if not m:
        raise ConfigError(f"invalid size value '{value}'")
    return int(float(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " "))


def load(path: Path, env: dict[str, str] | None = None) -> Config:
    """Reads ``path`` (YAML when it ends in .yaml/.yml, classic otherwise) and checks every key."""
    variables = dict(os.environ if env is None else env)
    cfg = Config(Section("service"), [], [], [], [], [], path.parent)
    if path.suffix in (".yaml", ".yml"):
        _load_yaml(path, cfg, variables)
    else:
        _load_classic(path, cfg, variables)
    for extra in cfg.service.all("parsers_file"):
        p = Path(extra) if Path(extra).is_absolute() else cfg.base / extra
        if not p.exists():
            raise ConfigError(f"[config] parsers file '{extra}' not found")
        sub = load(p, variables)
        cfg.parsers += sub.parsers
        cfg.multiline_parsers += sub.multiline_parsers
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    _check_keys(cfg.service, SERVICE_KEYS, "service")
    for kind, sections in (("input", cfg.inputs), ("filter", cfg.filters), ("output", cfg.outputs)):
        for s in sections:
            name = s.name.lower()
            if not name:
                raise ConfigError(f"[config] {kind} section without a name")
            known = PLUGIN_KEYS[kind].get(name)
            if known is None:
                raise ConfigError(f"[config] {kind} plugin '{name}' is not supported by the labkit simulator "
                                  f"(it runs {', '.join(sorted(PLUGIN_KEYS[kind]))})")
            _check_keys(s, known | COMMON, name)
    for s in cfg.parsers:
        _check_keys(s, PARSER_KEYS, f"parser '{s.name}'")
    for s in cfg.multiline_parsers:
        _check_keys(s, MULTILINE_KEYS, f"multiline parser '{s.name}'")


def _check_keys(s: Section, known: set[str], what: str) -> None:
    for key in s.props:
        if key not in known:
            raise ConfigError(f"[config] {what}: unknown configuration property '{key}' (not supported by the "
                              f"labkit simulator). The following properties are allowed: "
                              f"{', '.join(sorted(known))}.")


def _expand(value: str, variables: dict[str, str]) -> str:
    return VAR.sub(lambda m: variables.get(m.group(1), ""), value)


# -- classic ------------------------------------------------------------------------------------------------------
def _load_classic(path: Path, cfg: Config, variables: dict[str, str]) -> None:
    current: Section | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@SET "):
            k, _, v = line[5:].partition("=")
            variables[k.strip()] = _expand(v.strip(), variables)
            continue
        if line.startswith("@INCLUDE "):
            pattern = line[9:].strip()
            base = Path(pattern) if Path(pattern).is_absolute() else path.parent / pattern
            matches = sorted(base.parent.glob(base.name))
            if not matches:
                raise ConfigError(f"[config] @INCLUDE {pattern}: no such file ({path}:{number})")
            for inc in matches:
                _load_classic(inc, cfg, variables)
            current = None
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"[config] invalid section header {line!r} ({path}:{number})")
            current = _new_section(cfg, line[1:-1].strip().lower(), path, number)
            continue
        if current is None:
            raise ConfigError(f"[config] key outside of a section: {line!r} ({path}:{number})")
        key, _, value = line.partition(" ")
        if not value.strip() and "\t" in key:
            key, _, value = key.partition("\t")
        key = key.strip().lower()
        value = _expand(value.strip(), variables)
        if current.kind == "multiline_parser" and key == "rule":
            current.props.setdefault("rule", []).append(value)
            continue
        current.props.setdefault(key, []).append(value)
        if key not in MULTI_VALUED and len(current.props[key]) > 1:
            current.props[key] = [value]


def _new_section(cfg: Config, header: str, path: Path, number: int) -> Section:
    if header == "service":
        return cfg.service
    lists = {"input": cfg.inputs, "filter": cfg.filters, "output": cfg.outputs, "parser": cfg.parsers,
             "multiline_parser": cfg.multiline_parsers}
    if header not in lists:
        raise ConfigError(f"[config] section [{header.upper()}] is not supported by the labkit simulator "
                          f"({path}:{number})")
    s = Section(header)
    lists[header].append(s)
    return s


# -- YAML ---------------------------------------------------------------------------------------------------------
def _load_yaml(path: Path, cfg: Config, variables: dict[str, str]) -> None:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"[config] {path}: invalid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"[config] {path}: the configuration must be a mapping")
    for k, v in (doc.get("env") or {}).items():
        variables[str(k)] = _expand(str(v), variables)
    for inc in doc.get("includes") or []:
        p = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        _load_yaml(p, cfg, variables)
    unknown = set(doc) - {"env", "includes", "service", "pipeline", "parsers", "multiline_parsers"}
    if unknown:
        raise ConfigError(f"[config] {path}: section '{sorted(unknown)[0]}' is not supported by the labkit "
                          "simulator")
    for k, v in (doc.get("service") or {}).items():
        _put(cfg.service, k, v, variables)
    pipeline = doc.get("pipeline") or {}
    for key, target, kind in (("inputs", cfg.inputs, "input"), ("filters", cfg.filters, "filter"),
                              ("outputs", cfg.outputs, "output")):
        for item in pipeline.get(key) or []:
            target.append(_yaml_section(kind, item, variables))
    extra = set(pipeline) - {"inputs", "filters", "outputs"}
    if extra:
        raise ConfigError(f"[config] pipeline: '{sorted(extra)[0]}' is not supported by the labkit simulator")
    for item in doc.get("parsers") or []:
        cfg.parsers.append(_yaml_section("parser", item, variables))
    for item in doc.get("multiline_parsers") or []:
        s = Section("multiline_parser")
        for k, v in item.items():
            if k == "rules":
                s.props["rule"] = [_rule_text(r) for r in v or []]
            else:
                _put(s, k, v, variables)
        cfg.multiline_parsers.append(s)


def _yaml_section(kind: str, item: Any, variables: dict[str, str]) -> Section:
    if not isinstance(item, dict):
        raise ConfigError(f"[config] a {kind} must be a mapping, got {item!r}")
    s = Section(kind)
    for k, v in item.items():
        if k == "processors":
            raise ConfigError(f"[config] {kind} '{item.get('name')}': 'processors' is not supported by the labkit "
                              "simulator")
        _put(s, k, v, variables)
    return s


def _put(s: Section, key: str, value: Any, variables: dict[str, str]) -> None:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, bool):
            v = "on" if v else "off"
        out.append(_expand(str(v), variables))
    s.props.setdefault(str(key).lower(), []).extend(out)


def _rule_text(rule: dict[str, Any]) -> str:
    """A YAML rule as the classic format writes it: ``"state" "/regex/" "next_state"``."""
    return f'"{rule["state"]}" "{rule["regex"]}" "{rule["next_state"]}"'
