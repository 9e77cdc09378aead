"""Aggregations over the matching documents: ``date_histogram`` (``fixed_interval``/``calendar_interval``),
``histogram``, ``terms``, ``filter``/``filters``, ``avg``/``sum``/``min``/``max``/``value_count``/``stats``/
``cardinality``/``percentiles``, nested to any depth, answered in Elasticsearch's shapes.

The matching documents are per index a sorted array of rows (``docvalues``); each aggregation reads its field's
column for those rows with numpy, and hands each bucket's rows to its sub-aggregations."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from . import datemath, mapping
from .docvalues import Column, column
from .errors import es_error, illegal_argument, not_supported, parsing
from .matching import match
from .query import compile_query
from .store import Index

Parts = list[tuple[Index, np.ndarray]]  # (index, its matching rows, sorted)
CALENDAR = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
            "month": "M", "1M": "M", "quarter": "q", "1q": "q", "year": "y", "1y": "y"}
FIXED = re.compile(r"(\d+)(ms|s|m|h|d)")
METRICS = ("avg", "sum", "min", "max", "value_count", "stats", "cardinality", "percentiles")
INTEGRAL = ("long", "integer", "short", "byte", "date")


def run(spec: dict[str, Any], parts: Parts) -> dict[str, Any]:
    """``{name: result}`` for an ``aggs`` object."""
    if not isinstance(spec, dict):
        raise parsing("Expected [START_OBJECT] under [aggs], but got a [VALUE_STRING]")
    return {name: one(name, body, parts) for name, body in spec.items()}


def one(name: str, body: dict[str, Any], parts: Parts) -> dict[str, Any]:
    subs = body.get("aggs", body.get("aggregations", {}))
    kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise parsing(f"Expected [START_OBJECT] under [{kinds[1]}], but got a [FIELD_NAME] in [{name}]" if kinds
                      else f"Missing definition for aggregation [{name}]")
    kind = kinds[0]
    params = body[kind]
    if kind in METRICS:
        return metric(kind, params, parts)
    handler = BUCKETS.get(kind)
    if handler is None:
        raise not_supported(f"the [{kind}] aggregation") if kind in KNOWN else \
            es_error(400, "x_content_parse_exception", f"[1:{len(name) + 10}] unknown field [{kind}]")
    return handler(params, parts, subs)


def check_aggregatable(field: str, kind: str) -> None:
    if kind in ("text", "match_only_text"):
        raise illegal_argument(
            "Text fields are not optimised for operations that require per-document field data like aggregations "
            "and sorting, so these operations are disabled by default. Please use a keyword field instead. "
            f"Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the "
            "inverted index. Note that this can use significant memory.")


def field_of(params: dict[str, Any]) -> str:
    if not params.get("field"):
        raise illegal_argument("Required one of fields [field, script], but none were specified. ")
    return str(params["field"])


def selected(index: Index, rows: np.ndarray, field: str) -> tuple[Column, np.ndarray, np.ndarray]:
    """The field's column and the (rows, values) of its values in ``rows``."""
    kind = index.types.get(field, "")
    check_aggregatable(field, kind)
    col = column(index, field)
    if len(rows) == len(index.seqs):
        return col, col.rows, col.vals
    # column.rows is sorted: each wanted row's values are one slice of it (rows in the column's dtype: searchsorted
    # would otherwise convert the whole column at each call)
    rows = rows.astype(col.rows.dtype, copy=False)
    left = np.searchsorted(col.rows, rows, "left")
    counts = np.searchsorted(col.rows, rows, "right") - left
    starts = np.cumsum(counts) - counts
    picks = np.repeat(left, counts) + (np.arange(int(counts.sum())) - np.repeat(starts, counts))
    return col, col.rows[picks], col.vals[picks]


def numbers(field: str, parts: Parts) -> tuple[np.ndarray, str]:
    """Every numeric value of the field in the parts, and the field's type."""
    arrays, kind = [], ""
    for index, rows in parts:
        column, _, vals = selected(index, rows, field)
        kind = kind or column.kind
        if column.numeric:
            arrays.append(vals)
    return (np.concatenate(arrays) if arrays else np.empty(0)), kind


def metric(kind: str, params: dict[str, Any], parts: Parts) -> dict[str, Any]:
    field = field_of(params)
    if kind in ("cardinality", "value_count"):
        seen: set[Any] = set()
        total = 0
        for index, rows in parts:
            column, _, vals = selected(index, rows, field)
            total += len(vals)
            seen |= set(vals.tolist()) if column.numeric else {column.vocab[c] for c in np.unique(vals).tolist()}
        return {"value": len(seen) if kind == "cardinality" else total}
    nums, ftype = numbers(field, parts)
    if kind == "percentiles":
        percents = params.get("percents", [1, 5, 25, 50, 75, 95, 99])
        vals = {f"{float(p)}": (float(np.percentile(nums, float(p))) if len(nums) else None) for p in percents}
        if params.get("keyed", True) is False:
            return {"values": [{"key": float(p), "value": vals[f"{float(p)}"]} for p in percents]}
        return {"values": vals}
    if kind == "stats":
        if not len(nums):
            return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
        return {"count": len(nums), "min": float(nums.min()), "max": float(nums.max()),
                "avg": float(nums.mean()), "sum": float(nums.sum())}
    value: float | None
    if kind == "sum":
        value = float(nums.sum())
    elif not len(nums):
        value = None
    else:
        value = float({"avg": np.mean, "min": np.min, "max": np.max}[kind](nums))
    out: dict[str, Any] = {"value": value}
    if ftype == "date" and value is not None and kind in ("min", "max", "avg"):
        out["value_as_string"] = mapping.format_date(value)
    return out


def grouped(parts: Parts, field: str, bucket: Callable[[Column, np.ndarray], np.ndarray | None],
            label: Callable[[Column, np.ndarray], list[Any]] = lambda c, u: u.tolist()) -> dict[Any, Parts]:
    """Bucket key → the rows (per index) with a value in that bucket: ``bucket`` maps a column's values to bucket
    values (None: the column has none), ``label`` the distinct bucket values to keys."""
    out: dict[Any, dict[int, tuple[Index, list[np.ndarray]]]] = defaultdict(dict)
    for index, rows in parts:
        column, rs, vals = selected(index, rows, field)
        keyed = bucket(column, vals) if len(vals) else None
        if keyed is None:
            continue
        uniq, inverse = np.unique(keyed, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
        for i, k in enumerate(label(column, uniq)):
            members = rs[order[bounds[i]:bounds[i + 1]]]
            slot = out[k].setdefault(id(index), (index, []))
            slot[1].append(members)
    return {k: [(index, distinct(chunks)) for index, chunks in by_index.values()] for k, by_index in out.items()}


def distinct(chunks: list[np.ndarray]) -> np.ndarray:
    """The sorted distinct rows of ``chunks`` (one chunk of increasing rows, the usual case, as it is)."""
    if len(chunks) == 1 and np.all(chunks[0][1:] > chunks[0][:-1]):
        return chunks[0]
    return np.unique(np.concatenate(chunks))


def doc_count(parts: Parts) -> int:
    return int(sum(len(rows) for _, rows in parts))


def with_subs(bucket: dict[str, Any], subs: dict[str, Any], parts: Parts) -> dict[str, Any]:
    if subs:
        bucket.update(run(subs, parts))
    return bucket


def terms(params: dict[str, Any], parts: Parts, subs: dict[str, Any]) -> dict[str, Any]:
    field = field_of(params)
    size, min_count = int(params.get("size", 10)), int(params.get("min_doc_count", 1))
    if "missing" in params:
        raise not_supported("the terms aggregation's [missing]")
    kinds: set[str] = set()

    def keys(column: Column, uniq: np.ndarray) -> list[Any]:
        kinds.add(column.kind)
        return [column.vocab[c] for c in uniq.tolist()] if column.vocab else uniq.tolist()
    groups = grouped(parts, field, lambda column, vals: vals, keys)
    counts = Counter({k: doc_count(v) for k, v in groups.items()})
    counts = Counter({k: c for k, c in counts.items() if c >= min_count})
    order = params.get("order", {"_count": "desc"})
    order = order[0] if isinstance(order, list) else order
    (okey, odir), = order.items()
    if okey in ("_key", "_term"):
        ranked = sorted(counts, reverse=odir == "desc")
    elif okey == "_count":
        ranked = sorted(counts, key=lambda k: (counts[k] if odir == "asc" else -counts[k], k))
    else:
        raise not_supported(f"ordering terms by [{okey}]")
    buckets = []
    for k in ranked[:size]:
        b: dict[str, Any] = {"key": k, "doc_count": counts[k]}
        if "boolean" in kinds:
            b = {"key": int(k), "key_as_string": "true" if k else "false", "doc_count": counts[k]}
        elif isinstance(k, float) and kinds <= set(INTEGRAL):
            b["key"] = int(k)
            if "date" in kinds:
                b = {"key": int(k), "key_as_string": mapping.format_date(k), "doc_count": counts[k]}
        buckets.append(with_subs(b, subs, groups[k]))
    return {"doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(counts[k] for k in ranked[size:]), "buckets": buckets}


def interval_of(params: dict[str, Any]) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[float], float]]:
    """(floor timestamps to their buckets, the next bucket's start) for a date_histogram's interval."""
    if "interval" in params:
        raise illegal_argument("[interval] on [date_histogram] is deprecated and was removed; use "
                               "[fixed_interval] or [calendar_interval]")
    if "fixed_interval" in params:
        m = FIXED.fullmatch(str(params["fixed_interval"]))
        if not m:
            raise illegal_argument(f"failed to parse setting [date_histogram.fixedInterval] with value "
                                   f"[{params['fixed_interval']}] as a time value: unit is missing or unrecognized")
        step = int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]
        return (lambda t: t - np.mod(t, step)), (lambda t: t + step)
    if "calendar_interval" in params:
        unit = CALENDAR.get(str(params["calendar_interval"]))
        if unit is None:
            raise illegal_argument(f"The supplied interval [{params['calendar_interval']}] could not be parsed as a "
                                   "calendar interval.")

        def floor_one(t: float) -> float:
            d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            if unit == "q":
                d = d.replace(month=(d.month - 1) // 3 * 3 + 1)
            return datemath.round_to(d, "M" if unit == "q" else unit, False).timestamp() * 1000

        def nxt(t: float) -> float:
            d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            return datemath.add(d, 3 if unit == "q" else 1, "M" if unit == "q" else unit).timestamp() * 1000
        if unit in "mhd":  # as long as UTC days: a fixed interval
            step = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
            return (lambda t: t - np.mod(t, step)), nxt

        def floor(t: np.ndarray) -> np.ndarray:  # each distinct day's week/month/quarter/year, once
            days, inverse = np.unique(t - np.mod(t, 86_400_000), return_inverse=True)
            return np.asarray([floor_one(d) for d in days.tolist()], dtype=np.float64)[inverse]
        return floor, nxt
    raise illegal_argument("Invalid interval specified, must be non-null and non-empty")


def date_histogram(params: dict[str, Any], parts: Parts, subs: dict[str, Any]) -> dict[str, Any]:
    field = field_of(params)
    if params.get("time_zone") not in (None, "UTC", "Z", "+00:00", "Etc/UTC"):
        raise not_supported("a date_histogram's time_zone other than UTC")
    floor, nxt = interval_of(params)
    groups = grouped(parts, field, lambda column, vals: floor(vals) if column.numeric else None)
    min_count = int(params.get("min_doc_count", 0))
    keys = set(groups)
    bounds = params.get("extended_bounds")
    if min_count == 0 and (keys or bounds):
        lo = [float(floor(np.asarray([datemath.parse(bounds["min"])]))[0])] if bounds and "min" in bounds else []
        hi = [float(floor(np.asarray([datemath.parse(bounds["max"])]))[0])] if bounds and "max" in bounds else []
        start, end = min(list(keys) + lo), max(list(keys) + hi)
        t = start
        while t <= end and len(keys) < 65_536:
            keys.add(t)
            t = nxt(t)
    buckets = []
    for k in sorted(keys):
        members = groups.get(k, [])
        if doc_count(members) < min_count:
            continue
        buckets.append(with_subs({"key_as_string": mapping.format_date(k), "key": int(k),
                                  "doc_count": doc_count(members)}, subs, members))
    return {"buckets": buckets}


def histogram(params: dict[str, Any], parts: Parts, subs: dict[str, Any]) -> dict[str, Any]:
    step = float(params.get("interval", 0))
    if step <= 0:
        raise illegal_argument("[interval] must be >0 for histogram aggregation [histogram]")
    groups = grouped(parts, field_of(params),
                     lambda column, vals: np.floor(vals / step) * step if column.numeric else None)
    min_count = int(params.get("min_doc_count", 0))
    keys = sorted(groups)
    if keys and min_count == 0:
        keys = [keys[0] + n * step for n in range(round((keys[-1] - keys[0]) / step) + 1)]
    return {"buckets": [with_subs({"key": k, "doc_count": doc_count(groups.get(k, []))}, subs, groups.get(k, []))
                        for k in keys if doc_count(groups.get(k, [])) >= min_count]}


def filtered(parts: Parts, spec: dict[str, Any]) -> Parts:
    q = compile_query(spec)
    return [(index, match(index, q, within=rows)[0]) for index, rows in parts]


def filter_agg(params: dict[str, Any], parts: Parts, subs: dict[str, Any]) -> dict[str, Any]:
    members = filtered(parts, params)
    return with_subs({"doc_count": doc_count(members)}, subs, members)


def filters_agg(params: dict[str, Any], parts: Parts, subs: dict[str, Any]) -> dict[str, Any]:
    named = params.get("filters", {})
    if isinstance(named, list):
        raise not_supported("anonymous filters")
    out = {}
    for key, spec in named.items():
        members = filtered(parts, spec)
        out[key] = with_subs({"doc_count": doc_count(members)}, subs, members)
    return {"buckets": out}


BUCKETS = {"terms": terms, "date_histogram": date_histogram, "histogram": histogram, "filter": filter_agg,
           "filters": filters_agg}
KNOWN = {"range", "date_range", "significant_terms", "composite", "top_hits", "nested", "reverse_nested",
         "global", "missing", "multi_terms", "rare_terms", "auto_date_histogram", "geo_distance", "sampler",
         "extended_stats", "percentile_ranks", "median_absolute_deviation", "scripted_metric", "top_metrics",
         "bucket_script", "bucket_selector", "derivative", "cumulative_sum", "moving_fn", "avg_bucket",
         "max_bucket", "min_bucket", "sum_bucket", "stats_bucket", "weighted_avg", "string_stats", "boxplot"}
