"""``Engine``: PromQL over a ``Storage``, on the ``promql-parser`` AST, with Prometheus 2.42's semantics.

Every node is evaluated for all the steps of the query at once (an instant query is a range query of one step):
selectors pick, per step, the newest sample within the lookback (stale markers end a series), range vectors and
subqueries give each step its window, and functions, aggregations and operators work on whole step arrays."""

from __future__ import annotations

import re
import time as _time
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from ..tsdb import Matcher, Storage
from ..tsdb.stale import STALE_NAN_BITS
from . import functions as fn
from .aggregate import aggregate
from .binary import COMPARISONS, SET_OPS, arith, set_op, vector_scalar, vector_vector
from .errors import PromQLError, bad_data, execution, unsupported
from .range_functions import RANGE_FUNCTIONS, eval_range_function
from .values import (
    NAME,
    Matrix,
    RangeSeries,
    Row,
    Scalar,
    String,
    Value,
    Vector,
    format_time,
    format_value,
    format_values,
    key,
    merge_rows,
)

# Prometheus 2.42's name for what Prometheus 3 (and promql-parser's built-ins) call double_exponential_smoothing
pp.register_extra_functions([pp.Function("holt_winters", [pp.ValueType.Matrix, pp.ValueType.Scalar,
                                                          pp.ValueType.Scalar], pp.ValueType.Vector)])
MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
MAX_POINTS = 11_000
INSTANT_ONLY = {"time", "vector", "scalar", "timestamp", "absent", "absent_over_time", "histogram_quantile",
                "label_replace", "label_join", "sort", "sort_desc", "clamp", "clamp_min", "clamp_max", "round",
                *fn.MATH, *fn.DATE_PARTS}


TYPE_WORDS = {"matrix": "range vector", "vector": "instant vector", "scalar": "scalar", "string": "string"}
REWORDED = [  # promql-parser's wording -> Prometheus' (Go) wording of the same error
    (re.compile(r"expected type (\w+) in call to function '([^']*)', got (\w+)"),
     lambda m: f'expected type {TYPE_WORDS.get(m[1], m[1])} in call to function "{m[2]}", got '
               f"{TYPE_WORDS.get(m[3], m[3])}"),
    (re.compile(r"unknown function with name '([^']*)'"), lambda m: f'unknown function with name "{m[1]}"'),
    (re.compile(r"^unexpected end of input inside brackets$"), lambda m: "unclosed left bracket"),
]


def parse(query: str) -> Any:
    """The query's AST; a syntax error raises ``PromQLError('bad_data', '[line:col: ]parse error: …')`` in
    Prometheus' words where they are known. Positions are given where the parser's message fixes them (errors at
    the end of the input); the Rust parser reports none otherwise."""
    try:
        return pp.parse(query)
    except ValueError as e:
        message = str(e)
        for pattern, words in REWORDED:
            message = pattern.sub(words, message)
        where = ""
        if message.startswith(("unexpected end of input", "unclosed left")):
            lines = query.split("\n")
            where = f"{len(lines)}:{len(lines[-1]) + 1}: "
        raise bad_data(f"{where}parse error: {message}") from None


def selector_matchers(selector: str) -> list[Matcher]:
    """The matchers of a series selector such as ``match[]``'s ``up{job="api"}``."""
    node = parse(selector)
    if not isinstance(node, pp.VectorSelector):
        raise bad_data(f"parse error: expected a series selector, got {selector!r}")
    return _matchers(node)


def _matchers(node: Any) -> list[Matcher]:
    if node.matchers.or_matchers:
        raise unsupported("the 'or' of label matchers (a Prometheus 3 selector)")
    ms = [Matcher(m.name, MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers]
    if node.name:
        ms.append(Matcher(NAME, "=", node.name))
    return ms


def _ms(d: timedelta | None) -> int:
    return 0 if d is None else round(d / timedelta(milliseconds=1))


def _unwrap(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


class _Evaluator:
    def __init__(self, engine: Engine, steps: np.ndarray, start_ms: int, end_ms: int, deadline: float) -> None:
        self.engine, self.steps, self.n = engine, steps, len(steps)
        self.start_ms, self.end_ms, self.deadline = start_ms, end_ms, deadline
        self.lookback_ms = int(engine.lookback * 1000)

    def child(self, steps: np.ndarray) -> _Evaluator:
        return _Evaluator(self.engine, steps, self.start_ms, self.end_ms, self.deadline)

    # -- time of each step's data --------------------------------------------------------------------------------
    def refs(self, node: Any) -> np.ndarray:
        at, offset = node.at, _ms(node.offset)
        if at is None:
            return self.steps - offset
        kind = str(at.type)
        if kind.endswith("Start"):
            t = self.start_ms
        elif kind.endswith("End"):
            t = self.end_ms
        else:
            t = round(at.at.timestamp() * 1000)
        return np.full(self.n, t - offset, dtype=np.int64)

    # -- dispatch ------------------------------------------------------------------------------------------------
    def eval(self, node: Any) -> Value:
        if _time.monotonic() > self.deadline:
            raise PromQLError("timeout", "query timed out in expression evaluation")
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self.n, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.UnaryExpr):
            return self.negate(self.eval(node.expr))
        if isinstance(node, pp.VectorSelector):
            return Vector(self.select(node)[0])
        if isinstance(node, pp.MatrixSelector):
            return self.matrix(node)
        if isinstance(node, pp.SubqueryExpr):
            return self.subquery(node)
        if isinstance(node, pp.Call):
            value = self.call(node)
            return Vector(merge_rows(value.rows, self.n)) if isinstance(value, Vector) else value
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        raise unsupported(f"the expression {type(node).__name__}")

    def negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.v)
        assert isinstance(value, Vector)
        return Vector([Row({k: v for k, v in r.labels.items() if k != NAME}, -r.v, r.ok) for r in value.rows])

    # -- selectors -------------------------------------------------------------------------------------------
    def select(self, node: Any) -> tuple[list[Row], list[np.ndarray]]:
        """Rows of an instant selector, and each row's sample timestamps per step (for ``timestamp()``)."""
        refs = self.refs(node)
        data = self.engine.storage.select(_matchers(node), int(refs.min()) - self.lookback_ms, int(refs.max()))
        rows, times = [], []
        for s in data:
            t = np.frombuffer(s.timestamps, dtype=np.int64)
            v = np.frombuffer(s.values, dtype=np.float64)
            idx = np.searchsorted(t, refs, "right") - 1
            ok = idx >= 0
            idx = np.where(ok, idx, 0)
            tt, vv = t[idx], v[idx]
            ok &= tt >= refs - self.lookback_ms
            ok &= vv.view(np.uint64) != STALE_NAN_BITS
            if ok.any():
                rows.append(Row(s.labels, vv, ok))
                times.append(tt)
        return rows, times

    def matrix(self, node: Any) -> Matrix:
        vs, range_ms = node.vector_selector, _ms(node.range)
        refs = self.refs(vs)
        data = self.engine.storage.select(_matchers(vs), int(refs.min()) - range_ms, int(refs.max()))
        series = []
        for s in data:
            t = np.frombuffer(s.timestamps, dtype=np.int64)
            v = np.frombuffer(s.values, dtype=np.float64)
            fresh = v.view(np.uint64) != STALE_NAN_BITS
            series.append(RangeSeries(s.labels, t[fresh], v[fresh]))
        return Matrix(series, refs, range_ms)

    def subquery(self, node: Any) -> Matrix:
        refs = self.refs(node)
        range_ms = _ms(node.range)
        interval = _ms(node.step) or int(self.engine.default_eval_interval * 1000)
        lo = int(refs.min()) - range_ms
        first = interval * (lo // interval)
        if first < lo:
            first += interval
        steps = np.arange(first, int(refs.max()) + 1, interval, dtype=np.int64)
        inner = self.child(steps).eval(node.expr) if len(steps) else Vector()
        if isinstance(inner, Scalar):
            inner = Vector([Row({}, inner.v, np.ones(len(steps), bool))])
        if not isinstance(inner, Vector):
            raise bad_data("subquery is only allowed on instant vector")
        series = [RangeSeries(r.labels, steps[r.ok], r.v[r.ok]) for r in inner.rows]
        return Matrix(series, refs, range_ms)

    # -- helpers -------------------------------------------------------------------------------------------------
    def scalar(self, node: Any) -> np.ndarray:
        value = self.eval(node)
        if not isinstance(value, Scalar):
            raise bad_data("expected a scalar argument")
        return value.v

    def vector(self, node: Any) -> list[Row]:
        value = self.eval(node)
        if not isinstance(value, Vector):
            raise bad_data("expected an instant vector argument")
        return value.rows

    def string(self, node: Any) -> str:
        value = self.eval(node)
        if not isinstance(value, String):
            raise bad_data("expected a string argument")
        return value.s

    # -- functions -----------------------------------------------------------------------------------------------
    def call(self, node: Any) -> Value:
        name, args, n = node.func.name, list(node.args), self.n
        if name in RANGE_FUNCTIONS and name != "absent_over_time":
            at = 1 if name == "quantile_over_time" else 0
            m = self.eval(args[at])
            if not isinstance(m, Matrix):
                raise bad_data(f"expected type range vector in call to function \"{name}\"")
            params = [self.scalar(a) for i, a in enumerate(args) if i != at]
            return Vector(eval_range_function(name, m, params))
        if name not in INSTANT_ONLY:
            raise unsupported(f'the function "{name}" (not in Prometheus 2.42)')
        if name == "time":
            return Scalar(self.steps / 1000)
        if name == "vector":
            return Vector([Row({}, self.scalar(args[0]), np.ones(n, bool))])
        if name == "scalar":
            rows = self.vector(args[0])
            count = np.sum([r.ok for r in rows], axis=0) if rows else np.zeros(n)
            total = np.sum([np.where(r.ok, r.v, 0) for r in rows], axis=0) if rows else np.zeros(n)
            return Scalar(np.where(count == 1, total, np.nan))
        if name == "timestamp":
            arg = _unwrap(args[0])
            if isinstance(arg, pp.VectorSelector):
                rows, times = self.select(arg)
                return Vector([Row({k: v for k, v in r.labels.items() if k != NAME}, t / 1000, r.ok)
                               for r, t in zip(rows, times, strict=True)])
            return Vector([Row({k: v for k, v in r.labels.items() if k != NAME}, self.steps / 1000, r.ok)
                           for r in self.vector(arg)])
        if name in ("absent", "absent_over_time"):
            return self.absent(name, args[0])
        if name in fn.MATH:
            return Vector(fn.apply_math(name, self.vector(args[0])))
        if name in fn.DATE_PARTS:
            if not args:
                return Vector([Row({}, fn.date_part(name, self.steps / 1000), np.ones(n, bool))])
            return Vector([Row({k: v for k, v in r.labels.items() if k != NAME}, fn.date_part(name, r.v), r.ok)
                           for r in self.vector(args[0])])
        if name in ("clamp", "clamp_min", "clamp_max"):
            rows = self.vector(args[0])
            if name == "clamp":
                return Vector(fn.clamp(rows, self.scalar(args[1]), self.scalar(args[2])))
            bound = self.scalar(args[1])
            return Vector(fn.clamp(rows, bound if name == "clamp_min" else None,
                                   bound if name == "clamp_max" else None))
        if name == "round":
            rows = self.vector(args[0])
            to = self.scalar(args[1]) if len(args) > 1 else np.ones(n)
            return Vector([Row({k: v for k, v in r.labels.items() if k != NAME}, fn.go_round(r.v, to), r.ok)
                           for r in rows])
        if name in ("sort", "sort_desc"):
            return Vector(self.vector(args[0]))
        if name == "histogram_quantile":
            return Vector(fn.histogram_quantile(self.scalar(args[0]), self.vector(args[1]), n))
        if name == "label_replace":
            return Vector(fn.label_replace(self.vector(args[0]), *(self.string(a) for a in args[1:5])))
        if name == "label_join":
            return Vector(fn.label_join(self.vector(args[0]), self.string(args[1]), self.string(args[2]),
                                        [self.string(a) for a in args[3:]]))
        raise unsupported(f'the function "{name}"')

    def absent(self, name: str, arg: Any) -> Vector:
        value = self.eval(arg)
        present = np.zeros(self.n, bool)
        if isinstance(value, Vector):
            for r in value.rows:
                present |= r.ok
        elif isinstance(value, Matrix):
            for s in value.series:
                lo, hi = value.bounds(s)
                present |= hi > lo
        labels: dict[str, str] = {}
        sel = _unwrap(arg)
        if isinstance(sel, pp.MatrixSelector):
            sel = sel.vector_selector
        if isinstance(sel, pp.VectorSelector):
            seen: set[str] = set()
            for m in _matchers(sel):
                if m.name == NAME:
                    continue
                if m.op == "=" and m.name not in seen:
                    labels[m.name] = m.value
                elif m.name in labels:
                    del labels[m.name]
                seen.add(m.name)
        if present.all():
            return Vector()
        return Vector([Row(labels, np.ones(self.n), ~present)])

    # -- aggregation and operators -------------------------------------------------------------------------------
    def aggregate(self, node: Any) -> Vector:
        op = str(node.op)
        param: np.ndarray | str | None = None
        if node.param is not None:
            param = self.string(node.param) if op == "count_values" else self.scalar(node.param)
        names, without = [], False
        if node.modifier is not None:
            names, without = list(node.modifier.labels), str(node.modifier.type).endswith("Without")
        if op in ("limitk", "limit_ratio"):
            raise unsupported(f"the aggregation {op} (not in Prometheus 2.42)")
        return Vector(aggregate(op, self.vector(node.expr), names, without, param, self.n))

    def binary(self, node: Any) -> Value:
        op, mod = str(node.op), node.modifier
        return_bool = bool(mod and mod.return_bool)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            res = arith(op, lhs.v, rhs.v)
            return Scalar(res.astype(np.float64))
        if isinstance(lhs, Scalar) or isinstance(rhs, Scalar):
            if op in SET_OPS:
                raise bad_data(f"set operator {op} not allowed in binary scalar expression")
            if isinstance(lhs, Scalar):
                assert isinstance(rhs, Vector)
                return Vector(vector_scalar(op, rhs.rows, lhs.v, True, return_bool, self.n))
            assert isinstance(lhs, Vector)
            return Vector(vector_scalar(op, lhs.rows, rhs.v, False, return_bool, self.n))
        assert isinstance(lhs, Vector) and isinstance(rhs, Vector)
        on, names, include, card = False, [], [], "one-to-one"
        if mod is not None:
            if mod.matching is not None:
                on = str(mod.matching.type).endswith("Include")
                names = list(mod.matching.labels)
            include = list(mod.group_labels or [])
            c = str(mod.card)
            card = "many-to-one" if c.endswith("ManyToOne") else "one-to-many" if c.endswith("OneToMany") \
                else "one-to-one"
        if op in SET_OPS:
            return Vector(set_op(op, lhs.rows, rhs.rows, on, names, self.n))
        if op in COMPARISONS or op in ("+", "-", "*", "/", "%", "^", "atan2"):
            return Vector(vector_vector(op, lhs.rows, rhs.rows, card, on, names, include, return_bool, self.n))
        raise unsupported(f"the operator {op}")


class Engine:
    """PromQL evaluation over ``storage``: ``instant`` and ``range`` return the HTTP API's ``data`` object."""

    def __init__(self, storage: Storage, lookback: float = 300, timeout: float = 120,
                 default_eval_interval: float = 60) -> None:
        self.storage, self.lookback, self.timeout = storage, lookback, timeout
        self.default_eval_interval = default_eval_interval

    def _run(self, query: str, steps: np.ndarray, start_ms: int, end_ms: int) -> tuple[Any, Value]:
        node = parse(query)
        ev = _Evaluator(self, steps, start_ms, end_ms, _time.monotonic() + self.timeout)
        try:
            return node, ev.eval(node)
        except PromQLError:
            raise
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            raise execution(str(e)) from None

    def instant(self, query: str, time: float) -> dict[str, Any]:
        """The value of ``query`` at ``time`` (Unix seconds)."""
        t_ms = round(time * 1000)
        node, value = self._run(query, np.array([t_ms], dtype=np.int64), t_ms, t_ms)
        ts = format_time(t_ms)
        if isinstance(value, Scalar):
            return {"resultType": "scalar", "result": [ts, format_value(float(value.v[0]))]}
        if isinstance(value, String):
            return {"resultType": "string", "result": [ts, value.s]}
        if isinstance(value, Matrix):
            result = []
            for s in sorted(value.series, key=lambda s: key(s.labels)):
                lo, hi = value.bounds(s)
                if hi[0] > lo[0]:
                    result.append({"metric": dict(s.labels), "values": [
                        [format_time(t), format_value(v)]
                        for t, v in zip(s.t[lo[0]:hi[0]].tolist(), s.v[lo[0]:hi[0]].tolist(), strict=True)]})
            return {"resultType": "matrix", "result": result}
        rows = [r for r in value.rows if r.ok[0]]
        top = _unwrap(node)
        if isinstance(top, pp.Call) and top.func.name in ("sort", "sort_desc"):
            rows.sort(key=lambda r: float(r.v[0]), reverse=top.func.name == "sort_desc")
        return {"resultType": "vector", "result": [
            {"metric": dict(r.labels), "value": [ts, format_value(float(r.v[0]))]} for r in rows]}

    def range(self, query: str, start: float, end: float, step: float) -> dict[str, Any]:
        """The values of ``query`` at ``start``, ``start + step``, … up to ``end`` (a matrix)."""
        start_ms, end_ms, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        if end_ms < start_ms:
            raise bad_data("end timestamp must not be before start time")
        if step_ms <= 0:
            raise bad_data("zero or negative query resolution step widths are not accepted. "
                           "Try a positive integer")
        if (end_ms - start_ms) / step_ms > MAX_POINTS:
            raise bad_data("exceeded maximum resolution of 11,000 points per timeseries. "
                           "Try decreasing the query resolution (?step=XX)")
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        _, value = self._run(query, steps, start_ms, end_ms)
        if isinstance(value, Matrix | String):
            kind = "range vector" if isinstance(value, Matrix) else "string"
            raise bad_data(f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector')
        rows = [Row({}, value.v, np.ones(len(steps), bool))] if isinstance(value, Scalar) else value.rows
        times = [format_time(t) for t in steps.tolist()]
        result = []
        for r in sorted(rows, key=lambda r: key(r.labels)):
            idx = np.nonzero(r.ok)[0]
            if len(idx):
                texts = format_values(r.v[idx].tolist())
                result.append({"metric": dict(r.labels),
                               "values": [[times[i], v] for i, v in zip(idx.tolist(), texts, strict=True)]})
        return {"resultType": "matrix", "result": result}
