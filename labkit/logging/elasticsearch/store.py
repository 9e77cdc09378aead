"""Indices on disk: one SQLite file (WAL; a write is committed before it is answered, so indices survive a SIGKILL)
holding every document's source, and in memory only what searches need to find documents: per index its refreshed
rows (row → the document's sequence number, and which rows are still live) and its doc values (``docvalues``).

As in Elasticsearch, a write is visible to ``GET _doc`` at once (real-time get) but to searches only after the
next refresh: ``refresh()`` runs every ``refresh_interval`` (1 s by default) and on ``_refresh``/``?refresh``. A
refreshed document replaced or deleted since the last refresh stays visible to searches until the next one, as
Lucene's segments keep it until then (``shadow``). Sources are read from disk for the hits only.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.store import Database
from . import mapping
from .errors import es_error, illegal_argument, index_not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS indices (name TEXT PRIMARY KEY, uuid TEXT, created INTEGER, mappings TEXT,
                                    settings TEXT);
CREATE TABLE IF NOT EXISTS templates (name TEXT PRIMARY KEY, body TEXT);
CREATE TABLE IF NOT EXISTS sources (seq INTEGER PRIMARY KEY, idx TEXT, id TEXT, version INTEGER, source TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS sources_by_id ON sources (idx, id);
"""
# sources are appended in seq order (cheap, and a scan reads them in row order); the (idx, id) index finds a
# document by id. Homes written before kept them in ``docs``, keyed by (idx, id): moved over once at start.
UPGRADE = """
INSERT INTO sources SELECT seq, idx, id, version, source FROM docs ORDER BY seq;
DROP TABLE docs;
"""
BAD_NAME = re.compile(r'[\\/*?"<>| ,#:]')
SCAN_BATCH = 2000  # sources read from disk per query while scanning


@dataclass(slots=True)
class Doc:
    id: str
    source: dict[str, Any]
    seq_no: int
    version: int
    _fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """Path → its value, or its values when several (most fields have one, and a list costs memory)."""
        if self._fields is None:
            self._fields = {k: v[0] if len(v) == 1 else v for k, v in mapping.flatten(self.source).items()}
        return self._fields


def doc_of(row: Any) -> Doc:
    return Doc(row[0], json.loads(row[3]), row[1], row[2])


@dataclass
class Index:
    name: str
    uuid: str
    created: int
    mappings: dict[str, Any]
    settings: dict[str, Any]
    db: Database | None = None  # where the sources are
    pending: dict[str, Doc | None] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    seqs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # row → seq_no, increasing
    live: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))  # row → not replaced nor deleted
    shadow: dict[int, Doc] = field(default_factory=dict)  # seq_no → a refreshed doc replaced since the refresh
    doc_count: int = 0  # live rows
    generation: int = 0  # counts the refreshes that changed what searches see
    doc_values: Any = None  # docvalues.DocValues, kept up to date by refresh()

    def __post_init__(self) -> None:
        self.types = mapping.types(self.mappings.get("properties", {}))

    def get(self, doc_id: str) -> Doc | None:
        """Real-time get: the latest write, refreshed or not."""
        if doc_id in self.pending:
            return self.pending[doc_id]
        assert self.db is not None
        rows = self.db.query("SELECT id, seq, version, source FROM sources WHERE idx = ? AND id = ?",
                             (self.name, doc_id))
        return doc_of(rows[0]) if rows else None

    def row_of(self, seq: int) -> int:
        """The refreshed row of a document's seq_no, or -1."""
        row = int(np.searchsorted(self.seqs, seq))
        return row if row < len(self.seqs) and self.seqs[row] == seq else -1

    def superseded(self, old: Doc) -> None:
        """``old`` is being replaced or deleted: searches keep seeing it until the next refresh."""
        if old.seq_no not in self.shadow and self.row_of(old.seq_no) >= 0:
            self.shadow[old.seq_no] = old

    def refresh(self) -> None:
        if not self.pending:
            return
        from .docvalues import extend  # (doc values read fields with query's helpers, which import this module)

        self.generation += 1
        for seq in self.shadow:
            self.live[self.row_of(seq)] = False
        self.shadow = {}
        new = sorted((d for d in self.pending.values() if d is not None), key=lambda d: d.seq_no)
        self.pending = {}
        first = len(self.seqs)
        self.seqs = np.concatenate([self.seqs, np.fromiter((d.seq_no for d in new), np.int64, len(new))])
        self.live = np.concatenate([self.live, np.ones(len(new), dtype=bool)])
        self.doc_count = int(self.live.sum())
        extend(self, new, first)

    def docs_at(self, rows: np.ndarray) -> list[Doc]:
        """The documents of refreshed rows, in the order given (sources read from disk)."""
        assert self.db is not None
        found: dict[int, Doc] = {}
        seqs = self.seqs[rows].tolist()
        for seq in seqs:
            if seq in self.shadow:
                found[seq] = self.shadow[seq]
        wanted = [s for s in seqs if s not in found]
        for k in range(0, len(wanted), 500):
            chunk = wanted[k:k + 500]
            for row in self.db.query(f"SELECT id, seq, version, source FROM sources WHERE seq IN "
                                     f"({','.join('?' * len(chunk))}) AND +idx = ?", (*chunk, self.name)):
                found[row[1]] = doc_of(row)
        return [found[s] for s in seqs]

    def scan(self) -> Iterator[tuple[int, Doc]]:
        """Every refreshed live row and its document (sources read from disk in batches, in row order)."""
        assert self.db is not None
        shadow = {self.row_of(seq): doc for seq, doc in self.shadow.items()}
        last = -1
        while True:
            batch = self.db.query("SELECT id, seq, version, source FROM sources WHERE seq > ? AND +idx = ? "
                                  "ORDER BY seq LIMIT ?", (last, self.name, SCAN_BATCH))
            if not batch:
                break
            last = batch[-1][1]
            rows = np.searchsorted(self.seqs, np.fromiter((r[1] for r in batch), np.int64, len(batch)))
            for r, raw in zip(rows.tolist(), batch, strict=True):
                if r < len(self.seqs) and self.seqs[r] == raw[1] and self.live[r]:
                    yield r, doc_of(raw)
        yield from sorted(shadow.items(), key=lambda item: item[0])

    @property
    def refresh_interval(self) -> float:
        text = str(self.settings.get("index", {}).get("refresh_interval", "1s"))
        return -1 if text == "-1" else parse_duration(text)


def parse_duration(text: str) -> float:
    """Seconds of an Elasticsearch time value (``1s``, ``500ms``, ``5m``)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)", text.strip())
    if not m:
        raise illegal_argument(f"failed to parse setting [index.refresh_interval] with value [{text}] as a time value")
    return float(m.group(1)) * {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600,
                                "d": 86400}[m.group(2)]


def check_name(name: str) -> None:
    if name != name.lower():
        raise es_error(400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase",
                       index=name, index_uuid="_na_")
    if BAD_NAME.search(name) or name.startswith(("_", "-", "+")) or name in (".", ".."):
        raise es_error(400, "invalid_index_name_exception",
                       f"Invalid index name [{name}], must not contain the following characters "
                       '[\'\\\\\', \'/\', \'*\', \'?\', \'"\', \'<\', \'>\', \'|\', \' \', \',\', \'#\', \':\'] '
                       "or start with '_', '-', '+'", index=name, index_uuid="_na_")


def normalize_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as ``{"index": {...}}`` with string values, as Elasticsearch keeps them (``index.x`` flattened)."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        else:
            flat[path.removeprefix("index.")] = str(value).lower() if isinstance(value, bool) else str(value)

    walk(settings, "")
    for key in flat:
        if key not in ("number_of_shards", "number_of_replicas", "refresh_interval", "codec", "max_result_window",
                       "mapping.total_fields.limit", "lifecycle.name", "lifecycle.rollover_alias", "hidden"):
            raise not_supported_setting(key)
    if "refresh_interval" in flat:
        parse_duration(flat["refresh_interval"]) if flat["refresh_interval"] != "-1" else None
    return {"index": {"number_of_shards": "1", "number_of_replicas": "1", **flat}}


def not_supported_setting(key: str) -> Exception:
    return illegal_argument(f"index setting [index.{key}] is not supported by the labkit simulator")


class Store:
    """Every index and index template of one Elasticsearch node."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, SCHEMA)
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.seq = 0
        from .docvalues import rebuild

        if self.db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'docs'"):
            with self.db.transaction() as c:
                for statement in UPGRADE.strip().split(";\n"):
                    c.execute(statement.rstrip(";"))
        for row in self.db.query("SELECT * FROM indices"):
            index = Index(row["name"], row["uuid"], row["created"], json.loads(row["mappings"]),
                          json.loads(row["settings"]), self.db)
            self.indices[index.name] = index
            index.seqs = np.asarray([r[0] for r in self.db.query("SELECT seq FROM sources WHERE idx = ? ORDER BY seq",
                                                                 (index.name,))], dtype=np.int64)
            index.live = np.ones(len(index.seqs), dtype=bool)
            index.doc_count = len(index.seqs)
            rebuild(index)
        for row in self.db.query("SELECT * FROM templates"):
            self.templates[row["name"]] = json.loads(row["body"])
        self.seq = (self.db.query("SELECT MAX(seq) FROM sources")[0][0] or -1) + 1

    def close(self) -> None:
        self.db.close()

    def wipe(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM sources")
            c.execute("DELETE FROM indices")
            c.execute("DELETE FROM templates")
        self.indices.clear()
        self.templates.clear()

    # -- indices --------------------------------------------------------------------------------------------------
    def create(self, name: str, body: dict[str, Any] | None = None) -> Index:
        check_name(name)
        if name in self.indices:
            raise es_error(400, "resource_already_exists_exception", f"index [{name}/{self.indices[name].uuid}] "
                           "already exists", index=name, index_uuid=self.indices[name].uuid)
        body = body or {}
        unknown = set(body) - {"settings", "mappings", "aliases"}
        if unknown:
            raise es_error(400, "parse_exception", f"unknown key [{sorted(unknown)[0]}] for create index")
        if body.get("aliases"):
            raise illegal_argument("index aliases are not supported by the labkit simulator")
        settings, mappings = {}, {}
        template = self.template_for(name)
        if template:
            settings = template.get("template", {}).get("settings", {})
            mappings = json.loads(json.dumps(template.get("template", {}).get("mappings", {})))
        settings = normalize_settings({**flat_settings(settings), **flat_settings(body.get("settings", {}))})
        mappings = merge_mappings(mappings, body.get("mappings", {}))
        index = Index(name, uuid.uuid4().hex[:22], int(time.time() * 1000), mappings, settings, self.db)
        self.db.execute("INSERT INTO indices VALUES (?, ?, ?, ?, ?)",
                        (name, index.uuid, index.created, json.dumps(mappings), json.dumps(settings)))
        self.indices[name] = index
        return index

    def delete(self, name: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM sources WHERE idx = ?", (name,))
            c.execute("DELETE FROM indices WHERE name = ?", (name,))
        del self.indices[name]

    def put_mapping(self, index: Index, body: dict[str, Any]) -> None:
        from .docvalues import rebuild

        index.mappings = merge_mappings(index.mappings, body)
        index.types = mapping.types(index.mappings.get("properties", {}))
        index.generation += 1
        rebuild(index)  # columns read with the old types are stale
        self.db.execute("UPDATE indices SET mappings = ? WHERE name = ?", (json.dumps(index.mappings), index.name))

    def resolve(self, expression: str, ignore_unavailable: bool = False, allow_no_indices: bool = True) -> list[Index]:
        """The indices an index expression names (``a,b``, ``logs-*``, ``_all``, ``-excluded``)."""
        names: list[str] = []
        for part in (expression or "_all").split(","):
            part = part.strip()
            if part in ("_all", "*"):
                names += [n for n in self.indices if not n.startswith(".")]
            elif part.startswith("-") and names:
                names = [n for n in names if not fnmatch.fnmatchcase(n, part[1:])]
            elif "*" in part or "?" in part:
                found = [n for n in self.indices if fnmatch.fnmatchcase(n, part)]
                if not found and not allow_no_indices:
                    raise index_not_found(part)
                names += found
            elif part in self.indices:
                names.append(part)
            elif not ignore_unavailable:
                raise index_not_found(part)
        return [self.indices[n] for n in dict.fromkeys(names)]

    def index(self, name: str, auto_create: bool = True) -> Index:
        if name not in self.indices:
            if not auto_create:
                raise index_not_found(name)
            self.create(name)
        return self.indices[name]

    def size_of(self, index: Index) -> int:
        """The bytes of the index's sources on disk."""
        return int(self.db.query("SELECT COALESCE(SUM(LENGTH(source)), 0) FROM sources WHERE idx = ?",
                                 (index.name,))[0][0])

    # -- templates ------------------------------------------------------------------------------------------------
    def put_template(self, name: str, body: dict[str, Any]) -> None:
        unknown = set(body) - {"index_patterns", "template", "priority", "version", "_meta", "composed_of",
                               "data_stream", "allow_auto_create"}
        if unknown:
            raise illegal_argument(f"unknown field [{sorted(unknown)[0]}]")
        if body.get("composed_of") or body.get("data_stream") is not None:
            raise illegal_argument("component templates and data streams are not supported by the labkit simulator")
        if not body.get("index_patterns"):
            raise es_error(400, "action_request_validation_exception",
                           "Validation Failed: 1: index patterns are missing;")
        patterns = body["index_patterns"]
        body["index_patterns"] = [patterns] if isinstance(patterns, str) else patterns
        normalize_settings(flat_settings(body.get("template", {}).get("settings", {})))
        self.db.execute("INSERT OR REPLACE INTO templates VALUES (?, ?)", (name, json.dumps(body)))
        self.templates[name] = body

    def delete_template(self, name: str) -> None:
        self.db.execute("DELETE FROM templates WHERE name = ?", (name,))
        del self.templates[name]

    def template_for(self, index: str) -> dict[str, Any] | None:
        matching = [t for t in self.templates.values()
                    if any(fnmatch.fnmatchcase(index, p) for p in t["index_patterns"])]
        return max(matching, key=lambda t: t.get("priority", 0), default=None)

    # -- documents ------------------------------------------------------------------------------------------------
    def write(self, ops: list[tuple[Any, ...]]) -> list[Doc | None]:
        """Index (source) or delete (None) documents in one transaction; the new docs (None for deletes). An op is
        ``(index, id, source)``, optionally followed by the source's JSON text as the client sent it (stored as
        is: no re-encoding), its flattened fields (``mapping.flatten``), and whether the id was generated (no
        earlier version to look up)."""
        out: list[Doc | None] = []
        dirty: set[str] = set()
        with self.db.transaction() as c:
            for index, doc_id, source, *extra in ops:
                text, flat, generated = (*extra, None, None, False)[:3]
                old = None if generated else index.get(doc_id)
                if old is not None:
                    index.superseded(old)
                if source is None:
                    c.execute("DELETE FROM sources WHERE idx = ? AND id = ?", (index.name, doc_id))
                    index.pending[doc_id] = None
                    out.append(None)
                    continue
                doc = Doc(doc_id, source, self.seq, (old.version + 1) if old else 1,
                          None if flat is None else {k: v[0] if len(v) == 1 else v for k, v in flat.items()})
                self.seq += 1
                c.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                          (doc.seq_no, index.name, doc_id, doc.version, text or json.dumps(source)))
                index.pending[doc_id] = doc
                if index.mappings.get("dynamic", True) not in (False, "false", "strict") and \
                        mapping.merge_dynamic(index.mappings.setdefault("properties", {}), source,
                                              index.mappings.get("date_detection", True)):
                    dirty.add(index.name)
                out.append(doc)
            for name in dirty:
                index = self.indices[name]
                index.types = mapping.types(index.mappings["properties"])
                c.execute("UPDATE indices SET mappings = ? WHERE name = ?", (json.dumps(index.mappings), name))
        return out

    def refresh(self, indices: list[Index] | None = None) -> None:
        for index in indices if indices is not None else list(self.indices.values()):
            index.refresh()


def flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        else:
            out[path.removeprefix("index.")] = value

    walk(settings, "")
    return out


def merge_mappings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    unknown = set(extra) - {"properties", "dynamic", "date_detection", "_source", "dynamic_templates", "_meta"}
    if unknown:
        raise es_error(400, "mapper_parsing_exception",
                       f"Root mapping definition has unsupported parameters:  [{sorted(unknown)[0]} : "
                       f"{json.dumps(extra[sorted(unknown)[0]])}]")
    if extra.get("dynamic_templates"):
        raise illegal_argument("dynamic_templates are not supported by the labkit simulator")
    out = {**base, **{k: v for k, v in extra.items() if k != "properties"}}
    props = dict(base.get("properties", {}))
    for name, spec in extra.get("properties", {}).items():
        kind = spec.get("type", "object")
        if kind not in ("text", "keyword", "date", "long", "integer", "short", "byte", "double", "float",
                        "half_float", "scaled_float", "boolean", "ip", "object", "match_only_text"):
            raise es_error(400, "mapper_parsing_exception", f"No handler for type [{kind}] declared on field "
                           f"[{name}]")
        old = props.get(name)
        if old and old.get("type") and spec.get("type") and old["type"] != spec["type"]:
            raise illegal_argument(f"mapper [{name}] cannot be changed from type [{old['type']}] to "
                                   f"[{spec['type']}]")
        props[name] = spec
    if props:
        out["properties"] = props
    return out
