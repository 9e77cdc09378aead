"""The evaluator's values over all the steps of a query at once: an instant vector is rows of (labels, values
per step, presence per step); a scalar is values per step; a range vector is raw samples plus each step's window.
Also the API's number and time formatting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import execution

Labels = dict[str, str]
NAME = "__name__"


@dataclass
class Row:
    """One series of an instant vector: a value at each step where ``ok``."""

    labels: Labels
    v: np.ndarray
    ok: np.ndarray


@dataclass
class Vector:
    rows: list[Row] = field(default_factory=list)


@dataclass
class Scalar:
    v: np.ndarray


@dataclass
class String:
    s: str


@dataclass
class RangeSeries:
    labels: Labels
    t: np.ndarray  # int64 ms, no stale markers
    v: np.ndarray


@dataclass
class Matrix:
    """A range vector: each step's window is ``[end - range_ms, end]`` (both ends inclusive, as in 2.42)."""

    series: list[RangeSeries]
    ends: np.ndarray  # int64 ms per step
    range_ms: int

    def bounds(self, s: RangeSeries) -> tuple[np.ndarray, np.ndarray]:
        """Index ranges ``[lo, hi)`` of each step's window in ``s``."""
        lo = np.searchsorted(s.t, self.ends - self.range_ms, "left")
        hi = np.searchsorted(s.t, self.ends, "right")
        return lo, hi


Value = Vector | Scalar | String | Matrix


def key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def without_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != NAME}


def merge_rows(rows: list[Row], n: int) -> list[Row]:
    """Rows with equal labels joined into one; overlapping steps are Prometheus' duplicate-labelset error."""
    out: dict[tuple, Row] = {}
    for r in rows:
        k = key(r.labels)
        have = out.get(k)
        if have is None:
            out[k] = Row(r.labels, r.v.copy(), r.ok.copy())
            continue
        if (have.ok & r.ok).any():
            raise execution("vector cannot contain metrics with the same labelset")
        have.v = np.where(r.ok, r.v, have.v)
        have.ok = have.ok | r.ok
    return [r for r in out.values() if r.ok.any()]


def format_value(v: float) -> str:
    """A sample value as the API writes it (Go's ``FormatFloat(v, 'f', -1, 64)``)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)  # the shortest round-tripping digits, as Go's -1 precision
    if "e" in text:
        return np.format_float_positional(v, trim="-")
    return text[:-2] if text.endswith(".0") else text


def format_values(values: list[float]) -> list[str]:
    """``format_value`` of many values: ``repr`` for the common case, the special ones fixed up."""
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) and np.isfinite(arr).all():
        magnitude = np.abs(arr)
        whole = (arr == np.round(arr)) & (magnitude < 1e15) & ~((arr == 0) & np.signbit(arr))
        if whole.all():  # counters and most gauges: integers
            return list(map(str, arr.astype(np.int64).tolist()))
        if not whole.any() and (magnitude < 1e16).all() and (magnitude >= 1e-4).all():
            return list(map(repr, values))  # no exponent, no ".0" to strip
    out = list(map(repr, values))
    for i, text in enumerate(out):
        if text.endswith(".0"):
            out[i] = text[:-2]
        elif not text[-1].isdigit() or "e" in text:
            out[i] = format_value(values[i])
    return out


def format_time(t_ms: int) -> float | int:
    """A timestamp as the API writes it: Unix seconds, milliseconds as a fraction."""
    t_ms = int(t_ms)
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000
