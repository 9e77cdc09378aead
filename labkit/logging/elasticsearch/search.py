"""``_search`` and ``_count``: query, ``sort``/``from``/``size``/``search_after``, ``_source`` filtering,
``highlight``, ``aggs``, ``track_total_hits``, in Elasticsearch's response shape."""

from __future__ import annotations

import fnmatch
import re
import time
from functools import cmp_to_key
from typing import Any

import numpy as np

from . import aggs as aggregations
from .aggs import check_aggregatable
from .docvalues import dense
from .errors import es_error, illegal_argument, not_supported, parsing
from .fields import NUMERIC, comparable, field_type, tokens, values
from .matching import match
from .query import compile_query
from .store import Doc, Index

MAX_WINDOW = 10_000
KEYS = {"query", "size", "from", "sort", "search_after", "_source", "highlight", "aggs", "aggregations",
        "track_total_hits", "timeout", "version", "seq_no_primary_term", "track_scores", "min_score", "post_filter",
        "fields", "stored_fields", "explain", "terminate_after"}
UNSUPPORTED = {"script_fields", "collapse", "runtime_mappings", "pit", "rescore", "suggest", "knn", "rank",
               "docvalue_fields", "indices_boost", "stats", "profile", "slice", "point_in_time"}


def shards(indices: list[Index]) -> dict[str, int]:
    return {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0}


def check_body(body: dict[str, Any]) -> None:
    for key, value in body.items():
        if key in UNSUPPORTED:
            raise not_supported(f"the search request's [{key}]")
        if key not in KEYS:
            kind = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY" if isinstance(value, list) \
                else "VALUE_NUMBER" if isinstance(value, int | float) else "VALUE_STRING"
            raise parsing(f"Unknown key for a {kind} in [{key}].")


Hits = list[tuple[Index, np.ndarray, np.ndarray]]  # per index: its matching rows and their scores


def matches_all(query: Any) -> bool:
    return not query or (isinstance(query, dict) and list(query) == ["match_all"] and not query["match_all"])


def count(indices: list[Index], body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - {"query"}
    if unknown:
        raise parsing(f"request does not support [{sorted(unknown)[0]}]")
    if matches_all(body.get("query")):
        return {"count": sum(i.doc_count for i in indices), "_shards": shards(indices)}
    scorer = compile_query(body.get("query"))
    return {"count": sum(len(match(i, scorer)[0]) for i in indices), "_shards": shards(indices)}


def sort_spec(raw: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``[(field, order, options)]`` from the ``sort`` forms Elasticsearch takes."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, str):
            field, _, order = item.partition(":")
            out.append((field, order or ("desc" if field == "_score" else "asc"), {}))
        elif isinstance(item, dict) and len(item) == 1:
            (field, opts), = item.items()
            opts = {"order": opts} if isinstance(opts, str) else dict(opts)
            if opts.get("order", "asc") not in ("asc", "desc"):
                raise illegal_argument(f"Unknown SortOrder [{opts['order']}]")
            out.append((field, opts.get("order", "desc" if field == "_score" else "asc"), opts))
        else:
            raise parsing("malformed sort format, within the sort array, an object, or an actual string are allowed")
    return out


def sort_keys(index: Index, rows: np.ndarray, scores: np.ndarray, spec: list[tuple[str, str, dict[str, Any]]]
              ) -> list[list[Any]]:
    """Each row's sort values: a field's smallest (``asc``) or largest (``desc``) value, None when it has none."""
    columns: list[list[Any]] = []
    for field, order, opts in spec:
        if field == "_score":
            columns.append(scores.tolist())
            continue
        if field == "_doc":
            columns.append(index.seqs[rows].tolist())
            continue
        kind = field_type(index, field) or opts.get("unmapped_type", "")
        if not kind:
            raise es_error(400, "query_shard_exception", f"No mapping found for [{field}] in order to sort on",
                           index=index.name, index_uuid=index.uuid)
        check_aggregatable(field, kind)
        if field not in index.types:
            columns.append([None] * len(rows))
            continue
        col, per_row = dense(index, field, order)
        picked = per_row[rows].tolist()
        if col.numeric:
            integral = kind in ("date", "long", "integer", "short", "byte")
            columns.append([None if v != v else int(v) if integral else bool(v) if kind == "boolean" else v
                            for v in picked])
        else:
            columns.append([None if v != v else col.vocab[int(v)] for v in picked])
    return [list(keys) for keys in zip(*columns, strict=True)] if columns else [[] for _ in rows]


def compare(a: list[Any], b: list[Any], spec: list[tuple[str, str, dict[str, Any]]]) -> int:
    for x, y, (_, order, opts) in zip(a, b, spec, strict=False):
        if x == y:
            continue
        if x is None or y is None:  # missing values sort last by default, first with missing: _first
            first = opts.get("missing") == "_first"
            return (-1 if first else 1) * (1 if x is None else -1)
        c = -1 if x < y else 1
        return c if order == "asc" else -c
    return 0


def source_filter(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is None or spec is True:
        return source
    if spec is False:
        return None
    if isinstance(spec, str | list):
        includes, excludes = ([spec] if isinstance(spec, str) else spec), []
    else:
        includes = spec.get("includes", spec.get("include", []))
        excludes = spec.get("excludes", spec.get("exclude", []))
        includes = [includes] if isinstance(includes, str) else includes
        excludes = [excludes] if isinstance(excludes, str) else excludes

    def keep(path: str, leaf: bool) -> bool:
        if any(fnmatch.fnmatchcase(path, p) or path.startswith(p + ".") for p in excludes):
            return False
        if not includes:
            return True
        return any(fnmatch.fnmatchcase(path, p) or path.startswith(p + ".") or (not leaf and p.startswith(path + "."))
                   for p in includes)

    def walk(obj: dict[str, Any], prefix: str) -> dict[str, Any]:
        out = {}
        for k, v in obj.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict):
                if keep(path, False):
                    sub = walk(v, path + ".")
                    if sub or (keep(path, True) and not v):
                        out[k] = sub
            elif keep(path, True):
                out[k] = v
        return out

    return walk(source, "")


def query_terms(q: Any) -> set[str]:
    """The words a query looks for (what ``highlight`` marks)."""
    out: set[str] = set()
    if isinstance(q, dict):
        for k, v in q.items():
            if k in ("must_not", "range", "exists", "filter"):
                continue
            if k in ("query", "value") and isinstance(v, str | int | float):
                out |= {t for t in tokens(v) if t not in ("and", "or", "not", "to")}
            elif isinstance(v, str) and k not in ("operator", "type", "default_operator", "default_field", "field",
                                                  "minimum_should_match", "fuzziness", "analyzer"):
                out |= set(tokens(v))
            else:
                out |= query_terms(v)
    elif isinstance(q, list):
        for x in q:
            out |= query_terms(x)
    return out


def highlight(doc: Doc, index: Index, spec: dict[str, Any], words: set[str]) -> dict[str, list[str]]:
    pre = (spec.get("pre_tags") or ["<em>"])[0]
    post = (spec.get("post_tags") or ["</em>"])[0]
    fields = spec.get("fields", {})
    names = list(fields) if isinstance(fields, dict) else [n for f in fields for n in f]
    out = {}
    for pattern in names:
        for name in ([f for f in index.types if fnmatch.fnmatchcase(f, pattern)] if "*" in pattern else [pattern]):
            frags = []
            for v in values(doc, index, name):
                if not isinstance(v, str):
                    continue
                marked = re.sub(r"\w+", lambda m: f"{pre}{m.group(0)}{post}" if m.group(0).lower() in words
                                    else m.group(0), v)
                if pre in marked:
                    frags.append(marked)
            if frags:
                out[name] = frags
    return out


def search(indices: list[Index], body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    check_body(body)
    size = int(params.get("size", body.get("size", 10)))
    start = int(params.get("from", body.get("from", 0)))
    if start + size > MAX_WINDOW:
        raise illegal_argument(f"Result window is too large, from + size must be less than or equal to: "
                               f"[{MAX_WINDOW}] but was [{start + size}]. See the scroll api for a more efficient way "
                               "to request large data sets. This limit can be set by changing the "
                               "[index.max_result_window] index level setting.")
    if "q" in params:
        body = {**body, "query": {"query_string": {"query": params["q"]}}}
    scorer = compile_query(body.get("query"))
    agg_spec = body.get("aggs", body.get("aggregations"))
    hits: Hits = []
    if size == 0 and matches_all(body.get("query")) and not ({"min_score", "post_filter"} & set(body)):
        # every document: no need to look at them
        parts = [(i, np.flatnonzero(i.live)) for i in indices]
    else:
        for index in indices:
            rows, scores = match(index, scorer)
            if "min_score" in body:
                keep = scores >= float(body["min_score"])
                rows, scores = rows[keep], scores[keep]
            hits.append((index, rows, scores))
        parts = [(i, rows) for i, rows, _ in hits]
        if "post_filter" in body:
            post = compile_query(body["post_filter"])
            hits = [(i, rows[keep], scores[keep]) for i, rows, scores in hits
                    for keep in [np.isin(rows, match(i, post, within=rows)[0])]]
    total = sum(len(rows) for _, rows in parts) if not hits else sum(len(rows) for _, rows, _ in hits)
    raw_sort = body.get("sort") or (params["sort"].split(",") if "sort" in params else None)
    spec = sort_spec(raw_sort) if raw_sort else [("_score", "desc", {}), ("_doc", "asc", {})]
    keyed = [(keys, index, row, score) for index, rows, scores in hits if size
             for keys, row, score in zip(sort_keys(index, rows, scores, spec), rows.tolist(), scores.tolist(),
                                         strict=True)]
    keyed.sort(key=cmp_to_key(lambda a, b: compare(a[0], b[0], spec)))
    if "search_after" in body:
        if not raw_sort:
            raise illegal_argument("Cannot use [search_after] without a sort")
        after = body["search_after"]
        if len(after) != len(spec):
            raise illegal_argument(f"search_after has {len(after)} value(s) but sort has {len(spec)}.")
        if start:
            raise illegal_argument("[from] parameter must be set to 0 when [search_after] is used")
        keyed = [k for k in keyed if compare(k[0], list(after), spec) > 0]
    scored = not raw_sort or any(f == "_score" for f, _, _ in spec) or body.get("track_scores")
    source_spec = body.get("_source")
    if "_source_includes" in params or "_source_excludes" in params:
        source_spec = {"includes": params.get("_source_includes", "").split(",") if "_source_includes" in params
                       else [], "excludes": params.get("_source_excludes", "").split(",")
                       if "_source_excludes" in params else []}
    elif "_source" in params:
        source_spec = {"true": True, "false": False}.get(params["_source"], params["_source"].split(","))
    words = query_terms(body.get("query")) if "highlight" in body else set()
    out_hits = []
    page = keyed[start:start + size]
    for sort_vals, index, doc, score in [(k, i, d, sc) for (k, i, _, sc), d in zip(page, page_docs(page),
                                                                                  strict=True)]:
        hit: dict[str, Any] = {"_index": index.name, "_id": doc.id, "_score": score if scored else None}
        if body.get("version"):
            hit["_version"] = doc.version
        if body.get("seq_no_primary_term"):
            hit["_seq_no"], hit["_primary_term"] = doc.seq_no, 1
        src = source_filter(doc.source, source_spec)
        if src is not None:
            hit["_source"] = src
        if body.get("fields"):
            hit["fields"] = requested_fields(doc, index, body["fields"])
        if "highlight" in body and (marks := highlight(doc, index, body["highlight"], words)):
            hit["highlight"] = marks
        if raw_sort:
            hit["sort"] = sort_vals
        out_hits.append(hit)
    track: Any = MAX_WINDOW  # the default: exact up to 10,000
    if "track_total_hits" in params:
        text = params["track_total_hits"]
        track = int(text) if text.lstrip("-").isdigit() else text != "false"
    track = body.get("track_total_hits", track)
    limit = None if track is True else track if track is not False else 0
    total_obj: Any = {"value": total, "relation": "eq"}
    if limit is not None and total > limit:
        total_obj = {"value": limit, "relation": "gte"}
    if params.get("rest_total_hits_as_int") == "true":
        total_obj = total
    result: dict[str, Any] = {
        "took": 0, "timed_out": False, "_shards": shards(indices),
        "hits": {"total": total_obj, "max_score": max((s for _, _, _, s in keyed), default=None) if scored and size
                 else None, "hits": out_hits}}
    if track is False:
        del result["hits"]["total"]
    if agg_spec:
        result["aggregations"] = aggregations.run(agg_spec, parts)
    result["took"] = int((time.perf_counter() - started) * 1000)
    return result


def page_docs(page: list[tuple[list[Any], Index, int, float]]) -> list[Doc]:
    """The documents of a page of hits, read from disk once per index."""
    by_index: dict[int, tuple[Index, list[int]]] = {}
    for _, index, row, _ in page:
        by_index.setdefault(id(index), (index, []))[1].append(row)
    docs: dict[tuple[int, int], Doc] = {}
    for index, rows in by_index.values():
        for row, doc in zip(rows, index.docs_at(np.asarray(rows, dtype=np.int64)), strict=True):
            docs[(id(index), row)] = doc
    return [docs[(id(index), row)] for _, index, row, _ in page]


def requested_fields(doc: Doc, index: Index, spec: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in spec:
        pattern = item["field"] if isinstance(item, dict) else item
        for name in doc.fields:
            if fnmatch.fnmatchcase(name, pattern):
                kind = field_type(index, name)
                vals = values(doc, index, name)
                out[name] = [v if kind not in NUMERIC else comparable(v, kind) for v in vals]
    return out
