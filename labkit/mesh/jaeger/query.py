"""What both query APIs ask of the store, as Jaeger's query service answers it: a trace search (a trace matches
when one of its spans matches every criterion; the most recent traces first, up to the limit) and the dependency
links (one per parent span → child span across the trace, counted per service pair, as Jaeger's memory store)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .adjust import adjusted
from .store import SpanQuery, StoredSpan, TraceStore
from .uimodel import matches_tags


@dataclass(frozen=True)
class TraceSearch:
    spans: SpanQuery
    tags: dict[str, str] = field(default_factory=dict)
    limit: int = 100
    raw: bool = False  # as stored, without Jaeger's adjusters


def get_trace(store: TraceStore, trace_id: str, raw: bool = False) -> list[StoredSpan]:
    """A trace's spans (adjusted unless ``raw``); empty when unknown."""
    return adjusted(store.trace(trace_id), raw)


def find_traces(store: TraceStore, search: TraceSearch) -> list[list[StoredSpan]]:
    """The traces matching ``search``, each as its spans, the latest match first."""
    if not search.tags:
        ids = store.matching_traces(search.spans, search.limit)
    else:
        ids, seen = [], set()
        for span in store.matching_spans(search.spans):
            if 0 < search.limit <= len(ids):
                break
            if span.trace_id not in seen and matches_tags(span, search.tags):
                seen.add(span.trace_id)
                ids.append(span.trace_id)
    return [spans for spans in (get_trace(store, i, search.raw) for i in ids) if spans]


def dependencies(store: TraceStore, start_us: int, end_us: int) -> list[dict[str, object]]:
    """``[{"parent", "child", "callCount"}]`` over the spans that started in [start, end]."""
    by_trace: dict[str, dict[str, tuple[str, str]]] = {}  # trace -> span -> (parent span, service)
    for trace_id, span_id, parent_id, service in store.links_between(start_us, end_us):
        by_trace.setdefault(trace_id, {})[span_id] = (parent_id, service)
    calls: Counter[tuple[str, str]] = Counter()
    for spans in by_trace.values():
        for parent_id, service in spans.values():
            parent = spans.get(parent_id) if parent_id else None
            if parent is not None:
                calls[(parent[1], service)] += 1
    return [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(calls.items())]
