"""Prometheus' relabeling (``relabel_configs`` and ``metric_relabel_configs``): the actions replace, keep, drop,
keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase, with Prometheus' defaults
(separator ``;``, regex ``(.*)`` anchored at both ends, replacement ``$1``) and RE2's ``$1``/``${name}``
expansion."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACTIONS = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop", "labelkeep",
           "lowercase", "uppercase")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
EXPANSION = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+)|(\$))")


class RelabelError(ValueError):
    """A relabel configuration Prometheus refuses."""


def expand(template: str, match: re.Match[str]) -> str:
    """RE2's Regexp.Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; an unknown group is empty (``$1x``
    is the group named ``1x``, as in Go)."""
    def one(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        ref = m.group(1) or m.group(2)
        try:
            value = match.group(int(ref)) if ref.isdigit() else match.group(ref)
        except IndexError:  # no such group
            return ""
        return value or ""
    return EXPANSION.sub(one, template)


def go_regex(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern anchored at both ends, as Prometheus compiles relabel regexes."""
    return re.compile(f"^(?:{pattern})$", re.DOTALL)


@dataclass(frozen=True)
class RelabelConfig:
    source_labels: tuple[str, ...] = ()
    separator: str = ";"
    regex: str = "(.*)"
    modulus: int = 0
    target_label: str = ""
    replacement: str = "$1"
    action: str = "replace"

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compiled(self.regex)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> RelabelConfig:
        """One entry of a relabel list, checked as Prometheus checks it."""
        unknown = set(raw) - {"source_labels", "separator", "regex", "modulus", "target_label", "replacement",
                              "action"}
        if unknown:
            raise RelabelError(f"field {', '.join(sorted(unknown))} not found in type relabel.plain")
        action = str(raw.get("action", "replace")).lower()
        if action not in ACTIONS:
            raise RelabelError(f"unknown relabel action {raw.get('action')!r}")
        cfg = cls(tuple(str(s) for s in raw.get("source_labels") or ()), str(raw.get("separator", ";")),
                  str(raw.get("regex", "(.*)")), int(raw.get("modulus", 0)), str(raw.get("target_label", "")),
                  str(raw.get("replacement", "$1")), action)
        try:
            _compiled(cfg.regex)
        except re.error as err:
            raise RelabelError(f"error parsing regexp: {err}") from None
        if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal") \
                and not cfg.target_label:
            raise RelabelError(f"relabel configuration for {action} action requires 'target_label' value")
        if action == "hashmod" and not cfg.modulus:
            raise RelabelError("relabel configuration for hashmod requires non-zero modulus")
        if action in ("labeldrop", "labelkeep") and (cfg.source_labels or cfg.target_label):
            raise RelabelError(f"{action} action requires only 'regex', and no other fields")
        return cfg


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(regex: str) -> re.Pattern[str]:
    pattern = _cache.get(regex)
    if pattern is None:
        pattern = _cache[regex] = go_regex(regex)
    return pattern


def hashmod(value: str, modulus: int) -> int:
    """Prometheus' hashmod: the last 8 bytes of the MD5 sum, big-endian, modulo ``modulus``."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def relabel(labels: dict[str, str], configs: Sequence[RelabelConfig]) -> dict[str, str] | None:
    """The labels after every step, or None when a keep/drop step drops the target (or sample)."""
    out = dict(labels)
    for cfg in configs:
        value = cfg.separator.join(out.get(name, "") for name in cfg.source_labels)
        a = cfg.action
        if (a == "keep" and not cfg.pattern.match(value)) or (a == "drop" and cfg.pattern.match(value)):
            return None
        if (a == "keepequal" and value != out.get(cfg.target_label, "")) \
                or (a == "dropequal" and value == out.get(cfg.target_label, "")):
            return None
        if a == "replace":
            m = cfg.pattern.match(value)
            if m is None:
                continue
            target = expand(cfg.target_label, m)
            if not LABEL_NAME.match(target):
                continue
            new = expand(cfg.replacement, m)
            if new:
                out[target] = new
            else:
                out.pop(target, None)
        elif a in ("lowercase", "uppercase"):
            out[cfg.target_label] = value.lower() if a == "lowercase" else value.upper()
        elif a == "hashmod":
            out[cfg.target_label] = str(hashmod(value, cfg.modulus))
        elif a == "labelmap":
            for name, v in list(out.items()):
                m = cfg.pattern.match(name)
                if m is not None:
                    out[expand(cfg.replacement, m)] = v
        elif a == "labeldrop":
            out = {k: v for k, v in out.items() if not cfg.pattern.match(k)}
        elif a == "labelkeep":
            out = {k: v for k, v in out.items() if cfg.pattern.match(k)}
    return {k: v for k, v in out.items() if v != ""}
