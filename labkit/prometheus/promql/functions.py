"""Functions over instant vectors and scalars: math, clamping, time and date, label manipulation, sorting,
``histogram_quantile`` over classic ``le`` buckets."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from .errors import execution
from .values import NAME, Row, key, without_name

NAN = float("nan")

MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log, "log2": np.log2,
    "log10": np.log10, "sqrt": np.sqrt, "sgn": np.sign, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "deg": np.degrees, "rad": np.radians,
}


def apply_math(name: str, rows: list[Row]) -> list[Row]:
    with np.errstate(all="ignore"):
        return [Row(without_name(r.labels), MATH[name](r.v), r.ok) for r in rows]


def go_round(v: np.ndarray, to_nearest: np.ndarray) -> np.ndarray:
    """Prometheus' ``round``: half up (``floor(v / n + 0.5) * n``), computed with the inverse as it does."""
    with np.errstate(all="ignore"):
        inv = 1.0 / to_nearest
        return np.floor(v * inv + 0.5) / inv


def clamp(rows: list[Row], lo: np.ndarray | None, hi: np.ndarray | None) -> list[Row]:
    out = []
    for r in rows:
        v, ok = r.v, r.ok.copy()
        if lo is not None and hi is not None:
            ok &= ~(hi < lo)
        if lo is not None:
            v = np.where(np.isnan(v), v, np.fmax(v, lo))
            v = np.where(np.isnan(lo), NAN, v)
        if hi is not None:
            v = np.where(np.isnan(v), v, np.fmin(v, hi))
            v = np.where(np.isnan(hi), NAN, v)
        out.append(Row(without_name(r.labels), v, ok))
    return [r for r in out if r.ok.any()]


DATE_PARTS: dict[str, Callable[[datetime], float]] = {
    "minute": lambda d: d.minute, "hour": lambda d: d.hour, "month": lambda d: d.month, "year": lambda d: d.year,
    "day_of_month": lambda d: d.day, "day_of_week": lambda d: (d.weekday() + 1) % 7,
    "day_of_year": lambda d: d.timetuple().tm_yday,
    "days_in_month": lambda d: calendar.monthrange(d.year, d.month)[1],
}


def date_part(name: str, v: np.ndarray) -> np.ndarray:
    out = np.full(len(v), NAN)
    for i, x in enumerate(v.tolist()):
        if x == x and abs(x) != float("inf"):
            out[i] = DATE_PARTS[name](datetime.fromtimestamp(int(x // 1), tz=UTC))
    return out


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TEMPLATE = re.compile(r"\$(?:\{([a-zA-Z0-9_]+)\}|([a-zA-Z0-9_]+))")


def expand(replacement: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``; unknown groups expand to nothing."""
    def one(m: re.Match[str]) -> str:
        ref = m.group(1) or m.group(2)
        try:
            group = match.group(int(ref)) if ref.isdigit() else match.group(ref)
        except IndexError:
            return ""
        return group or ""
    return _TEMPLATE.sub(one, replacement.replace("$$", "\x00")).replace("\x00", "$")


def label_replace(rows: list[Row], dst: str, replacement: str, src: str, regex: str) -> list[Row]:
    try:
        rx = re.compile(f"^(?:{regex})$", re.DOTALL)
    except re.error:
        raise execution(f"invalid regular expression in label_replace(): {regex}") from None
    if not LABEL_NAME.match(dst):
        raise execution(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for r in rows:
        m = rx.match(r.labels.get(src, ""))
        out.append(_with_label(r, dst, expand(replacement, m)) if m else Row(dict(r.labels), r.v, r.ok))
    return out


def label_join(rows: list[Row], dst: str, sep: str, srcs: list[str]) -> list[Row]:
    if not LABEL_NAME.match(dst):
        raise execution(f"invalid destination label name in label_join(): {dst}")
    for s in srcs:
        if not LABEL_NAME.match(s):
            raise execution(f"invalid source label name in label_join(): {s}")
    return [_with_label(r, dst, sep.join(r.labels.get(s, "") for s in srcs)) for r in rows]


def _with_label(row: Row, name: str, value: str) -> Row:
    """``row`` with label ``name`` set to ``value`` (removed when ``value`` is empty), as label_replace/join do."""
    labels = dict(row.labels)
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)
    return Row(labels, row.v, row.ok)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` over ``(upper bound, cumulative count)`` pairs."""
    if q != q:
        return NAN
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or buckets[-1][0] != float("inf"):
        return NAN
    merged: list[list[float]] = []
    for upper, count in buckets:  # coalesce equal bounds
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    if len(merged) < 2:
        return NAN
    highest = merged[0][1]
    for b in merged[1:]:  # ensure monotonic
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    observations = merged[-1][1]
    if observations == 0:
        return NAN
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    with np.errstate(all="ignore"):  # Go's float division: an empty bucket gives NaN or ±Inf, not an error
        return float(start + (end - start) * (np.float64(rank) / np.float64(count)))


def parse_le(value: str) -> float | None:
    try:
        return float(value.replace("Inf", "inf"))
    except ValueError:
        return None


def histogram_quantile(q: np.ndarray, rows: list[Row], n: int) -> list[Row]:
    groups: dict[tuple, tuple[dict[str, str], list[tuple[float, Row]]]] = {}
    for r in rows:
        le = parse_le(r.labels.get("le", ""))
        if le is None:
            continue
        labels = {k: v for k, v in r.labels.items() if k not in (NAME, "le")}
        groups.setdefault(key(labels), (labels, []))[1].append((le, r))
    out = []
    for labels, members in groups.values():
        members.sort(key=lambda m: m[0])
        ok = np.any([r.ok for _, r in members], axis=0)
        full = np.all([r.ok for _, r in members], axis=0)
        v = np.full(n, NAN)
        if full.any():
            v[full] = _bucket_quantiles(q[full], [le for le, _ in members],
                                        np.vstack([r.v[full] for _, r in members]))
        for i in np.nonzero(ok & ~full)[0]:  # steps where some buckets are missing: one at a time
            v[i] = bucket_quantile(float(q[i]), [(le, float(r.v[i])) for le, r in members if r.ok[i]])
        out.append(Row(labels, v, ok))
    return out


def _bucket_quantiles(q: np.ndarray, bounds: list[float], counts: np.ndarray) -> np.ndarray:
    """``bucket_quantile`` for many steps at once: ``counts`` is buckets (sorted by ``bounds``) x steps."""
    n = counts.shape[1]
    merged_bounds: list[float] = []
    merged: list[np.ndarray] = []
    for bound, row in zip(bounds, counts, strict=True):  # coalesce equal bounds
        if merged_bounds and merged_bounds[-1] == bound:
            merged[-1] = merged[-1] + row
        else:
            merged_bounds.append(bound)
            merged.append(row.copy())
    if merged_bounds[-1] != float("inf") or len(merged) < 2:
        out = np.full(n, NAN)
    else:
        c = np.maximum.accumulate(np.vstack(merged), axis=0)  # ensure monotonic
        b_up = np.array(merged_bounds)
        observations = c[-1]
        rank = q * observations
        reached = c[:-1] >= rank
        b = np.where(reached.any(axis=0), reached.argmax(axis=0), len(merged_bounds) - 1)
        cols = np.arange(n)
        start = np.where(b > 0, b_up[np.maximum(b - 1, 0)], 0.0)
        end = b_up[np.minimum(b, len(b_up) - 1)]
        below = np.where(b > 0, c[np.maximum(b - 1, 0), cols], 0.0)
        with np.errstate(all="ignore"):
            out = start + (end - start) * ((rank - below) / (c[np.minimum(b, len(b_up) - 1), cols] - below))
        out = np.where(b == len(b_up) - 1, b_up[-2], out)
        out = np.where((b == 0) & (b_up[0] <= 0), b_up[0], out)
        out = np.where(observations == 0, NAN, out)
    out = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, out))
    return np.where(np.isnan(q), NAN, out)
