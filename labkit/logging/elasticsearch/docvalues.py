"""Doc values: per refreshed state of an index, its documents in row order and, built on first use, one column per
field (every value of every document as a (row, value) pair: numbers and dates as float64, keywords as codes into a
vocabulary), which aggregations read with numpy, as Elasticsearch's aggregations read Lucene's doc values."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .query import NUMERIC, comparable, field_type, values
from .store import Doc, Index


@dataclass
class Column:
    kind: str  # the mapped type ("keyword" for x.keyword sub-fields)
    rows: np.ndarray  # int64: the row of each value
    vals: np.ndarray  # float64 values, or int64 codes into ``vocab``
    vocab: list[Any] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return not self.vocab and self.kind != "keyword"


@dataclass
class DocValues:
    generation: int
    docs: list[Doc]
    columns: dict[str, Column] = field(default_factory=dict)

    def column(self, index: Index, name: str) -> Column:
        if name not in self.columns:
            self.columns[name] = build(index, self.docs, name)
        return self.columns[name]


def doc_values(index: Index) -> DocValues:
    """The index's doc values for its current refreshed state: rebuilt after a refresh that changed or removed
    documents, extended by the new rows when refreshes only added some (as Lucene adds segments)."""
    dv: DocValues | None = getattr(index, "_doc_values", None)
    if dv is not None and dv.generation == index.generation:
        return dv
    if dv is not None and dv.generation >= index.rewritten:
        added = list(itertools.islice(index.searchable.values(), len(dv.docs), None))
        dv = DocValues(index.generation, dv.docs + added,
                       {name: build(index, added, name, len(dv.docs), col) for name, col in dv.columns.items()})
    else:
        dv = DocValues(index.generation, list(index.searchable.values()))
    index._doc_values = dv  # type: ignore[attr-defined]
    return dv


def build(index: Index, docs: list[Doc], name: str, first_row: int = 0, base: Column | None = None) -> Column:
    """The column of ``docs`` (rows from ``first_row``), appended to ``base`` when given."""
    kind = base.kind if base is not None else field_type(index, name) or "keyword"
    rows: list[int] = []
    raw: list[Any] = []
    as_number = kind in NUMERIC or kind in ("date", "boolean")
    for row, doc in enumerate(docs, first_row):
        for v in values(doc, index, name):
            c = comparable(v, kind)
            if c is None:
                continue
            rows.append(row)
            raw.append(float(c) if as_number else c)
    new_rows = np.asarray(rows, dtype=np.int64)
    if as_number:
        new_vals = np.asarray(raw, dtype=np.float64)
        if base is None:
            return Column(kind, new_rows, new_vals)
        return Column(kind, np.concatenate([base.rows, new_rows]), np.concatenate([base.vals, new_vals]))
    vocab = list(base.vocab) if base is not None else []
    codes = {v: i for i, v in enumerate(vocab)}
    coded = np.asarray([codes.setdefault(v, len(codes)) for v in raw], dtype=np.int64)
    vocab += list(codes)[len(vocab):]
    if base is None:
        return Column(kind, new_rows, coded, vocab)
    return Column(kind, np.concatenate([base.rows, new_rows]), np.concatenate([base.vals, coded]), vocab)
