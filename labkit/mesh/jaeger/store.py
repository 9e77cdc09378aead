"""Spans on disk: one SQLite file (``core.store.Database``, WAL, committed before the receiver answers, so a
SIGKILL loses no acknowledged span), indexed for Jaeger's reads (by trace, by service and start time), and a
retention that drops spans older than a TTL, as Jaeger's Badger storage does (``ttl.spans``, 72 h by default)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.store import Database
from .otlp import SpanDoc

NO_SERVICE = "OTLPResourceNoServiceName"  # the service of a resource without service.name, as Jaeger names it
DEFAULT_RETENTION = 72 * 3600.0
# OTLP's SpanKind numbers → the span kind names Jaeger's APIs use ("" for unspecified)
KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT NOT NULL, service TEXT NOT NULL,
    operation TEXT NOT NULL, kind TEXT NOT NULL, start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_by_service ON spans (service, start_us);
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_us);
CREATE TABLE IF NOT EXISTS operations (
    service TEXT NOT NULL, operation TEXT NOT NULL, kind TEXT NOT NULL, last_us INTEGER NOT NULL,
    PRIMARY KEY (service, operation, kind));
"""


@dataclass(frozen=True)
class StoredSpan:
    """One span as read back: its indexed columns and the OTLP-JSON it arrived as."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    operation: str
    kind: str
    start_us: int
    duration_us: int
    doc: SpanDoc


@dataclass(frozen=True)
class SpanQuery:
    """What a trace search asks of spans (every field optional but the time range): a trace matches when one of
    its spans matches all of them."""

    start_us: int
    end_us: int
    service: str = ""
    operation: str = ""
    min_duration_us: int = 0
    max_duration_us: int = 0


def service_of(resource: dict[str, Any]) -> str:
    for attr in resource.get("attributes", []):
        if attr.get("key") == "service.name":
            return str(attr.get("value", {}).get("stringValue", "")) or NO_SERVICE
    return NO_SERVICE


class TraceStore:
    """The spans of every trace received, with the service/operation index the query APIs list."""

    def __init__(self, path: Path, retention: float = DEFAULT_RETENTION) -> None:
        self.db = Database(path, SCHEMA)
        self.retention = retention
        self._pruned = 0.0
        self.prune()

    def write(self, docs: Iterable[SpanDoc]) -> int:
        """Store spans (a span received twice is kept once); returns how many."""
        rows, ops = [], {}
        for doc in docs:
            span = doc["span"]
            start_ns, end_ns = int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0))
            service, name = service_of(doc["resource"]), span.get("name", "")
            kind = KINDS.get(int(span.get("kind", 0)), "")
            start_us = start_ns // 1000
            rows.append((span["traceId"], span["spanId"], span.get("parentSpanId", ""), service, name, kind,
                         start_us, max(0, end_ns - start_ns) // 1000,
                         json.dumps(doc, separators=(",", ":"))))
            key = (service, name, kind)
            ops[key] = max(ops.get(key, 0), start_us)
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?)", rows)
            c.executemany("INSERT INTO operations VALUES (?,?,?,?) ON CONFLICT (service, operation, kind) "
                          "DO UPDATE SET last_us = max(last_us, excluded.last_us)",
                          [(*k, v) for k, v in ops.items()])
        if time.time() - self._pruned > 60:
            self.prune()
        return len(rows)

    def prune(self) -> int:
        """Drop spans (and operations last seen) before the retention; returns the spans dropped."""
        self._pruned = time.time()
        cutoff = int((time.time() - self.retention) * 1e6)
        with self.db.transaction() as c:
            dropped = c.execute("DELETE FROM spans WHERE start_us < ?", (cutoff,)).rowcount
            c.execute("DELETE FROM operations WHERE last_us < ?", (cutoff,))
        return dropped

    def services(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT DISTINCT service FROM operations ORDER BY service")]

    def operations(self, service: str, kind: str = "") -> list[tuple[str, str]]:
        """(name, span kind) of a service's operations, optionally of one kind."""
        sql, args = "SELECT operation, kind FROM operations WHERE service = ?", [service]
        if kind:
            sql, args = sql + " AND kind = ?", [*args, kind]
        return [(r[0], r[1]) for r in self.db.query(sql + " ORDER BY operation, kind", tuple(args))]

    def trace(self, trace_id: str) -> list[StoredSpan]:
        """A trace's spans by start time; empty when unknown."""
        return list(self._spans("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_us", (trace_id,)))

    def _where(self, q: SpanQuery) -> tuple[str, list[Any]]:
        where, args = ["start_us >= ?", "start_us <= ?"], [q.start_us, q.end_us]
        for column, value in (("service", q.service), ("operation", q.operation)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if q.min_duration_us:
            where.append("duration_us >= ?")
            args.append(q.min_duration_us)
        if q.max_duration_us:
            where.append("duration_us <= ?")
            args.append(q.max_duration_us)
        return " AND ".join(where), args

    def matching_traces(self, q: SpanQuery, limit: int) -> list[str]:
        """The ids of the traces with a span matching ``q``, the latest match first (``limit`` <= 0: all)."""
        where, args = self._where(q)
        sql = f"SELECT trace_id FROM spans WHERE {where} GROUP BY trace_id ORDER BY max(start_us) DESC"
        if limit > 0:
            sql, args = sql + " LIMIT ?", [*args, limit]
        return [r[0] for r in self.db.query(sql, tuple(args))]

    def matching_spans(self, q: SpanQuery, page: int = 500) -> Iterator[StoredSpan]:
        """Spans matching ``q``, the latest first, read a page at a time (a search with tags reads them until it
        has enough traces)."""
        where, args = self._where(q)
        offset = 0
        while True:
            rows = list(self._spans(f"SELECT * FROM spans WHERE {where} ORDER BY start_us DESC LIMIT ? OFFSET ?",
                                    (*args, page, offset)))
            yield from rows
            if len(rows) < page:
                return
            offset += page

    def links_between(self, start_us: int, end_us: int) -> list[tuple[str, str, str, str]]:
        """(trace, span, parent span, service) of every span that started in [start, end]: the dependency links'
        input, without the spans' documents."""
        return [(r[0], r[1], r[2], r[3]) for r in self.db.query(
            "SELECT trace_id, span_id, parent_id, service FROM spans WHERE start_us BETWEEN ? AND ?",
            (start_us, end_us))]

    def _spans(self, sql: str, args: tuple[Any, ...]) -> Iterator[StoredSpan]:
        for r in self.db.query(sql, args):
            yield StoredSpan(r["trace_id"], r["span_id"], r["parent_id"], r["service"], r["operation"], r["kind"],
                             r["start_us"], r["duration_us"], json.loads(r["doc"]))

    def wipe(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM spans")
            c.execute("DELETE FROM operations")

    def close(self) -> None:
        self.db.close()
