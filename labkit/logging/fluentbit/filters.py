"""The ``modify``, ``grep``, ``record_modifier`` and ``parser`` filters, and Fluent Bit's record accessor
(``$kubernetes['namespace_name']``) they share, and tag matching (``Match``, ``Match_Regex``)."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable
from typing import Any

from .config import ConfigError, Section
from .parsers import Parser

Record = dict[str, Any]
ACCESSOR = re.compile(r"\[\s*['\"]?([^'\"\]]+)['\"]?\s*\]")


def matcher(s: Section) -> Callable[[str], bool]:
    """Whether a tag is routed to this plugin: ``match`` (``*`` wildcards) or ``match_regex``."""
    if s.get("match_regex"):
        rx = re.compile(s.get("match_regex"))
        return lambda tag: rx.search(tag) is not None
    pattern = s.get("match")
    if not pattern:
        return lambda tag: False
    if pattern == "*":
        return lambda tag: True
    return lambda tag: fnmatch.fnmatchcase(tag, pattern)


def accessor(text: str) -> list[str]:
    """``$a['b']['c']`` -> [a, b, c]; ``key`` -> [key]."""
    if not text.startswith("$"):
        return [text]
    head = re.match(r"\$([^\[]+)", text)
    if head is None:
        raise ConfigError(f"invalid record accessor '{text}'")
    return [head.group(1), *ACCESSOR.findall(text[head.end():])]


def lookup(rec: Record, path: list[str]) -> Any:
    cur: Any = rec
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _pairs(values: list[str], what: str, n: int = 2) -> list[list[str]]:
    out = []
    for v in values:
        parts = v.split(None, n - 1)
        if len(parts) != n:
            raise ConfigError(f"[filter:{what}] invalid value '{v}'")
        out.append(parts)
    return out


class Grep:
    """``Regex KEY REGEX`` keeps matching records, ``Exclude KEY REGEX`` drops them; ``Logical_Op`` and/or."""

    def __init__(self, s: Section) -> None:
        self.regex = [(accessor(k), re.compile(r)) for k, r in _pairs(s.all("regex"), "grep")]
        self.exclude = [(accessor(k), re.compile(r)) for k, r in _pairs(s.all("exclude"), "grep")]
        self.op = s.get("logical_op", "legacy").lower()
        if self.op not in ("legacy", "and", "or"):
            raise ConfigError(f"[filter:grep] invalid logical_op '{self.op}'")
        if self.op != "legacy" and self.regex and self.exclude:
            raise ConfigError("[filter:grep] Regex and Exclude can not be mixed with Logical_Op")

    def __call__(self, tag: str, ts: float, rec: Record) -> list[tuple[float, Record]]:
        def hit(rule: tuple[list[str], re.Pattern[str]]) -> bool:
            value = lookup(rec, rule[0])
            return value is not None and rule[1].search(value if isinstance(value, str) else str(value)) is not None

        if self.op == "or":
            keep = any(hit(r) for r in self.regex) if self.regex else not any(hit(r) for r in self.exclude)
        elif self.op == "and":
            keep = all(hit(r) for r in self.regex) if self.regex else not all(hit(r) for r in self.exclude)
        else:
            keep = all(hit(r) for r in self.regex) and not any(hit(r) for r in self.exclude)
        return [(ts, rec)] if keep else []


class RecordModifier:
    """``Record KEY VALUE`` appends, ``Remove_key`` drops, ``Allowlist_key`` keeps only, ``UUID_key`` adds a UUID."""

    def __init__(self, s: Section) -> None:
        self.add = _pairs(s.all("record"), "record_modifier")
        self.remove = set(s.all("remove_key"))
        self.allow = set(s.all("allowlist_key") + s.all("whitelist_key"))
        self.uuid_key = s.get("uuid_key")

    def __call__(self, tag: str, ts: float, rec: Record) -> list[tuple[float, Record]]:
        if self.allow:
            rec = {k: v for k, v in rec.items() if k in self.allow}
        elif self.remove:
            rec = {k: v for k, v in rec.items() if k not in self.remove}
        else:
            rec = dict(rec)
        for k, v in self.add:
            rec[k] = v
        if self.uuid_key:
            rec[self.uuid_key] = str(uuid.uuid4())
        return [(ts, rec)]


class Modify:
    """``modify``'s rules in their order, under its ``Condition``s (all must hold)."""

    RULES = {"set": 2, "add": 2, "remove": 1, "remove_wildcard": 1, "remove_regex": 1, "rename": 2,
             "hard_rename": 2, "copy": 2, "hard_copy": 2}

    def __init__(self, s: Section) -> None:
        self.rules: list[tuple[str, list[str]]] = []
        for key, values in s.props.items():
            if key in self.RULES:
                for v in values:
                    parts = v.split(None, self.RULES[key] - 1)
                    if len(parts) != self.RULES[key]:
                        raise ConfigError(f"[filter:modify] invalid {key} rule '{v}'")
                    self.rules.append((key, parts))
        self.conditions = [self._condition(c) for c in s.all("condition")]

    @staticmethod
    def _condition(text: str) -> Callable[[Record], bool]:
        name, _, rest = text.partition(" ")
        args = rest.split(None, 1)
        name = name.lower()

        def keys(pred: Callable[[str], bool]) -> Callable[[Record], bool]:
            return lambda rec: any(pred(k) for k in rec)

        checks: dict[str, Callable[[Record], bool]] = {
            "key_exists": lambda rec: args[0] in rec,
            "key_does_not_exist": lambda rec: args[0] not in rec,
            "a_key_matches": keys(lambda k: re.search(args[0], k) is not None),
            "no_key_matches": lambda rec: not any(re.search(args[0], k) for k in rec),
            "key_value_equals": lambda rec: str(rec.get(args[0])) == args[1] if args[0] in rec else False,
            "key_value_does_not_equal": lambda rec: args[0] in rec and str(rec[args[0]]) != args[1],
            "key_value_matches": lambda rec: args[0] in rec and re.fullmatch(args[1], str(rec[args[0]])) is not None,
            "key_value_does_not_match": lambda rec: args[0] in rec and re.fullmatch(args[1], str(rec[args[0]]))
            is None,
        }
        if name not in checks:
            raise ConfigError(f"[filter:modify] condition '{name}' is not supported by the labkit simulator")
        return checks[name]

    def __call__(self, tag: str, ts: float, rec: Record) -> list[tuple[float, Record]]:
        if not all(c(rec) for c in self.conditions):
            return [(ts, rec)]
        rec = dict(rec)
        for op, args in self.rules:
            if op == "set":
                rec[args[0]] = args[1]
            elif op == "add":
                rec.setdefault(args[0], args[1])
            elif op == "remove":
                rec.pop(args[0], None)
            elif op == "remove_wildcard":
                rec = {k: v for k, v in rec.items() if not k.startswith(args[0].rstrip("*"))}
            elif op == "remove_regex":
                rec = {k: v for k, v in rec.items() if not re.search(args[0], k)}
            elif op in ("rename", "hard_rename") and args[0] in rec:
                if op == "rename" and args[1] in rec:
                    continue
                rec[args[1]] = rec.pop(args[0])
            elif op in ("copy", "hard_copy") and args[0] in rec:
                if op == "copy" and args[1] in rec:
                    continue
                rec[args[1]] = rec[args[0]]
        return [(ts, rec)]


class ParserFilter:
    """``parser``: parses ``Key_Name`` with the first of its ``Parser``s that matches; the result replaces the
    record (``Reserve_Data`` keeps the other keys, ``Preserve_Key`` the parsed one); its time, if any, the record's."""

    def __init__(self, s: Section, parsers: dict[str, Parser]) -> None:
        self.key = s.get("key_name")
        if not self.key:
            raise ConfigError("[filter:parser] Key_Name is not set")
        names = s.all("parser")
        missing = [n for n in names if n not in parsers]
        if not names or missing:
            raise ConfigError(f"[filter:parser] requested parser '{(missing or [''])[0]}' not found")
        self.parsers = [parsers[n] for n in names]
        self.reserve = s.flag("reserve_data")
        self.preserve = s.flag("preserve_key")

    def __call__(self, tag: str, ts: float, rec: Record) -> list[tuple[float, Record]]:
        value = rec.get(self.key)
        if not isinstance(value, str):
            return [(ts, rec)]
        for p in self.parsers:
            parsed = p.parse(value)
            if parsed is None:
                continue
            out, when = parsed
            if self.reserve:
                kept = {k: v for k, v in rec.items() if k != self.key or self.preserve}
                out = {**kept, **out}
            elif self.preserve:
                out = {self.key: value, **out}
            return [(when if when is not None else ts, out)]
        return [(ts, rec)]
