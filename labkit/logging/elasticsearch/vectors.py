"""Queries over doc values: the queries that compare whole values (``term(s)``, ``match`` on a keyword, number or
date, ``range``, ``exists``, ``bool`` of those, ``constant_score``, ``match_all``) answered for every row of an
index at once with numpy, as Lucene answers them from its index instead of reading documents.

A query's ``vector`` gives, for an index, every row's score (NaN: no match), or None when the query cannot be
answered from that index's columns (a text field's tokens, a field whose column is not kept): the search then reads
the documents (``matching``). A ``prefilter`` gives rows outside of which a query cannot match (a ``bool``'s
vectorizable ``filter``/``must`` clauses), so that fewer documents are read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .docvalues import NOT_COLUMNS, Column, doc_values
from .fields import comparable, field_type
from .store import Index

Vector = Callable[[Index], "np.ndarray | None"]
Mask = Callable[[Index], "np.ndarray | None"]


def attach(scorer: Any, vector: Vector, prefilter: Mask | None = None) -> Any:
    """``scorer`` with its vector form (and prefilter)."""
    scorer.vector = vector
    if prefilter is not None:
        scorer.prefilter = prefilter
    return scorer


def vector_of(scorer: Any, index: Index) -> np.ndarray | None:
    fn = getattr(scorer, "vector", None)
    return fn(index) if fn is not None else None


def kept(index: Index, name: str) -> Column | None:
    """The field's kept column, if the field is one a column answers (not text, not an object)."""
    if field_type(index, name) in NOT_COLUMNS:
        return None
    return doc_values(index).columns.get(name)


def scored(index: Index, col: Column, hit: np.ndarray) -> np.ndarray:
    """1.0 for the rows with a value where ``hit`` (per value) is true, NaN elsewhere."""
    out = np.full(len(index.seqs), np.nan)
    out[col.rows[hit]] = 1.0
    return out


def codes_where(col: Column, keep: Callable[[Any], bool]) -> np.ndarray:
    """Per value: whether its vocabulary entry passes ``keep`` (evaluated once per distinct value)."""
    ok = np.fromiter((bool(keep(v)) for v in col.vocab), bool, len(col.vocab))
    return ok[col.vals] if len(col.vals) else np.zeros(0, dtype=bool)


def terms(name: str, wanted: list[Any], case_insensitive: bool = False) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        col = kept(index, name)
        if col is None:
            return None
        kind = col.kind
        targets = {comparable(w, kind) for w in wanted} - {None}
        if col.numeric:
            if case_insensitive:
                return None
            return scored(index, col, np.isin(col.vals, [float(t) for t in targets]))
        if case_insensitive:
            lowered = {str(t).lower() for t in targets}
            return scored(index, col, codes_where(col, lambda v: str(v).lower() in lowered))
        codes = [col.codes[t] for t in targets if t in col.codes]
        return scored(index, col, np.isin(col.vals, codes))
    return vector


def equals(name: str, query: Any) -> Vector:
    """``match`` on a field that is not text: its values equal to the query's."""
    def vector(index: Index) -> np.ndarray | None:
        kind = field_type(index, name)
        if not kind or comparable(query, kind) is None:
            return None
        return terms(name, [query])(index)
    return vector


def within(name: str, bounds: dict[str, Any], bound: Callable[[str, str], Any]) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        col = kept(index, name)
        if col is None:
            return None
        kind = col.kind
        keys = [k for k in ("gt", "gte", "lt", "lte") if k in bounds]
        limits = {k: bound(k, kind) for k in keys}
        if any(v is None for v in limits.values()):
            return None
        if col.numeric:
            hit = np.ones(len(col.vals), dtype=bool)
            for k, lim in limits.items():
                hit &= {"gt": np.greater, "gte": np.greater_equal, "lt": np.less,
                        "lte": np.less_equal}[k](col.vals, float(lim))
            return scored(index, col, hit)

        def keep(v: Any) -> bool:
            v = str(v)
            return all({"gt": v > str(lim), "gte": v >= str(lim), "lt": v < str(lim), "lte": v <= str(lim)}[k]
                       for k, lim in limits.items())
        return scored(index, col, codes_where(col, keep))
    return vector


def exists(name: str) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        if "*" in name:
            return None
        kind = field_type(index, name)
        own = name + ".keyword" if kind == "text" and index.types.get(name + ".keyword") == "keyword" else name
        if any(f.startswith(name + ".") and f != own for f in index.types):
            return None  # an object's fields, or a text field's other sub-fields
        col = kept(index, own)
        if col is None:
            return None
        return scored(index, col, np.ones(len(col.vals), dtype=bool))
    return vector


def everything(boost: float) -> Vector:
    return lambda index: np.full(len(index.seqs), boost)


def nothing(index: Index) -> np.ndarray:
    return np.full(len(index.seqs), np.nan)


def boolean(must: Sequence[Any], should: Sequence[Any], filt: Sequence[Any], must_not: Sequence[Any], need: int,
            unscored: float) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        n = len(index.seqs)
        total, ok, hits = np.zeros(n), np.ones(n, dtype=bool), np.zeros(n, dtype=np.int64)
        for role, group in (("must", must), ("filter", filt), ("must_not", must_not), ("should", should)):
            for q in group:
                s = vector_of(q, index)
                if s is None:
                    return None
                matched = ~np.isnan(s)
                if role == "must_not":
                    ok &= ~matched
                elif role == "filter":
                    ok &= matched
                else:
                    total += np.where(matched, s, 0.0)
                    if role == "must":
                        ok &= matched
                    else:
                        hits += matched
        ok &= hits >= need
        return np.where(ok, total if (must or should) else unscored, np.nan)
    return vector


def restricting(required: Sequence[Any], excluded: Sequence[Any]) -> Mask:
    """The rows that the vectorizable ones of ``required`` match and ``excluded`` do not (None: all rows)."""
    def mask(index: Index) -> np.ndarray | None:
        out: np.ndarray | None = None
        for q, want in [(q, True) for q in required] + [(q, False) for q in excluded]:
            s = vector_of(q, index)
            if s is None:
                inner = getattr(q, "prefilter", None)
                m = inner(index) if inner is not None and want else None
            else:
                m = ~np.isnan(s) if want else np.isnan(s)
            if m is not None:
                out = m if out is None else out & m
        return out
    return mask


def constant(inner: Any, boost: float) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        s = vector_of(inner, index)
        return None if s is None else np.where(np.isnan(s), np.nan, boost)
    return vector


def scaled(scorer: Any, boost: float) -> Vector:
    def vector(index: Index) -> np.ndarray | None:
        s = vector_of(scorer, index)
        return None if s is None else s * boost
    return vector
