"""Which refreshed live rows of an index a compiled query matches, and their scores: from doc values when the
query has a vector form for the index (``vectors``), otherwise by reading the documents: only those its prefilter
lets through when there are few, else every document (``Index.scan``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .query import Scorer
from .store import Doc, Index
from .vectors import vector_of

READ_FEW = 0.25  # read the prefiltered documents one by one when they are at most this share of the rows


def match(index: Index, scorer: Scorer, within: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The matching rows (sorted), restricted to the rows ``within`` when given, and their scores."""
    n = len(index.seqs)
    allowed = index.live.copy()
    if within is not None:
        wanted = np.zeros(n, dtype=bool)
        wanted[within] = True
        allowed &= wanted
    scores = vector_of(scorer, index)
    if scores is not None:
        rows = np.flatnonzero(allowed & ~np.isnan(scores))
        return rows, scores[rows]
    prefilter = getattr(scorer, "prefilter", None)
    mask = prefilter(index) if prefilter is not None else None
    if mask is not None:
        allowed &= mask
    candidates = np.flatnonzero(allowed)
    if (mask is not None or within is not None) and len(candidates) <= READ_FEW * max(1, index.doc_count):
        return keep(index, scorer, zip(candidates.tolist(), index.docs_at(candidates), strict=True))
    return keep(index, scorer, ((row, doc) for row, doc in index.scan() if allowed[row]))


def keep(index: Index, scorer: Scorer, docs: Iterable[tuple[int, Doc]]) -> tuple[np.ndarray, np.ndarray]:
    rows: list[int] = []
    scores: list[float] = []
    for row, doc in docs:
        s = scorer(doc, index)
        if s is not None:
            rows.append(row)
            scores.append(s)
    order = np.argsort(np.asarray(rows, dtype=np.int64), kind="stable")
    return np.asarray(rows, dtype=np.int64)[order], np.asarray(scores, dtype=np.float64)[order]
