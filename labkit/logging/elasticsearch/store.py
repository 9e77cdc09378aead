"""Indices on disk: one SQLite file (WAL; a write is committed before it is answered, so indices survive a SIGKILL)
and, in memory, each index's documents as searches see them.

As in Elasticsearch, a write is visible to ``GET _doc`` at once (real-time get) but to searches only after the
next refresh: ``refresh()`` runs every ``refresh_interval`` (1 s by default) and on ``_refresh``/``?refresh``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.store import Database
from . import mapping
from .errors import es_error, illegal_argument, index_not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS indices (name TEXT PRIMARY KEY, uuid TEXT, created INTEGER, mappings TEXT,
                                    settings TEXT);
CREATE TABLE IF NOT EXISTS templates (name TEXT PRIMARY KEY, body TEXT);
CREATE TABLE IF NOT EXISTS docs (idx TEXT, id TEXT, seq INTEGER, version INTEGER, source TEXT,
                                 PRIMARY KEY (idx, id)) WITHOUT ROWID;
"""
BAD_NAME = re.compile(r'[\\/*?"<>| ,#:]')


@dataclass(slots=True)
class Doc:
    id: str
    source: dict[str, Any]
    seq_no: int
    version: int
    fields: dict[str, Any] = field(default_factory=dict)  # path -> its value, or its values when several

    def __post_init__(self) -> None:
        if not self.fields:  # (one value held alone: most fields have one, and a list costs memory per document)
            self.fields = {k: v[0] if len(v) == 1 else v for k, v in mapping.flatten(self.source).items()}


@dataclass
class Index:
    name: str
    uuid: str
    created: int
    mappings: dict[str, Any]
    settings: dict[str, Any]
    searchable: dict[str, Doc] = field(default_factory=dict)
    pending: dict[str, Doc | None] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    generation: int = 0  # counts the refreshes that changed what searches see
    rewritten: int = 0  # the last generation that changed or removed documents (not only added new ones)

    def __post_init__(self) -> None:
        self.types = mapping.types(self.mappings.get("properties", {}))

    def get(self, doc_id: str) -> Doc | None:
        """Real-time get: the latest write, refreshed or not."""
        if doc_id in self.pending:
            return self.pending[doc_id]
        return self.searchable.get(doc_id)

    def refresh(self) -> None:
        if self.pending:
            self.generation += 1
            if any(doc is None or doc_id in self.searchable for doc_id, doc in self.pending.items()):
                self.rewritten = self.generation
        for doc_id, doc in self.pending.items():
            if doc is None:
                self.searchable.pop(doc_id, None)
            else:
                self.searchable[doc_id] = doc
        self.pending = {}

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
        for row in self.db.query("SELECT * FROM indices"):
            self.indices[row["name"]] = Index(row["name"], row["uuid"], row["created"], json.loads(row["mappings"]),
                                              json.loads(row["settings"]))
        for row in self.db.query("SELECT * FROM templates"):
            self.templates[row["name"]] = json.loads(row["body"])
        for row in self.db.query("SELECT idx, id, seq, version, source FROM docs ORDER BY seq"):
            index = self.indices.get(row["idx"])
            if index is not None:
                index.searchable[row["id"]] = Doc(row["id"], json.loads(row["source"]), row["seq"], row["version"])
            self.seq = max(self.seq, row["seq"] + 1)

    def close(self) -> None:
        self.db.close()

    def wipe(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM docs")
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
        index = Index(name, uuid.uuid4().hex[:22], int(time.time() * 1000), mappings, settings)
        self.db.execute("INSERT INTO indices VALUES (?, ?, ?, ?, ?)",
                        (name, index.uuid, index.created, json.dumps(mappings), json.dumps(settings)))
        self.indices[name] = index
        return index

    def delete(self, name: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM docs WHERE idx = ?", (name,))
            c.execute("DELETE FROM indices WHERE name = ?", (name,))
        del self.indices[name]

    def put_mapping(self, index: Index, body: dict[str, Any]) -> None:
        index.mappings = merge_mappings(index.mappings, body)
        index.types = mapping.types(index.mappings.get("properties", {}))
        index.generation += 1  # columns read with the old types are stale
        index.rewritten = index.generation
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
    def write(self, ops: list[tuple[Index, str, dict[str, Any] | None]]) -> list[Doc | None]:
        """Index (source) or delete (None) documents in one transaction; the new docs (None for deletes)."""
        out: list[Doc | None] = []
        dirty: set[str] = set()
        with self.db.transaction() as c:
            for index, doc_id, source in ops:
                old = index.get(doc_id)
                if source is None:
                    c.execute("DELETE FROM docs WHERE idx = ? AND id = ?", (index.name, doc_id))
                    index.pending[doc_id] = None
                    out.append(None)
                    continue
                doc = Doc(doc_id, source, self.seq, (old.version + 1) if old else 1)
                self.seq += 1
                c.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?)",
                          (index.name, doc_id, doc.seq_no, doc.version, json.dumps(source)))
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
