"""Aggregations over the matching documents: ``date_histogram`` (``fixed_interval``/``calendar_interval``),
``histogram``, ``terms``, ``filter``, ``avg``/``sum``/``min``/``max``/``value_count``/``stats``/``cardinality``/
``percentiles``, nested to any depth, answered in Elasticsearch's shapes."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import datemath, mapping
from .errors import es_error, illegal_argument, not_supported, parsing
from .query import NUMERIC, comparable, compile_query, field_type, values
from .store import Doc, Index

Hits = list[tuple[Doc, Index]]
CALENDAR = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
            "month": "M", "1M": "M", "quarter": "q", "1q": "q", "year": "y", "1y": "y"}
FIXED = re.compile(r"(\d+)(ms|s|m|h|d)")
METRICS = ("avg", "sum", "min", "max", "value_count", "stats", "cardinality", "percentiles")


def run(spec: dict[str, Any], hits: Hits) -> dict[str, Any]:
    """``{name: result}`` for an ``aggs`` object."""
    if not isinstance(spec, dict):
        raise parsing("Expected [START_OBJECT] under [aggs], but got a [VALUE_STRING]")
    return {name: one(name, body, hits) for name, body in spec.items()}


def one(name: str, body: dict[str, Any], hits: Hits) -> dict[str, Any]:
    subs = body.get("aggs", body.get("aggregations", {}))
    kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise parsing(f"Expected [START_OBJECT] under [{kinds[1] if kinds[1:] else 'aggs'}], but got a "
                      f"[FIELD_NAME] in [{name}]" if kinds else f"Missing definition for aggregation [{name}]")
    kind = kinds[0]
    params = body[kind]
    if kind in METRICS:
        return metric(kind, params, hits)
    handler = BUCKETS.get(kind)
    if handler is None:
        raise not_supported(f"the [{kind}] aggregation") if kind in KNOWN else \
            es_error(400, "x_content_parse_exception", f"[1:{len(name) + 10}] unknown field [{kind}]")
    return handler(params, hits, subs)


def numbers(field: str, hits: Hits) -> list[float]:
    out: list[float] = []
    for doc, index in hits:
        kind = field_type(index, field)
        check_aggregatable(field, kind)
        for v in values(doc, index, field):
            c = comparable(v, kind if kind in NUMERIC or kind == "date" else "double")
            if c is not None:
                out.append(float(c))
    return out


def check_aggregatable(field: str, kind: str) -> None:
    if kind in ("text", "match_only_text"):
        raise illegal_argument(
            "Text fields are not optimised for operations that require per-document field data like aggregations "
            "and sorting, so these operations are disabled by default. Please use a keyword field instead. "
            f"Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the "
            "inverted index. Note that this can use significant memory.")


def date_field(field: str, hits: Hits) -> bool:
    return any(field_type(index, field) == "date" for _, index in hits[:1])


def metric(kind: str, params: dict[str, Any], hits: Hits) -> dict[str, Any]:
    field = params.get("field")
    if not field:
        raise illegal_argument("Required one of fields [field, script], but none were specified. ")
    if kind == "cardinality":
        seen = {str(comparable(v, field_type(i, field))) for d, i in hits for v in values(d, i, field)}
        if hits:
            check_aggregatable(field, field_type(hits[0][1], field))
        return {"value": len(seen)}
    if kind == "value_count":
        return {"value": sum(len(values(d, i, field)) for d, i in hits)}
    nums = numbers(field, hits)
    is_date = date_field(field, hits)
    if kind == "percentiles":
        percents = params.get("percents", [1, 5, 25, 50, 75, 95, 99])
        ordered = sorted(nums)
        vals = {f"{float(p)}": percentile(ordered, float(p)) for p in percents}
        if params.get("keyed", True) is False:
            return {"values": [{"key": float(p), "value": vals[f"{float(p)}"]} for p in percents]}
        return {"values": vals}
    if kind == "stats":
        if not nums:
            return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
        return {"count": len(nums), "min": min(nums), "max": max(nums), "avg": sum(nums) / len(nums),
                "sum": float(sum(nums))}
    value: float | None
    if kind == "sum":
        value = float(sum(nums))
    elif not nums:
        value = None
    else:
        value = {"avg": lambda: sum(nums) / len(nums), "min": lambda: min(nums), "max": lambda: max(nums)}[kind]()
    out: dict[str, Any] = {"value": value}
    if is_date and value is not None and kind in ("min", "max", "avg"):
        out["value_as_string"] = mapping.format_date(value)
    return out


def percentile(ordered: list[float], p: float) -> float | None:
    """Linear interpolation between the closest ranks (what t-digest gives on small sets)."""
    if not ordered:
        return None
    rank = p / 100 * (len(ordered) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def with_subs(bucket: dict[str, Any], subs: dict[str, Any], members: Hits) -> dict[str, Any]:
    if subs:
        bucket.update(run(subs, members))
    return bucket


def terms(params: dict[str, Any], hits: Hits, subs: dict[str, Any]) -> dict[str, Any]:
    field = params.get("field")
    if not field:
        raise illegal_argument("Required one of fields [field, script], but none were specified. ")
    size, min_count = int(params.get("size", 10)), int(params.get("min_doc_count", 1))
    groups: dict[Any, Hits] = {}
    kinds: set[str] = set()
    for doc, index in hits:
        kind = field_type(index, field)
        check_aggregatable(field, kind)
        kinds.add(kind)
        vals = values(doc, index, field) or ([params["missing"]] if "missing" in params else [])
        for v in dict.fromkeys(comparable(x, kind) for x in vals):
            groups.setdefault(v, []).append((doc, index))
    counts = Counter({k: len(v) for k, v in groups.items() if len(v) >= min_count})
    order = params.get("order", {"_count": "desc"})
    order = order[0] if isinstance(order, list) else order
    (okey, odir), = order.items()
    if okey in ("_key", "_term"):
        ranked = sorted(counts, key=lambda k: k, reverse=odir == "desc")
    elif okey == "_count":
        ranked = sorted(counts, key=lambda k: (counts[k] if odir == "asc" else -counts[k], k))
    else:
        raise not_supported(f"ordering terms by [{okey}]")
    numeric = kinds <= set(NUMERIC) | {"date", "boolean"} and bool(kinds)
    buckets = []
    for k in ranked[:size]:
        b: dict[str, Any] = {"key": k, "doc_count": counts[k]}
        if numeric and isinstance(k, float):
            b["key"] = int(k) if k.is_integer() and "double" not in kinds and "float" not in kinds else k
            if "date" in kinds:
                b["key_as_string"] = mapping.format_date(k)
        if isinstance(k, bool):
            b = {"key": int(k), "key_as_string": str(k).lower(), "doc_count": counts[k]}
        buckets.append(with_subs(b, subs, groups[k]))
    return {"doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(counts[k] for k in ranked[size:]), "buckets": buckets}


def interval_of(params: dict[str, Any]) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """(floor a timestamp to its bucket, the next bucket's start) for a date_histogram's interval."""
    if "interval" in params:
        raise illegal_argument("[interval] on [date_histogram] is deprecated and was removed; use "
                               "[fixed_interval] or [calendar_interval]")
    if "fixed_interval" in params:
        m = FIXED.fullmatch(str(params["fixed_interval"]))
        if not m:
            raise illegal_argument(f"failed to parse setting [date_histogram.fixedInterval] with value "
                                   f"[{params['fixed_interval']}] as a time value: unit is missing or unrecognized")
        step = int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]
        return (lambda t: t - t % step), (lambda t: t + step)
    if "calendar_interval" in params:
        unit = CALENDAR.get(str(params["calendar_interval"]))
        if unit is None:
            raise illegal_argument(f"The supplied interval [{params['calendar_interval']}] could not be parsed as a "
                                   "calendar interval.")

        def floor(t: float) -> float:
            d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            if unit == "q":
                d = d.replace(month=(d.month - 1) // 3 * 3 + 1)
                return datemath.round_to(d, "M", False).timestamp() * 1000
            return datemath.round_to(d, unit, False).timestamp() * 1000

        def nxt(t: float) -> float:
            d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            return datemath.add(d, 3 if unit == "q" else 1, "M" if unit == "q" else unit).timestamp() * 1000
        return floor, nxt
    raise illegal_argument("Invalid interval specified, must be non-null and non-empty")


def date_histogram(params: dict[str, Any], hits: Hits, subs: dict[str, Any]) -> dict[str, Any]:
    field = params.get("field")
    if params.get("time_zone") not in (None, "UTC", "Z", "+00:00", "Etc/UTC"):
        raise not_supported("a date_histogram's time_zone other than UTC")
    floor, nxt = interval_of(params)
    groups: dict[float, Hits] = {}
    for doc, index in hits:
        for v in values(doc, index, field):
            t = mapping.parse_date(v)
            if t is not None:
                groups.setdefault(floor(t), []).append((doc, index))
                break
    min_count = int(params.get("min_doc_count", 0))
    keys = set(groups)
    bounds = params.get("extended_bounds")
    if min_count == 0 and (keys or bounds):
        lo = [floor(datemath.parse(bounds["min"]))] if bounds and "min" in bounds else []
        hi = [floor(datemath.parse(bounds["max"]))] if bounds and "max" in bounds else []
        start, end = min(list(keys) + lo), max(list(keys) + hi)
        t = start
        while t <= end and len(keys) < 65_536:
            keys.add(t)
            t = nxt(t)
    buckets = []
    for k in sorted(keys):
        members = groups.get(k, [])
        if len(members) < min_count:
            continue
        buckets.append(with_subs({"key_as_string": mapping.format_date(k), "key": int(k),
                                  "doc_count": len(members)}, subs, members))
    return {"buckets": buckets}


def histogram(params: dict[str, Any], hits: Hits, subs: dict[str, Any]) -> dict[str, Any]:
    step = float(params.get("interval", 0))
    if step <= 0:
        raise illegal_argument("[interval] must be >0 for histogram aggregation [histogram]")
    groups: dict[float, Hits] = {}
    for doc, index in hits:
        for v in values(doc, index, params["field"]):
            c = comparable(v, "double")
            if c is not None:
                groups.setdefault(math.floor(c / step) * step, []).append((doc, index))
    min_count = int(params.get("min_doc_count", 0))
    keys = sorted(groups)
    if keys and min_count == 0:
        keys = [keys[0] + n * step for n in range(int((keys[-1] - keys[0]) / step) + 1)]
    return {"buckets": [with_subs({"key": k, "doc_count": len(groups.get(k, []))}, subs, groups.get(k, []))
                        for k in keys if len(groups.get(k, [])) >= min_count]}


def filter_agg(params: dict[str, Any], hits: Hits, subs: dict[str, Any]) -> dict[str, Any]:
    q = compile_query(params)
    members = [(d, i) for d, i in hits if q(d, i) is not None]
    return with_subs({"doc_count": len(members)}, subs, members)


def filters_agg(params: dict[str, Any], hits: Hits, subs: dict[str, Any]) -> dict[str, Any]:
    named = params.get("filters", {})
    if isinstance(named, list):
        raise not_supported("anonymous filters")
    out = {}
    for key, spec in named.items():
        q = compile_query(spec)
        members = [(d, i) for d, i in hits if q(d, i) is not None]
        out[key] = with_subs({"doc_count": len(members)}, subs, members)
    return {"buckets": out}


BUCKETS = {"terms": terms, "date_histogram": date_histogram, "histogram": histogram, "filter": filter_agg,
           "filters": filters_agg}
KNOWN = {"range", "date_range", "significant_terms", "composite", "top_hits", "nested", "reverse_nested",
         "global", "missing", "multi_terms", "rare_terms", "auto_date_histogram", "geo_distance", "sampler",
         "extended_stats", "percentile_ranks", "median_absolute_deviation", "scripted_metric", "top_metrics",
         "bucket_script", "bucket_selector", "derivative", "cumulative_sum", "moving_fn", "avg_bucket",
         "max_bucket", "min_bucket", "sum_bucket", "stats_bucket", "weighted_avg", "string_stats", "boxplot"}
