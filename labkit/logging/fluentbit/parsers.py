"""Fluent Bit's parsers: ``regex`` (Ruby-style named groups) and ``json`` with ``time_key``/``time_format``/
``time_keep``, and the multiline parsers: the built-in ``docker`` and ``cri`` and ``type regex`` ones with rules."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, Section, to_bool

Record = dict[str, Any]
CRI = re.compile(r"^(?P<time>.+?) (?P<stream>stdout|stderr) (?P<_p>F|P) (?P<log>.*)$")


def ruby_regex(pattern: str) -> re.Pattern[str]:
    """A regex as Fluent Bit (Onigmo) writes it: ``(?<name>…)`` groups; the ``/…/`` of multiline rules dropped."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        pattern = pattern[1:-1]
    try:
        return re.compile(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern))
    except re.error as err:
        raise ConfigError(f"[parser] invalid regex {pattern!r}: {err}") from err


def parse_time(value: str, fmt: str, offset: str = "") -> float:
    """A time by a Fluent Bit ``time_format`` (strptime, plus ``%L`` for the fraction of a second)."""
    fraction = 0.0
    if "%L" in fmt:
        head, _, tail = fmt.partition("%L")
        left, sep, right = value.partition(".")
        digits = re.match(r"\d+", right) if sep else None
        if digits is None:
            raise ValueError(f"no fraction in {value!r}")
        fraction = float("0." + digits.group())
        value = left + right[digits.end():]
        fmt = head.rstrip(".") + tail
    if fmt.endswith("%z") and value.endswith("Z"):
        value = value[:-1] + "+0000"
    parsed = dt.datetime.strptime(value, fmt)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_offset(offset))
    return parsed.timestamp() + fraction


def _offset(text: str) -> dt.timezone:
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text.strip()) if text else None
    if not m:
        return dt.UTC
    sign = 1 if m.group(1) == "+" else -1
    return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


_SECONDS: dict[str, float] = {}


def parse_rfc3339(value: str) -> float:
    """``2026-11-26T20:00:00.123456789Z`` (or with an offset) as seconds since the epoch."""
    if len(value) > 20 and value[19] == "." and value[-1] == "Z" and value[20:-1].isdigit():  # the usual form
        base = _SECONDS.get(value[:19])
        if base is None:
            if len(_SECONDS) > 256:
                _SECONDS.clear()
            base = _SECONDS[value[:19]] = dt.datetime.fromisoformat(value[:19] + "+00:00").timestamp()
        return base + float("0." + value[20:-1])
    left, sep, right = value.partition(".")
    frac, zone = "0", right
    if sep:
        m = re.match(r"(\d*)(.*)", right)
        assert m is not None
        frac, zone = m.group(1) or "0", m.group(2)
    else:
        m = re.match(r"(.{19})(.*)", left)
        if m:
            left, zone = m.group(1), m.group(2)
    zone = "+00:00" if zone in ("Z", "z", "") else zone
    base = dt.datetime.fromisoformat(left + zone)
    return base.timestamp() + float("0." + frac)


@dataclass
class Parser:
    """A ``[PARSER]``: turns one string into a record and its time."""

    name: str
    format: str
    regex: re.Pattern[str] | None = None
    time_key: str = ""
    time_format: str = ""
    time_keep: bool = False
    time_offset: str = ""
    types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, s: Section) -> Parser:
        fmt = s.get("format").lower()
        if fmt not in ("regex", "json"):
            raise ConfigError(f"[parser] '{s.name}': format '{fmt}' is not supported by the labkit simulator "
                              "(regex, json)")
        types = dict(t.split(":", 1) for t in s.get("types").split() if ":" in t)
        return cls(s.name, fmt, ruby_regex(s.get("regex")) if fmt == "regex" else None, s.get("time_key"),
                   s.get("time_format"), s.flag("time_keep"), s.get("time_offset"), types)

    def parse(self, text: str) -> tuple[Record, float | None] | None:
        if self.format == "json":
            try:
                rec = json.loads(text)
            except ValueError:
                return None
            if not isinstance(rec, dict):
                return None
        else:
            assert self.regex is not None
            m = self.regex.search(text)
            if m is None:
                return None
            rec = {k: v for k, v in m.groupdict().items() if v is not None}
        for k, t in self.types.items():
            if k in rec:
                rec[k] = _typed(rec[k], t)
        when = None
        if self.time_key and self.time_key in rec:
            raw = str(rec[self.time_key])
            try:
                when = parse_time(raw, self.time_format, self.time_offset) if self.time_format else float(raw)
            except ValueError:
                when = None
            if not self.time_keep:
                rec.pop(self.time_key)
        return rec, when


def _typed(value: Any, t: str) -> Any:
    try:
        return {"integer": int, "float": float, "bool": to_bool, "string": str}.get(t, str)(value)
    except (ValueError, ConfigError):
        return value


# -- multiline ----------------------------------------------------------------------------------------------------
class Multiline:
    """One multiline parser's state for one file (or stream): ``feed`` a line, get finished records back."""

    def feed(self, line: str) -> list[tuple[Record, float]] | None:
        """The records this line completes; None when the line is not this parser's format."""
        raise NotImplementedError

    def flush(self) -> list[tuple[Record, float]]:
        return []


class CriParser(Multiline):
    """The built-in ``cri``: ``<time> <stream> <P|F> <log>``; P parts are joined until the F."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[Record, float, list[str]]] = {}

    def feed(self, line: str) -> list[tuple[Record, float]] | None:
        m = CRI.match(line)
        if m is None:
            return None
        try:
            when = parse_rfc3339(m.group("time"))
        except ValueError:
            return None
        stream, tag, text = m.group("stream"), m.group("_p"), m.group("log")
        if stream in self.pending:
            rec, first, parts = self.pending[stream]
        else:
            rec, first, parts = {"time": m.group("time"), "stream": stream}, when, []
        parts.append(text)
        if tag == "P":
            self.pending[stream] = (rec, first, parts)
            return []
        self.pending.pop(stream, None)
        return [({**rec, "_p": "F", "log": "".join(parts)}, first)]

    def flush(self) -> list[tuple[Record, float]]:
        out = [({**rec, "_p": "P", "log": "".join(parts)}, when) for rec, when, parts in self.pending.values()]
        self.pending.clear()
        return out


class DockerParser(Multiline):
    """The built-in ``docker``: JSON lines ``{"log", "stream", "time"}``; a log not ending in a newline continues."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[Record, float, list[str]]] = {}

    def feed(self, line: str) -> list[tuple[Record, float]] | None:
        if not line.startswith("{"):
            return None
        try:
            rec = json.loads(line)
            when = parse_rfc3339(rec["time"])
            text, stream = rec["log"], rec.get("stream", "stdout")
        except (ValueError, KeyError, TypeError):
            return None
        if stream in self.pending:
            first, start, parts = self.pending[stream]
        else:
            first, start, parts = rec, when, []
        parts.append(text)
        if not text.endswith("\n"):
            self.pending[stream] = (first, start, parts)
            return []
        self.pending.pop(stream, None)
        return [({**first, "log": "".join(parts)}, start)]

    def flush(self) -> list[tuple[Record, float]]:
        out = [({**rec, "log": "".join(parts)}, when) for rec, when, parts in self.pending.values()]
        self.pending.clear()
        return out


@dataclass
class RegexRules:
    """A ``type regex`` multiline parser's definition: rules ``state regex next_state`` from ``start_state``."""

    name: str
    rules: list[tuple[str, re.Pattern[str], str]]
    key_content: str
    flush_timeout: float

    @classmethod
    def of(cls, s: Section) -> RegexRules:
        if s.get("type", "regex").lower() != "regex":
            raise ConfigError(f"[multiline_parser] '{s.name}': type '{s.get('type')}' is not supported by the "
                              "labkit simulator (regex)")
        rules = []
        for text in s.all("rule"):
            parts = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
            if len(parts) != 3:
                raise ConfigError(f"[multiline_parser] '{s.name}': invalid rule {text!r}")
            rules.append((parts[0], ruby_regex(parts[1]), parts[2]))
        if not any(r[0] == "start_state" for r in rules):
            raise ConfigError(f"[multiline_parser] '{s.name}': no rule for start_state")
        return cls(s.name, rules, s.get("key_content", "log"), float(s.get("flush_timeout", "4000")) / 1000)


class RegexParser(Multiline):
    """A running ``type regex`` parser: lines are plain text (the ``key_content``)."""

    def __init__(self, rules: RegexRules) -> None:
        self.rules = rules
        self.state = ""
        self.buffer: list[str] = []
        self.started = 0.0

    def feed(self, line: str) -> list[tuple[Record, float]] | None:
        out: list[tuple[Record, float]] = []
        if self.state:
            nxt = next((n for s, r, n in self.rules.rules if s == self.state and r.search(line)), None)
            if nxt is not None:
                self.buffer.append(line)
                self.state = nxt
                return out
            out = self.flush()
        if any(s == "start_state" and r.search(line) for s, r, _ in self.rules.rules):
            self.buffer, self.started = [line], time.time()
            self.state = next(n for s, r, n in self.rules.rules if s == "start_state" and r.search(line))
            return out
        out.append(({self.rules.key_content: line}, time.time()))
        return out

    def flush(self) -> list[tuple[Record, float]]:
        if not self.buffer:
            return []
        rec = {self.rules.key_content: "\n".join(self.buffer)}
        self.buffer, self.state = [], ""
        return [(rec, self.started)]

    def expired(self) -> bool:
        return bool(self.buffer) and time.time() - self.started >= self.rules.flush_timeout


def multiline_factory(names: list[str], custom: dict[str, RegexRules]) -> list[type[Multiline] | RegexRules]:
    """The multiline parsers a ``multiline.parser`` list names, in order (an unknown one is an error)."""
    out: list[type[Multiline] | RegexRules] = []
    for name in names:
        if name == "cri":
            out.append(CriParser)
        elif name == "docker":
            out.append(DockerParser)
        elif name in custom:
            out.append(custom[name])
        else:
            raise ConfigError(f"[multiline] parser '{name}' not registered (the labkit simulator has docker, cri "
                              "and the configuration's multiline_parsers)")
    return out


def instantiate(kind: type[Multiline] | RegexRules) -> Multiline:
    return RegexParser(kind) if isinstance(kind, RegexRules) else kind()
