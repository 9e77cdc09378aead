"""Doc values: per index, one column per aggregatable field (every value of every refreshed row as a (row, value)
pair: numbers and dates as float64 epoch ms, keywords as int32 codes into a vocabulary), which queries, sorts and
aggregations read with numpy, as Elasticsearch reads Lucene's doc values.

Columns are extended at each refresh with the new rows (as Lucene adds segments); rows replaced or deleted keep
their values and are masked by the index's ``live`` rows. A keyword column with more than ``MAX_VOCAB`` distinct
values (a trace id, a message) is not kept: it is built from the sources on disk when a query needs it, so the
server's memory does not grow with such fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fields import NUMERIC, comparable, values
from .store import Doc, Index

MAX_VOCAB = 50_000
NOT_COLUMNS = ("text", "match_only_text", "object", "")


@dataclass
class Column:
    kind: str  # the mapped type ("keyword" for x.keyword sub-fields)
    rows: np.ndarray  # int32: the row of each value, sorted
    vals: np.ndarray  # float64 values, or int32 codes into ``vocab``
    vocab: list[Any] = field(default_factory=list)
    codes: dict[Any, int] = field(default_factory=dict)  # vocab → code

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC or self.kind in ("date", "boolean")

    def append(self, index: Index, name: str, docs: Iterable[tuple[int, Doc]]) -> None:
        rows: list[int] = []
        raw: list[Any] = []
        for row, doc in docs:
            for v in values(doc, index, name):
                self.take(rows, raw, row, v)
        self.add(rows, raw)

    def take(self, rows: list[int], raw: list[Any], row: int, value: Any) -> None:
        c = comparable(value, self.kind)
        if c is not None:
            rows.append(row)
            raw.append(float(c) if self.numeric else c)

    def add(self, rows: list[int], raw: list[Any]) -> None:
        """Values (``raw``, comparable form) of ``rows`` (ascending from the column's last row, mostly)."""
        if not rows:
            return
        if self.numeric:
            new = np.asarray(raw, dtype=np.float64)
        else:
            codes = self.codes
            new = np.fromiter((codes.setdefault(v, len(codes)) for v in raw), np.int32, len(raw))
            self.vocab += list(codes)[len(self.vocab):]
        added = np.asarray(rows, dtype=np.int32)
        in_order = not len(self.rows) or added[0] >= self.rows[-1]
        self.rows = np.concatenate([self.rows, added])
        self.vals = np.concatenate([self.vals, new])
        if not in_order or np.any(np.diff(added) < 0):  # (a replaced document kept for searches comes last)
            order = np.argsort(self.rows, kind="stable")
            self.rows, self.vals = self.rows[order], self.vals[order]

    @property
    def too_big(self) -> bool:
        return len(self.vocab) > MAX_VOCAB


def empty(kind: str) -> Column:
    return Column(kind, np.empty(0, dtype=np.int32),
                  np.empty(0, dtype=np.float64 if kind in NUMERIC or kind in ("date", "boolean") else np.int32))


@dataclass
class DocValues:
    columns: dict[str, Column] = field(default_factory=dict)
    unkept: set[str] = field(default_factory=set)  # fields whose column is built per query (too many values)


def aggregatable(index: Index) -> dict[str, str]:
    return {name: kind for name, kind in index.types.items() if kind not in NOT_COLUMNS}


def extend(index: Index, docs: list[Doc], first_row: int) -> None:
    """Refresh: the rows from ``first_row`` (``docs``) added to every kept column; columns for new fields."""
    dv = doc_values(index)
    for name, kind in aggregatable(index).items():
        if name not in dv.unkept and name not in dv.columns:  # a new field: rows refreshed before had none
            dv.columns[name] = empty(kind)
    # one pass over each document's fields: a field feeds its column and its .keyword sub-field's (as values() reads)
    readers: dict[str, list[tuple[str, bool]]] = {}
    for name in dv.columns:
        readers.setdefault(name, []).append((name, False))
        if name.endswith(".keyword"):
            readers.setdefault(name[: -len(".keyword")], []).append((name, True))
    taken: dict[str, tuple[list[int], list[Any]]] = {name: ([], []) for name in dv.columns}
    for row, doc in enumerate(docs, first_row):
        fields = doc.fields
        for path, found in fields.items():
            for name, from_base in readers.get(path, ()):
                if from_base and name in fields:
                    continue  # a document's own "x.keyword" field is what x.keyword reads
                col, (rows, raw) = dv.columns[name], taken[name]
                for v in found if isinstance(found, list) else (found,):
                    col.take(rows, raw, row, str(v) if from_base else v)
    for name, (rows, raw) in taken.items():
        column = dv.columns[name]
        column.add(rows, raw)
        if column.too_big:
            del dv.columns[name]
            dv.unkept.add(name)


def rebuild(index: Index) -> None:
    """Every column read again from the sources on disk (at start, or after a mapping change)."""
    dv = index.doc_values = DocValues()
    kinds = aggregatable(index)
    for name, kind in kinds.items():
        dv.columns[name] = empty(kind)
    batch: list[tuple[int, Doc]] = []
    for item in index.scan():
        batch.append(item)
        if len(batch) >= 5000:
            _append_sorted(index, dv, batch)
            batch = []
    _append_sorted(index, dv, batch)


def _append_sorted(index: Index, dv: DocValues, batch: list[tuple[int, Doc]]) -> None:
    batch.sort(key=lambda item: item[0])
    for name in list(dv.columns):
        column = dv.columns[name]
        column.append(index, name, batch)
        if column.too_big:
            del dv.columns[name]
            dv.unkept.add(name)


def doc_values(index: Index) -> DocValues:
    if index.doc_values is None:
        index.doc_values = DocValues()
    dv: DocValues = index.doc_values
    return dv


def column(index: Index, name: str) -> Column:
    """The field's column: kept, or built from the sources for this query (a field with too many values)."""
    dv = doc_values(index)
    found = dv.columns.get(name)
    if found is not None:
        return found
    kind = index.types.get(name) or "keyword"
    built = empty(kind)
    built.append(index, name, sorted(index.scan(), key=lambda item: item[0]))
    return built


def has_column(index: Index, name: str) -> bool:
    """Whether the field's column is kept (cheap to read)."""
    return name in doc_values(index).columns


def dense(index: Index, name: str, order: str = "asc") -> tuple[Column, np.ndarray]:
    """One value per row (the smallest for ``asc``, the largest for ``desc``; NaN or -1 where none): for sorts."""
    col = column(index, name)
    n = len(index.seqs)
    if col.numeric:
        out = np.full(n, np.nan)
        vals = col.vals
        by_rank = None
    else:  # codes ranked by their value, so that min/max follow the values' order; the codes given back
        by_rank = np.argsort(np.asarray(col.vocab, dtype=object), kind="stable")
        ranks = np.empty(len(col.vocab), dtype=np.int64)
        ranks[by_rank] = np.arange(len(col.vocab))
        out = np.full(n, np.nan)
        vals = ranks[col.vals].astype(np.float64) if len(col.vals) else np.empty(0)
    if len(vals):
        (np.fmin if order == "asc" else np.fmax).at(out, col.rows, vals)
    if by_rank is not None:
        found = ~np.isnan(out)
        out[found] = by_rank[out[found].astype(np.int64)]
    return col, out
