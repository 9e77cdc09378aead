"""``_bulk``: NDJSON ``index``/``create``/``delete``/``update`` actions, written in one transaction; the answer
lists every item in request order with its status, and ``errors`` says whether any failed."""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import ApiError
from . import errors, mapping
from .errors import es_error, illegal_argument
from .fields import NUMERIC
from .store import Doc, Index, Store

ACTIONS = ("create", "delete", "index", "update")
CHECKED = (*NUMERIC, "date", "boolean")
COUNTER = itertools.count()
NODE = os.urandom(6)
META = {"_index", "_id", "routing", "if_seq_no", "if_primary_term", "version", "version_type", "pipeline",
        "require_alias", "dynamic_templates", "retry_on_conflict", "_source", "op_type", "list_executed_pipelines",
        "require_data_stream"}


@dataclass
class BulkResult:
    body: dict[str, Any]
    indices: list[Index] = field(default_factory=list)


def parse_lines(raw: bytes) -> list[Any]:
    if raw and not raw.endswith(b"\n"):
        raise illegal_argument("The bulk request must be terminated by a newline [\\n]")
    out = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line), line))
        except ValueError:
            out.append((n, ValueError(line[:64].decode(errors="replace")), line))
    return out


def new_id() -> str:
    """An id as Elasticsearch generates them: 20 URL-safe base64 characters of a time, a counter and this node's
    random bytes. Like Elasticsearch's, consecutive ids share their start, so that the index of ids on disk grows
    at one end instead of being written all over (a random id costs a page write per document)."""
    ms = int(time.time() * 1000)
    return base64.urlsafe_b64encode(ms.to_bytes(6, "big") + (next(COUNTER) & 0xFFFFFF).to_bytes(3, "big")
                                    + NODE).decode()


def check_types(index: Index, source: dict[str, Any], doc_id: str) -> dict[str, list[Any]]:
    """A value its field's mapped type cannot take is refused, as Lucene's field mappers do; the flattened
    source."""
    flat = mapping.flatten(source)
    for path, vals in flat.items():
        kind = index.types.get(path)
        if kind not in CHECKED:
            continue
        for v in vals:
            bad = (kind in NUMERIC and (isinstance(v, bool) or not _number(v))) or \
                  (kind == "date" and mapping.parse_date(v) is None) or \
                  (kind == "boolean" and v not in (True, False, "true", "false", ""))
            if bad:
                raise es_error(400, "document_parsing_exception",
                               f"[1:1] failed to parse field [{path}] of type [{kind}] in document with id "
                               f"'{doc_id}'. Preview of field's value: '{v}'")
    return flat


def _number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def bulk(store: Store, raw: bytes, default_index: str | None, params: Mapping[str, str]) -> BulkResult:
    lines = parse_lines(raw)
    items: list[dict[str, Any]] = []
    ops: list[tuple[Any, ...]] = []  # (index, id, source or None, [its JSON text])
    slots: list[tuple[int, str, Index, str, bool]] = []  # item position, action, index, id, existed
    batch: dict[tuple[str, str], Doc | bool | None] = {}
    touched: dict[str, Index] = {}
    pos = 0
    while pos < len(lines):
        n, action, _ = lines[pos]
        pos += 1
        if isinstance(action, ValueError) or not isinstance(action, dict) or len(action) != 1:
            raise illegal_argument(f"Malformed action/metadata line [{n}], expected START_OBJECT or END_OBJECT but "
                                   f"found [VALUE_STRING]" if not isinstance(action, dict) else
                                   f"Malformed action/metadata line [{n}], expected a simple value for field "
                                   f"[{next(iter(action), '')}] but found [START_OBJECT]")
        (op, meta), = action.items()
        if op not in ACTIONS:
            raise illegal_argument(f"Malformed action/metadata line [{n}], expected one of [create, delete, index, "
                                   f"update] but found [{op}]")
        for key in meta:
            if key not in META:
                raise illegal_argument(f"Action/metadata line [{n}] contains an unknown parameter [{key}]")
        source: Any = None
        text = b""
        if op != "delete":
            if pos >= len(lines):
                raise illegal_argument("The bulk request must be terminated by a newline [\\n]")
            _, source, text = lines[pos]
            pos += 1
        name = meta.get("_index", default_index)
        if not name:
            raise es_error(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
        doc_id = str(meta["_id"]) if meta.get("_id") is not None else None
        try:
            items.append(one(store, op, name, doc_id, source, meta, batch, ops, slots, len(items)))
            if op in ("index", "create"):  # the source stored as the client sent it
                ops[-1] = (*ops[-1][:3], text.decode(), *ops[-1][4:])
            touched[name] = store.indices[name]
        except ApiError as err:
            err_body = errors.body(err)["error"]
            err_body.pop("root_cause", None)
            items.append({op: {"_index": name, "_id": doc_id, "status": err.status, "error": err_body}})
    docs = store.write(ops)
    for (slot, op, index, doc_id, existed), doc in zip(slots, docs, strict=True):
        if doc is None:
            seq = store.seq
            store.seq += 1
            items[slot] = {op: {"_index": index.name, "_id": doc_id, "_version": 1, "result": "deleted",
                                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq,
                                "_primary_term": 1, "status": 200}}
            continue
        items[slot] = {op: {"_index": index.name, "_id": doc_id, "_version": doc.version,
                            "result": "updated" if existed else "created",
                            "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": doc.seq_no,
                            "_primary_term": 1, "status": 200 if existed else 201}}
    return BulkResult({"errors": any("error" in next(iter(i.values())) for i in items), "took": 0,
                       "items": items}, list(touched.values()))


def one(store: Store, op: str, name: str, doc_id: str | None, source: Any, meta: dict[str, Any],
        batch: dict[tuple[str, str], Any], ops: list[tuple[Any, ...]],
        slots: list[tuple[int, str, Index, str, bool]], slot: int) -> dict[str, Any]:
    """Check one action and queue its write; a placeholder item until the batch is written."""
    if op in ("delete", "update") and doc_id is None:
        raise es_error(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
    if isinstance(source, ValueError) or (op != "delete" and not isinstance(source, dict)):
        raise es_error(400, "document_parsing_exception", "[1:1] failed to parse: source is not a JSON object")
    index = store.index(name, auto_create=op != "delete")
    generated = doc_id is None
    doc_id = doc_id or new_id()
    key = (name, doc_id)
    current = batch[key] if key in batch else None if generated else index.get(doc_id)
    if op == "create" and current:
        raise es_error(409, "version_conflict_engine_exception",
                       f"[{doc_id}]: version conflict, document already exists (current version "
                       f"[{current.version if isinstance(current, Doc) else 1}])", index_uuid=index.uuid, shard="0",
                       index=name)
    if op == "delete":
        if not current:
            return {op: {"_index": name, "_id": doc_id, "_version": 1, "result": "not_found",
                         "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": store.seq,
                         "_primary_term": 1, "status": 404}}
        batch[key] = None
        ops.append((index, doc_id, None))
        slots.append((slot, op, index, doc_id, True))
        return {}
    if op == "update":
        if "script" in source:
            raise illegal_argument("scripted updates are not supported by the labkit simulator")
        if not current:
            if "upsert" in source:
                body = source["upsert"]
            elif source.get("doc_as_upsert"):
                body = source.get("doc", {})
            else:
                raise es_error(404, "document_missing_exception", f"[{doc_id}]: document missing",
                               index_uuid=index.uuid, shard="0", index=name)
        else:
            base = current.source if isinstance(current, Doc) else {}
            body = {**json.loads(json.dumps(base)), **source.get("doc", {})}
        source = body
    flat = check_types(index, source, doc_id)
    batch[key] = True
    ops.append((index, doc_id, source, None, flat, generated))
    slots.append((slot, op, index, doc_id, bool(current)))
    return {}
