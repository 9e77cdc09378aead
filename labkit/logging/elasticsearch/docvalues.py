"""Doc values: per refreshed state of an index, its documents in row order and, built on first use, one column per
field (every value of every document as a (row, value) pair: numbers and dates as float64, keywords as codes into a
vocabulary), which aggregations read with numpy, as Elasticsearch's aggregations read Lucene's doc values."""

from __future__ import annotations

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
    """The index's doc values for its current refreshed state (rebuilt after a refresh that changed something)."""
    dv: DocValues | None = getattr(index, "_doc_values", None)
    if dv is None or dv.generation != index.generation:
        dv = DocValues(index.generation, list(index.searchable.values()))
        index._doc_values = dv  # type: ignore[attr-defined]
    return dv


def build(index: Index, docs: list[Doc], name: str) -> Column:
    kind = field_type(index, name) or "keyword"
    rows: list[int] = []
    raw: list[Any] = []
    as_number = kind in NUMERIC or kind in ("date", "boolean")
    for row, doc in enumerate(docs):
        for v in values(doc, index, name):
            c = comparable(v, kind)
            if c is None:
                continue
            rows.append(row)
            raw.append(float(c) if as_number else c)
    if as_number:
        return Column(kind, np.asarray(rows, dtype=np.int64), np.asarray(raw, dtype=np.float64))
    codes: dict[Any, int] = {}
    coded = [codes.setdefault(v, len(codes)) for v in raw]
    return Column(kind, np.asarray(rows, dtype=np.int64), np.asarray(coded, dtype=np.int64), list(codes))
