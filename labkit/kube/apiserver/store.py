"""Kubernetes objects on disk: one SQLite table, one monotonic resourceVersion, a watch window.

Every write is committed before it is acknowledged and before watchers hear
of it, so a restart loses nothing acknowledged and resourceVersions keep
increasing. Objects are also kept in memory for fast GET and LIST.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.store import Database
from .selectors import Matcher

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
  key TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (key, ns, name)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""
WINDOW = 20_000  # watch events kept; older resourceVersions get 410 Gone


@dataclass
class Event:
    rv: int
    key: str
    type: str  # ADDED MODIFIED DELETED
    obj: dict[str, Any]


@dataclass
class Watcher:
    key: str
    namespace: str
    match: Matcher
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def wants(self, ev: Event) -> bool:
        if ev.key != self.key:
            return False
        ns = ev.obj.get("metadata", {}).get("namespace", "")
        return not self.namespace or ns == self.namespace


class Store:
    """All objects of one cluster, by storage key (group/plural), namespace and name."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        for row in self.db.query("SELECT key, ns, name, body FROM objects"):
            self.objects.setdefault(row["key"], {})[(row["ns"], row["name"])] = json.loads(row["body"])
        rows = self.db.query("SELECT v FROM meta WHERE k = 'rv'")
        self.rv = rows[0]["v"] if rows else 1
        self.events: deque[Event] = deque(maxlen=WINDOW)
        self.watchers: list[Watcher] = []

    @property
    def oldest_watchable(self) -> int:
        """Watches from a resourceVersion below this one get 410 Gone."""
        return self.events[0].rv - 1 if self.events else self.rv

    def get(self, key: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((ns, name))

    def items(self, key: str, ns: str = "") -> Iterator[dict[str, Any]]:
        bucket = self.objects.get(key, {})
        for k in sorted(bucket):
            if not ns or k[0] == ns:
                yield bucket[k]

    def write(self, key: str, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        """Store ``obj`` (kind ADDED/MODIFIED/DELETED) with the next resourceVersion."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        with self.db.transaction() as c:
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            if kind == "DELETED":
                c.execute("DELETE FROM objects WHERE key=? AND ns=? AND name=?", (key, ns, name))
            else:
                c.execute("INSERT OR REPLACE INTO objects (key, ns, name, rv, body) VALUES (?,?,?,?,?)",
                          (key, ns, name, self.rv, json.dumps(obj, separators=(",", ":"))))
            c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?)", (self.rv,))
        bucket = self.objects.setdefault(key, {})
        if kind == "DELETED":
            bucket.pop((ns, name), None)
        else:
            bucket[(ns, name)] = obj
        ev = Event(self.rv, key, kind, obj)
        self.events.append(ev)
        for w in self.watchers:
            if w.wants(ev):
                w.queue.put_nowait(ev)
        return obj

    def since(self, key: str, rv: int) -> list[Event]:
        return [e for e in self.events if e.rv > rv and e.key == key]

    def subscribe(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)

    def close(self) -> None:
        for w in self.watchers:
            w.queue.put_nowait(None)
        self.db.close()
