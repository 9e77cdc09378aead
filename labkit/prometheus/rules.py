"""Prometheus rule files (``groups`` of recording and alerting rules) evaluated every group interval: recording
rules write their series, alerting rules go inactive → pending → firing after ``for`` (and are resolved when their
expression stops answering), with ``ALERTS``/``ALERTS_FOR_STATE`` series and ``/api/v1/rules``/``alerts`` views."""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, duration
from .promql import Engine, PromQLError, parse

log = logging.getLogger("labkit.prometheus.rules")
Labels = dict[str, str]
RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{round(t % 1 * 1e9) % 10**9:09d}Z"


def format_value(v: float) -> str:
    """A value as Go's ``strconv.FormatFloat(v, 'e', -1, 64)`` writes it (an alert's ``value``): ``1e+00``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exponent = decimal.Decimal(repr(float(v))).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp = int(exponent) + len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def humanize(v: float) -> str:
    """Prometheus' ``humanize``: SI prefixes, 4 significant digits."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    prefixes = ["y", "z", "a", "f", "p", "n", "µ", "m", "", "k", "M", "G", "T", "P", "E", "Z", "Y"]
    i = 8
    while abs(v) >= 1000 and i < len(prefixes) - 1:
        v, i = v / 1000, i + 1
    while abs(v) < 1 and i > 0:
        v, i = v * 1000, i - 1
    return f"{v:.4g}{prefixes[i]}"


def expand_template(text: str, labels: Labels, value: float, external: Labels) -> str:
    """The subset of Prometheus' Go templates alert annotations use: ``{{ $labels.x }}``, ``{{ $value }}``,
    ``{{ $externalLabels.x }}``, piped to ``humanize``/``humanizePercentage``/``printf "%.2f"``; anything else
    is left as written, with a note that the simulator does not support it."""
    def one(m: re.Match[str]) -> str:
        expr, *pipes = [p.strip() for p in m.group(1).split("|")]
        if expr.startswith("$labels."):
            out: Any = labels.get(expr[len("$labels."):], "")
        elif expr.startswith("$externalLabels."):
            out = external.get(expr[len("$externalLabels."):], "")
        elif expr in ("$value", "$value "):
            out = value
        else:
            return f"<{m.group(0)}: not supported by the labkit simulator>"
        for pipe in pipes:
            if pipe == "humanize":
                out = humanize(float(out))
            elif pipe == "humanizePercentage":
                out = f"{float(out) * 100:.4g}%"
            elif pipe.startswith("printf "):
                out = pipe[len("printf "):].strip().strip('"') % float(out)
            else:
                return f"<{m.group(0)}: not supported by the labkit simulator>"
        return f"{out:g}" if isinstance(out, float) else str(out)
    return TEMPLATE.sub(one, text)


@dataclass
class Alert:
    labels: Labels
    annotations: Labels
    active_at: float
    value: float
    state: str = "pending"
    fired_at: float = 0.0

    def api(self) -> dict[str, Any]:
        return {"labels": self.labels, "annotations": self.annotations, "state": self.state,
                "activeAt": rfc3339(self.active_at), "value": format_value(self.value)}


@dataclass
class Rule:
    name: str
    expr: str
    kind: str  # "recording" | "alerting"
    labels: Labels = field(default_factory=dict)
    annotations: Labels = field(default_factory=dict)
    hold: float = 0.0  # ``for``
    keep_firing_for: float = 0.0
    health: str = "unknown"
    last_error: str = ""
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0
    alerts: dict[tuple[tuple[str, str], ...], Alert] = field(default_factory=dict)
    recorded: dict[tuple[tuple[str, str], ...], Labels] = field(default_factory=dict)  # last evaluation's series

    @property
    def state(self) -> str:
        states = {a.state for a in self.alerts.values()}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "query": self.expr, "labels": self.labels, "health": self.health,
                               "evaluationTime": self.evaluation_time,
                               "lastEvaluation": rfc3339(self.last_evaluation) if self.last_evaluation
                               else "0001-01-01T00:00:00Z", "type": self.kind}
        if self.last_error:
            out["lastError"] = self.last_error
        if self.kind == "recording" and not self.labels:
            del out["labels"]  # omitted when empty, as Prometheus' JSON does
        if self.kind == "alerting":
            out = {"state": self.state, **out, "duration": self.hold, "keepFiringFor": self.keep_firing_for,
                   "annotations": self.annotations,
                   "alerts": [a.api() for a in self.alerts.values()]}
        return out


@dataclass
class Group:
    name: str
    file: str
    interval: float
    rules: list[Rule]
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0

    def api(self, kind: str | None = None) -> dict[str, Any]:
        return {"name": self.name, "file": self.file,
                "rules": [r.api() for r in self.rules if kind is None or r.kind.startswith(kind)],
                "interval": self.interval, "limit": 0, "evaluationTime": self.evaluation_time,
                "lastEvaluation": rfc3339(self.last_evaluation) if self.last_evaluation else "0001-01-01T00:00:00Z"}


def load_rules(path: Path, default_interval: float) -> list[Group]:
    """A rule file's groups, checked as ``promtool check rules`` does (names, durations, expressions)."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: {err}") from None
    groups: list[Group] = []
    for g in doc.get("groups") or []:
        if not g.get("name"):
            raise ConfigError(f"{path}: Groupname must not be empty")
        if any(x.name == g["name"] for x in groups):
            raise ConfigError(f"{path}: {g['name']!r}: repeated in the same file")
        rules = []
        for i, raw in enumerate(g.get("rules") or []):
            unknown = set(raw) - RULE_KEYS
            if unknown:
                raise ConfigError(f"{path}: group {g['name']!r}, rule {i + 1}: field {', '.join(sorted(unknown))} "
                                  "not found")
            if bool(raw.get("record")) == bool(raw.get("alert")):
                raise ConfigError(f"{path}: group {g['name']!r}, rule {i + 1}: one of 'record' or 'alert' "
                                  "must be set")
            try:
                parse(str(raw.get("expr", "")))
            except PromQLError as err:
                raise ConfigError(f"{path}: group {g['name']!r}, rule {i + 1}: could not parse expression: "
                                  f"{err.message}") from None
            alerting = bool(raw.get("alert"))
            if not alerting and (raw.get("for") or raw.get("annotations")):
                raise ConfigError(f"{path}: group {g['name']!r}, rule {i + 1}: invalid field 'for' or "
                                  "'annotations' in recording rule")
            rules.append(Rule(str(raw.get("alert") or raw.get("record")), str(raw["expr"]).strip(),
                              "alerting" if alerting else "recording",
                              {str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
                              {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
                              duration(raw["for"], "for") if raw.get("for") else 0.0,
                              duration(raw["keep_firing_for"], "keep_firing_for")
                              if raw.get("keep_firing_for") else 0.0))
        groups.append(Group(str(g["name"]), str(path),
                            duration(g["interval"], "interval") if g.get("interval") else default_interval, rules))
    return groups


class RuleManager:
    """Evaluates every group on its interval against the engine and writes results to the storage."""

    def __init__(self, groups: list[Group], engine: Engine, storage: Any, external: Labels | None = None) -> None:
        self.groups, self.engine, self.storage = groups, engine, storage
        self.external = external or {}
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.run(g), name=f"rules {g.name}") for g in self.groups]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self, group: Group) -> None:
        next_at = time.time()
        while True:
            await asyncio.sleep(max(0.0, next_at - time.time()))
            try:
                self.evaluate(group, time.time())
            except Exception:
                log.exception("rule group %s failed", group.name)
            next_at += group.interval
            while next_at <= time.time():
                next_at += group.interval

    def evaluate(self, group: Group, now: float) -> None:
        """One evaluation of every rule of ``group`` at ``now``, in order (a rule sees its predecessors' series)."""
        start = time.perf_counter()
        t_ms = int(now * 1000)
        for rule in group.rules:
            began = time.perf_counter()
            try:
                result = self.engine.instant(rule.expr, now)
                vector = self._vector(result)
                if rule.kind == "recording":
                    self._record(rule, vector, t_ms)
                else:
                    self._alert(rule, vector, now, t_ms)
                rule.health, rule.last_error = "ok", ""
            except PromQLError as err:
                rule.health, rule.last_error = "err", err.message
            rule.last_evaluation, rule.evaluation_time = now, time.perf_counter() - began
        group.last_evaluation, group.evaluation_time = now, time.perf_counter() - start

    def _record(self, rule: Rule, vector: list[tuple[Labels, float]], t_ms: int) -> None:
        """Write a recording rule's series; one its last evaluation wrote and this one did not ends with a
        staleness marker, as Prometheus' rule groups do (it drops out of instant queries at once)."""
        samples = [({**labels, **rule.labels, "__name__": rule.name}, t_ms, v) for labels, v in vector]
        series = {tuple(sorted(full.items())): full for full, _, _ in samples}
        for key in rule.recorded.keys() - series.keys():
            self.storage.mark_stale(rule.recorded[key], t_ms)
        rule.recorded = series
        self.storage.append(samples)

    @staticmethod
    def _vector(result: dict[str, Any]) -> list[tuple[Labels, float]]:
        if result["resultType"] == "scalar":
            return [({}, float(result["result"][1]))]
        if result["resultType"] != "vector":
            raise PromQLError("execution", "rule result is not a vector or scalar")
        return [({k: v for k, v in s["metric"].items() if k != "__name__"}, float(s["value"][1]))
                for s in result["result"]]

    def _alert(self, rule: Rule, vector: list[tuple[Labels, float]], now: float, t_ms: int) -> None:
        seen = set()
        for labels, value in vector:
            full = {**labels, **rule.labels, "alertname": rule.name}
            key = tuple(sorted(full.items()))
            seen.add(key)
            alert = rule.alerts.get(key)
            annotations = {k: expand_template(v, labels, value, self.external) for k, v in rule.annotations.items()}
            if alert is None:
                alert = rule.alerts[key] = Alert(full, annotations, now, value)
            alert.value, alert.annotations = value, annotations
            if alert.state == "pending" and now - alert.active_at >= rule.hold:
                alert.state, alert.fired_at = "firing", now
                if now > alert.active_at:  # its pending series ends
                    self.storage.mark_stale({**full, "__name__": "ALERTS", "alertstate": "pending"}, t_ms)
        for key in [k for k in rule.alerts if k not in seen]:
            alert = rule.alerts[key]
            if alert.state == "firing" and rule.keep_firing_for and now - alert.fired_at < rule.keep_firing_for:
                continue
            del rule.alerts[key]  # resolved
            self.storage.mark_stale({**alert.labels, "__name__": "ALERTS", "alertstate": alert.state}, t_ms)
            self.storage.mark_stale({**alert.labels, "__name__": "ALERTS_FOR_STATE"}, t_ms)
        samples = []
        for alert in rule.alerts.values():
            samples.append(({**alert.labels, "__name__": "ALERTS", "alertstate": alert.state}, t_ms, 1.0))
            samples.append(({**alert.labels, "__name__": "ALERTS_FOR_STATE"}, t_ms, float(int(alert.active_at))))
        self.storage.append(samples)

    def alerts(self) -> list[Alert]:
        return [a for g in self.groups for r in g.rules for a in r.alerts.values()]
