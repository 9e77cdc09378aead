"""Functions over range vectors (``rate``, ``increase``, ``*_over_time``…) with Prometheus 2.42's semantics,
computed for every step's window at once where the arithmetic allows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .values import Matrix, RangeSeries, Row, without_name

NAN = float("nan")


def _extrapolated(m: Matrix, s: RangeSeries, lo: np.ndarray, hi: np.ndarray, counter: bool, rate: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus' ``extrapolatedRate``: the change over the window, counter resets corrected, extrapolated to
    the window's edges (but not below zero for counters, nor further than 1.1 average intervals)."""
    ok = (hi - lo) >= 2
    out = np.full(len(lo), NAN)
    if not ok.any():
        return out, ok
    t, v = s.t, s.v
    if counter:
        drops = np.concatenate([[0.0], np.where(v[1:] < v[:-1], v[:-1], 0.0)])
        corr = np.cumsum(drops)
    lo_, hi_ = lo[ok], hi[ok] - 1
    first_v, last_v = v[lo_], v[hi_]
    result = last_v - first_v
    if counter:
        result = result + corr[hi_] - corr[lo_]
    ends = m.ends[ok].astype(np.float64)
    range_start, range_end = ends - m.range_ms, ends
    first_t, last_t = t[lo_].astype(np.float64), t[hi_].astype(np.float64)
    to_start = (first_t - range_start) / 1000
    to_end = (range_end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg = sampled / (hi_ - lo_)
    if counter:
        with np.errstate(divide="ignore", invalid="ignore"):
            to_zero = sampled * (first_v / result)
        use = (result > 0) & (first_v >= 0) & (to_zero < to_start)
        to_start = np.where(use, to_zero, to_start)
    threshold = avg * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, avg / 2) + np.where(to_end < threshold, to_end,
                                                                                        avg / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = result * (interval / sampled)
    if rate:
        result = result / (m.range_ms / 1000)
    out[ok] = result
    return out, ok


def _instant_delta(s: RangeSeries, lo: np.ndarray, hi: np.ndarray, rate: bool) -> tuple[np.ndarray, np.ndarray]:
    ok = (hi - lo) >= 2
    out = np.full(len(lo), NAN)
    a, b = hi[ok] - 2, hi[ok] - 1
    last, prev = s.v[b], s.v[a]
    res = last - prev
    if rate:
        res = np.where(last < prev, last, res)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = res / ((s.t[b] - s.t[a]) / 1000)
    out[ok] = res
    return out, ok


def _per_window(fn: Callable[[np.ndarray, np.ndarray], float], min_n: int = 1
                ) -> Callable[[Matrix, RangeSeries, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def run(m: Matrix, s: RangeSeries, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = (hi - lo) >= min_n
        out = np.full(len(lo), NAN)
        for i in np.nonzero(ok)[0]:
            out[i] = fn(s.t[lo[i]:hi[i]], s.v[lo[i]:hi[i]])
        return out, ok
    return run


def _sum(t: np.ndarray, v: np.ndarray) -> float:
    return float(np.sum(v))


def _avg(t: np.ndarray, v: np.ndarray) -> float:
    if np.isinf(v).any():
        return float(np.sum(v) / len(v))
    mean = 0.0
    for i, x in enumerate(v.tolist(), 1):  # Prometheus' incremental mean
        mean += x / i - mean / i
    return mean


def _min(t: np.ndarray, v: np.ndarray) -> float:
    vals = v[~np.isnan(v)]
    return float(vals.min()) if len(vals) else NAN


def _max(t: np.ndarray, v: np.ndarray) -> float:
    vals = v[~np.isnan(v)]
    return float(vals.max()) if len(vals) else NAN


def _stdvar(t: np.ndarray, v: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.var(v))


def _changes(t: np.ndarray, v: np.ndarray) -> float:
    a, b = v[:-1], v[1:]
    return float(np.sum((a != b) & ~(np.isnan(a) & np.isnan(b))))


def _resets(t: np.ndarray, v: np.ndarray) -> float:
    return float(np.sum(v[1:] < v[:-1]))


def quantile(q: float, values: np.ndarray) -> float:
    """Prometheus' ``quantile``: linear interpolation between the closest ranks; φ outside [0, 1] is ±Inf."""
    if len(values) == 0 or q != q:
        return NAN
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    vals = np.sort(values)
    rank = q * (len(vals) - 1)
    lower = int(np.floor(rank))
    upper = min(lower + 1, len(vals) - 1)
    weight = rank - lower
    return float(vals[lower] * (1 - weight) + vals[upper] * weight)


SIMPLE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "sum_over_time": _sum, "avg_over_time": _avg, "min_over_time": _min, "max_over_time": _max,
    "count_over_time": lambda t, v: float(len(v)), "last_over_time": lambda t, v: float(v[-1]),
    "present_over_time": lambda t, v: 1.0, "stdvar_over_time": _stdvar,
    "stddev_over_time": lambda t, v: float(np.sqrt(_stdvar(t, v))), "changes": _changes, "resets": _resets,
}
RANGE_FUNCTIONS = {"rate", "increase", "delta", "irate", "idelta", "deriv", "predict_linear",
                   "quantile_over_time", "absent_over_time", "holt_winters", *SIMPLE}


def _cumulative(name: str, s: RangeSeries, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window functions computed from prefix sums, for every step at once."""
    count = hi - lo
    ok = count >= 1
    v = s.v
    with np.errstate(all="ignore"):
        if name in ("changes", "resets"):
            a, b = v[:-1], v[1:]
            hit = ((a != b) & ~(np.isnan(a) & np.isnan(b))) if name == "changes" else (b < a)
            cs = np.concatenate([[0], np.cumsum(hit)])
            out = (cs[np.maximum(hi - 1, 0)] - cs[np.minimum(lo, len(cs) - 1)]).astype(np.float64)
        elif name == "count_over_time":
            out = count.astype(np.float64)
        elif name == "present_over_time":
            out = np.ones(len(lo))
        elif name == "last_over_time":
            out = v[np.maximum(hi - 1, 0)] if len(v) else np.full(len(lo), NAN)
        else:  # sum_over_time, avg_over_time
            if not np.isfinite(v).all():
                return _per_window(SIMPLE[name])(Matrix([s], np.zeros(len(lo), np.int64), 0), s, lo, hi)
            cs = np.concatenate([[0.0], np.cumsum(v)])
            out = cs[hi] - cs[lo]
            if name == "avg_over_time":
                out = out / count
    return np.where(ok, out, NAN), ok


def _linear(name: str, m: Matrix, s: RangeSeries, lo: np.ndarray, hi: np.ndarray, duration: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """``deriv`` and ``predict_linear``: least squares over each window from prefix sums (time relative to the
    series' first sample, seconds)."""
    count = (hi - lo).astype(np.float64)
    ok = count >= 2
    if not len(s.t):
        return np.full(len(lo), NAN), ok
    x = (s.t - s.t[0]) / 1000
    y = s.v

    def window(a: np.ndarray) -> np.ndarray:
        cs = np.concatenate([[0.0], np.cumsum(a)])
        return cs[hi] - cs[lo]

    with np.errstate(all="ignore"):
        sx, sy, sxy, sx2 = window(x), window(y), window(x * y), window(x * x)
        cov = sxy - sx * sy / count
        var = sx2 - sx * sx / count
        slope = np.where(var != 0, cov / var, NAN)
        if name == "deriv":
            out = slope
        else:
            ref = (m.ends - s.t[0]) / 1000  # the intercept at each step's evaluation time
            intercept = sy / count - slope * (sx / count - ref)
            out = slope * duration + intercept
    return np.where(ok, out, NAN), ok


def _extreme(name: str, s: RangeSeries, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``min_over_time``/``max_over_time`` of every window with one ``reduceat`` (NaN only if all are NaN)."""
    ok = hi > lo
    out = np.full(len(lo), NAN)
    if ok.any():
        padded = np.append(s.v, NAN)  # so that an index may equal the series' length
        bounds = np.column_stack([lo[ok], hi[ok]]).ravel()
        reduce = np.fmin if name == "min_over_time" else np.fmax
        out[ok] = reduce.reduceat(padded, bounds)[::2]
    return out, ok


GATHER_LIMIT = 4_000_000  # windows x width beyond which the gathered array would be too big: one at a time


def _gather(s: RangeSeries, lo: np.ndarray, hi: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Every window's values as the rows of one array (``pad`` after their end) and where they are inside."""
    width = int((hi - lo).max()) if len(lo) else 0
    if width == 0 or len(lo) * width > GATHER_LIMIT:
        return None
    idx = lo[:, None] + np.arange(width)[None, :]
    inside = idx < hi[:, None]
    return np.where(inside, s.v[np.minimum(idx, max(len(s.v) - 1, 0))], pad), inside


def _quantiles(s: RangeSeries, lo: np.ndarray, hi: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``quantile_over_time`` of every window: sorted rows, Prometheus' linear interpolation between ranks."""
    count = hi - lo
    ok = count >= 1
    gathered = _gather(s, lo, hi, np.inf)
    if gathered is None:
        return _per_index_flat(lambda i, t, x: quantile(float(q[i]), x), s, lo, hi)
    x = np.sort(gathered[0], axis=1)
    with np.errstate(all="ignore"):
        rank = q * (count - 1)
        lower = np.clip(np.floor(np.nan_to_num(rank)), 0, None).astype(np.int64)
        upper = np.minimum(lower + 1, np.maximum(count - 1, 0))
        lower = np.minimum(lower, np.maximum(count - 1, 0))
        weight = rank - np.floor(rank)
        rows = np.arange(len(lo))
        out = x[rows, lower] * (1 - weight) + x[rows, upper] * weight
        out = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, out))
        out = np.where(np.isnan(q), NAN, out)
    return np.where(ok, out, NAN), ok


def _per_index_flat(fn: Callable[[int, np.ndarray, np.ndarray], float], s: RangeSeries, lo: np.ndarray,
                    hi: np.ndarray, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    return _per_index(fn, Matrix([s], np.zeros(len(lo), np.int64), 0), s, lo, hi, min_n)


def _smoothed(s: RangeSeries, lo: np.ndarray, hi: np.ndarray, sf: np.ndarray, tf: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``holt_winters`` of every window, the recurrence run for all windows side by side."""
    count = hi - lo
    ok = count >= 2
    for name, factor in (("smoothing", sf), ("trend", tf)):
        bad = ok & ~((factor > 0) & (factor < 1))
        if bad.any():
            from .errors import execution
            short = "sf" if name == "smoothing" else "tf"
            raise execution(f"invalid {name} factor. Expected: 0 < {short} < 1, got: {float(factor[bad][0]):f}")
    gathered = _gather(s, lo, hi, 0.0)
    if gathered is None:
        return _per_index_flat(lambda i, t, x: _holt_winters(x, float(sf[i]), float(tf[i])), s, lo, hi, 2)
    x = gathered[0]
    width = x.shape[1]
    if width < 2:
        return np.full(len(lo), NAN), ok
    s0, s1, b = np.zeros(len(lo)), x[:, 0].copy(), x[:, 1] - x[:, 0]
    for i in range(1, width):
        live = i < count
        nb = np.where(i > 1, tf * (s1 - s0) + (1 - tf) * b, b)
        ns1 = sf * x[:, i] + (1 - sf) * (s1 + nb)
        s0 = np.where(live, s1, s0)
        b = np.where(live, nb, b)
        s1 = np.where(live, ns1, s1)
    return np.where(ok, s1, NAN), ok


def _spread(name: str, s: RangeSeries, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``stdvar_over_time``/``stddev_over_time``: the windows gathered into one zero-padded array, two passes."""
    count = hi - lo
    ok = count >= 1
    gathered = _gather(s, lo, hi, 0.0)
    if gathered is None:
        return _per_window(SIMPLE[name])(Matrix([s], np.zeros(len(lo), np.int64), 0), s, lo, hi)
    x, inside = gathered
    with np.errstate(all="ignore"):
        mean = x.sum(axis=1) / count
        var = (np.where(inside, (x - mean[:, None]) ** 2, 0.0)).sum(axis=1) / count
        out = var if name == "stdvar_over_time" else np.sqrt(var)
    return np.where(ok, out, NAN), ok


CUMULATIVE = {"changes", "resets", "count_over_time", "present_over_time", "last_over_time", "sum_over_time",
              "avg_over_time"}


BATCHED = {"rate", "increase", "delta", "irate", "idelta", "min_over_time", "max_over_time", "stddev_over_time",
           "stdvar_over_time", "quantile_over_time", "holt_winters", *CUMULATIVE}


def _batched(name: str, m: Matrix, params: list[np.ndarray]) -> list[Row]:
    """The functions whose windows never need a sample from outside themselves, for all series at once: the series
    are laid end to end and each (series, step) window found with one ``searchsorted`` on (series, time) keys."""
    count, n = len(m.series), len(m.ends)
    lens = np.array([len(s.t) for s in m.series])
    t_all = np.concatenate([s.t for s in m.series])
    v_all = np.concatenate([s.v for s in m.series])
    base = int(min(t_all.min() if len(t_all) else 0, m.ends.min() - m.range_ms))
    shift = int(max(t_all.max() if len(t_all) else 0, m.ends.max()) - base + 2)
    keys = np.repeat(np.arange(count, dtype=np.int64) * shift, lens) + (t_all - base)
    rows_base = (np.arange(count, dtype=np.int64) * shift)[:, None]
    lo = np.searchsorted(keys, (rows_base + (m.ends - m.range_ms - base)[None, :]).ravel(), "left")
    hi = np.searchsorted(keys, (rows_base + (m.ends - base)[None, :]).ravel(), "right")
    whole = RangeSeries({}, t_all, v_all)
    flat = Matrix([whole], np.tile(m.ends, count), m.range_ms)
    if name in ("rate", "increase", "delta"):
        v, ok = _extrapolated(flat, whole, lo, hi, counter=name != "delta", rate=name == "rate")
    elif name in ("irate", "idelta"):
        v, ok = _instant_delta(whole, lo, hi, rate=name == "irate")
    elif name in ("min_over_time", "max_over_time"):
        v, ok = _extreme(name, whole, lo, hi)
    elif name in ("stddev_over_time", "stdvar_over_time"):
        v, ok = _spread(name, whole, lo, hi)
    elif name == "quantile_over_time":
        v, ok = _quantiles(whole, lo, hi, np.tile(params[0], count))
    elif name == "holt_winters":
        v, ok = _smoothed(whole, lo, hi, np.tile(params[0], count), np.tile(params[1], count))
    else:
        v, ok = _cumulative(name, whole, lo, hi)
    v, ok = v.reshape(count, n), ok.reshape(count, n)
    return [Row(s.labels if name == "last_over_time" else without_name(s.labels), v[i], ok[i])
            for i, s in enumerate(m.series) if ok[i].any()]


def eval_range_function(name: str, m: Matrix, params: list[np.ndarray]) -> list[Row]:
    """One result row per input series (``absent_over_time`` is handled by the caller)."""
    if name in BATCHED:
        return _batched(name, m, params) if m.series else []
    rows = []
    for s in m.series:
        lo, hi = m.bounds(s)
        if name in ("rate", "increase", "delta"):
            v, ok = _extrapolated(m, s, lo, hi, counter=name != "delta", rate=name == "rate")
        elif name in ("irate", "idelta"):
            v, ok = _instant_delta(s, lo, hi, rate=name == "irate")
        elif name in ("deriv", "predict_linear"):
            v, ok = _linear(name, m, s, lo, hi, params[0] if params else None)
        elif name in ("min_over_time", "max_over_time"):
            v, ok = _extreme(name, s, lo, hi)
        elif name in CUMULATIVE:
            v, ok = _cumulative(name, s, lo, hi)
        elif name == "quantile_over_time":
            v, ok = _per_index(lambda i, t, x: quantile(float(params[0][i]), x), m, s, lo, hi)
        elif name == "holt_winters":
            v, ok = _per_index(lambda i, t, x: _holt_winters(x, float(params[0][i]), float(params[1][i])),
                               m, s, lo, hi, 2)
        else:
            v, ok = _per_window(SIMPLE[name])(m, s, lo, hi)
        labels = s.labels if name == "last_over_time" else without_name(s.labels)
        if ok.any():
            rows.append(Row(labels, v, ok))
    return rows


def _per_index(fn: Callable[[int, np.ndarray, np.ndarray], float], m: Matrix, s: RangeSeries, lo: np.ndarray,
               hi: np.ndarray, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    ok = (hi - lo) >= min_n
    out = np.full(len(lo), NAN)
    for i in np.nonzero(ok)[0]:
        out[i] = fn(int(i), s.t[lo[i]:hi[i]], s.v[lo[i]:hi[i]])
    return out, ok


def _holt_winters(v: np.ndarray, sf: float, tf: float) -> float:
    from .errors import execution
    if not 0 < sf < 1:
        raise execution(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise execution(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    s0, s1, b = 0.0, float(v[0]), float(v[1] - v[0])
    for i in range(1, len(v)):
        x = float(v[i])
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        s0, s1 = s1, sf * x + (1 - sf) * (s1 + b)
    return s1
