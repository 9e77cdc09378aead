"""The REST routes, as ``elasticsearch-py`` 8/9 and Kibana call them.

Every answer carries ``X-Elastic-Product: Elasticsearch`` (the official clients refuse a server without it) and,
when the client asked with ``application/vnd.elasticsearch+json; compatible-with=N``, that content type back.
A query parameter a route does not take is refused as Elasticsearch does (``contains unrecognized parameter``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from .bulk import bulk
from .errors import es_error, illegal_argument, index_not_found, parsing
from .search import count, search, shards
from .store import Doc, Index, Store

VERSION = {"number": "9.1.5", "build_flavor": "default", "build_type": "labkit", "build_hash": "labkit",
           "build_date": "2025-10-02T22:07:12.966975992Z", "build_snapshot": False, "lucene_version": "10.2.2",
           "minimum_wire_compatibility_version": "8.19.0", "minimum_index_compatibility_version": "8.0.0"}
COMPATIBLE = re.compile(r"compatible-with\s*=\s*(\d+)")
COMMON = {"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"}
COMPAT = web.AppKey("compat", dict)
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(request: web.Request, body: Any, status: int = 200) -> web.Response:
    if "filter_path" in request.query:
        body = filter_path(body, request.query["filter_path"].split(","))
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def filter_path(body: Any, paths: list[str]) -> Any:
    """``filter_path``: keep only the dotted paths named (``*`` a level, ``**`` any levels)."""
    def keep(obj: Any, parts: list[str]) -> Any:
        if not parts:
            return obj
        if isinstance(obj, list):
            kept = [k for x in obj if (k := keep(x, parts)) is not None]
            return kept or None
        if not isinstance(obj, dict):
            return None
        head, rest = parts[0], parts[1:]
        out = {}
        for k, v in obj.items():
            if head == "**":
                sub = keep(v, rest) if rest else v
                sub = sub if sub is not None else keep(v, parts)
            elif re.fullmatch(head.replace("*", ".*"), k):
                sub = keep(v, rest)
            else:
                continue
            if sub is not None:
                out[k] = sub
        return out or None
    merged: dict[str, Any] = {}
    for p in paths:
        part = keep(body, p.split("."))
        if isinstance(part, dict):
            deep_merge(merged, part)
    return merged


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            deep_merge(a[k], v)
        else:
            a[k] = v


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The product header on every answer; the compatible-with type echoed."""
    response.headers["X-Elastic-Product"] = "Elasticsearch"
    m = COMPATIBLE.search(request.headers.get("Accept", ""))
    ctype = response.headers.get("Content-Type", "")
    if m and ctype.startswith("application/json"):
        response.headers["Content-Type"] = f"application/vnd.elasticsearch+json;compatible-with={m.group(1)}"


def check_media(request: web.Request) -> None:
    accept, ctype = request.headers.get("Accept", ""), request.headers.get("Content-Type", "")
    versions = {m.group(1) for h in (accept, ctype) if (m := COMPATIBLE.search(h))}
    if any(v not in ("8", "9") for v in versions) or (len(versions) > 1):
        raise es_error(400, "media_type_header_exception", "Invalid media-type value on headers [Accept, "
                       "Content-Type]", caused_by={"type": "status_exception", "reason": "A compatible version is "
                       f"required on both Content-Type and Accept headers if either one has requested a compatible "
                       f"version and the compatible versions must match. Accept={accept or 'null'}, "
                       f"Content-Type={ctype or 'null'}"})


async def read_json(request: web.Request, required: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if "source" in request.query:
            raw = request.query["source"].encode()
        elif required:
            raise es_error(400, "parse_exception", "request body is required")
        else:
            return {}
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise es_error(400, "x_content_parse_exception", f"[1:{getattr(err, 'colno', 1)}] Unexpected character: "
                       f"{err}") from None
    if not isinstance(body, dict):
        raise parsing("request body or source parameter is required" if body is None
                      else "Expected [START_OBJECT] but found [START_ARRAY]")
    return body


class ElasticsearchApi:
    """The routes over a ``Store``; ``cluster_name`` names the node's cluster."""

    def __init__(self, store: Store, cluster_name: str = "labkit") -> None:
        self.store, self.cluster_name = store, cluster_name
        self.node_id = uuid.uuid5(uuid.NAMESPACE_URL, cluster_name).hex[:22]
        self._refreshed = asyncio.Event()

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(on_prepare)
        r = self.route
        r(app, "GET", "/", self.info, set())
        r(app, "HEAD", "/", self.ping, set())
        r(app, "GET", "/_cluster/health", self.health, {"wait_for_status", "timeout", "level", "local",
                                                         "wait_for_no_relocating_shards", "master_timeout",
                                                         "wait_for_active_shards", "wait_for_nodes"})
        r(app, "GET", "/_cluster/health/{index}", self.health, {"wait_for_status", "timeout", "level", "local"})
        r(app, "GET", "/_cat/indices", self.cat_indices, {"format", "h", "s", "v", "bytes", "health", "pri",
                                                           "expand_wildcards", "help", "time"})
        r(app, "GET", "/_cat/indices/{index}", self.cat_indices, {"format", "h", "s", "v", "bytes", "health",
                                                                   "expand_wildcards", "pri", "help", "time"})
        r(app, "GET", "/_cat/health", self.cat_health, {"format", "h", "v", "ts"})
        for m in ("PUT", "GET", "HEAD", "DELETE"):
            r(app, m, "/_index_template/{name}", self.template, {"create", "master_timeout", "cause",
                                                                   "flat_settings", "local"})
        r(app, "GET", "/_index_template", self.template, {"flat_settings", "local"})
        for m in ("POST", "PUT"):
            r(app, m, "/_bulk", self.bulk, BULK_PARAMS)
            r(app, m, "/{index}/_bulk", self.bulk, BULK_PARAMS)
        for m in ("GET", "POST"):
            r(app, m, "/_search", self.search, SEARCH_PARAMS)
            r(app, m, "/{index}/_search", self.search, SEARCH_PARAMS)
            r(app, m, "/_count", self.count, COUNT_PARAMS)
            r(app, m, "/{index}/_count", self.count, COUNT_PARAMS)
            r(app, m, "/_refresh", self.refresh, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})
            r(app, m, "/{index}/_refresh", self.refresh, {"ignore_unavailable", "allow_no_indices",
                                                           "expand_wildcards"})
        r(app, "GET", "/_mapping", self.get_mapping, {"ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                                       "local", "master_timeout"})
        r(app, "GET", "/{index}/_mapping", self.get_mapping, {"ignore_unavailable", "allow_no_indices",
                                                               "expand_wildcards", "local", "master_timeout"})
        for m in ("PUT", "POST"):
            r(app, m, "/{index}/_mapping", self.put_mapping, {"timeout", "master_timeout", "write_index_only"})
        r(app, "GET", "/{index}/_settings", self.get_settings, {"flat_settings", "include_defaults", "local"})
        for m in ("PUT", "POST"):
            r(app, m, "/{index}/_doc/{id}", self.put_doc, DOC_PARAMS)
            r(app, m, "/{index}/_create/{id}", self.put_doc, DOC_PARAMS)
        r(app, "POST", "/{index}/_doc", self.put_doc, DOC_PARAMS)
        for m in ("GET", "HEAD"):
            r(app, m, "/{index}/_doc/{id}", self.get_doc, GET_PARAMS)
            r(app, m, "/{index}/_source/{id}", self.get_doc, GET_PARAMS)
        r(app, "DELETE", "/{index}/_doc/{id}", self.delete_doc, {"refresh", "routing", "timeout", "version",
                                                                  "version_type", "if_seq_no", "if_primary_term",
                                                                  "wait_for_active_shards"})
        r(app, "POST", "/{index}/_update/{id}", self.update_doc, {"refresh", "routing", "timeout",
                                                                   "retry_on_conflict", "_source", "if_seq_no",
                                                                   "if_primary_term", "wait_for_active_shards"})
        r(app, "PUT", "/{index}", self.create_index, {"timeout", "master_timeout", "wait_for_active_shards"})
        r(app, "DELETE", "/{index}", self.delete_index, {"timeout", "master_timeout", "ignore_unavailable",
                                                         "allow_no_indices", "expand_wildcards"})
        for m in ("GET", "HEAD"):
            r(app, m, "/{index}", self.get_index, {"ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                                   "flat_settings", "include_defaults", "local", "features"})

    @staticmethod
    def route(app: web.Application, method: str, path: str, handler: Route, params: set[str]) -> None:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            check_media(request)
            for name in request.query:
                if name not in params and name not in COMMON:
                    raise illegal_argument(f"request [{request.path}] contains unrecognized parameter: [{name}]")
            return await handler(request)
        app.router.add_route(method, path, wrapped)

    # -- cluster ------------------------------------------------------------------------------------------------
    async def info(self, request: web.Request) -> web.Response:
        return reply(request, {"name": "labkit-es-0", "cluster_name": self.cluster_name, "cluster_uuid": self.node_id,
                               "version": VERSION, "tagline": "You Know, for Search"})

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    def status(self, indices: list[Index]) -> str:
        return "yellow" if any(i.settings["index"].get("number_of_replicas", "1") != "0" for i in indices) \
            else "green"

    async def health(self, request: web.Request) -> web.Response:
        indices = self.store.resolve(request.match_info["index"]) if "index" in request.match_info \
            else list(self.store.indices.values())
        status = self.status(indices)
        wanted = request.query.get("wait_for_status")
        order = {"green": 0, "yellow": 1, "red": 2}
        if wanted and wanted not in order:
            raise illegal_argument(f"unknown cluster health status [{wanted}]")
        unassigned = sum(i.settings["index"].get("number_of_replicas", "1") != "0" for i in indices)
        body = {"cluster_name": self.cluster_name, "status": status,
                "timed_out": bool(wanted and order[status] > order[wanted]), "number_of_nodes": 1,
                "number_of_data_nodes": 1, "active_primary_shards": len(indices), "active_shards": len(indices),
                "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": unassigned,
                "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0 * len(indices) / max(1, len(indices) + unassigned)}
        return reply(request, body, 408 if body["timed_out"] else 200)

    async def cat_indices(self, request: web.Request) -> web.Response:
        indices = self.store.resolve(request.match_info.get("index", "*"))
        rows = []
        for i in indices:
            docs = i.doc_count
            size = self.store.size_of(i)
            rows.append({"health": self.status([i]), "status": "open", "index": i.name, "uuid": i.uuid,
                         "pri": i.settings["index"].get("number_of_shards", "1"),
                         "rep": i.settings["index"].get("number_of_replicas", "1"), "docs.count": str(docs),
                         "docs.deleted": "0", "store.size": human_bytes(size, request.query.get("bytes")),
                         "pri.store.size": human_bytes(size, request.query.get("bytes")),
                         "dataset.size": human_bytes(size, request.query.get("bytes"))})
        return self.cat(request, rows)

    async def cat_health(self, request: web.Request) -> web.Response:
        indices = list(self.store.indices.values())
        now = int(time.time())
        return self.cat(request, [{"epoch": str(now), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
                                   "cluster": self.cluster_name, "status": self.status(indices),
                                   "node.total": "1", "node.data": "1", "shards": str(len(indices)),
                                   "pri": str(len(indices)), "relo": "0", "init": "0", "unassign": "0",
                                   "unassign.pri": "0", "pending_tasks": "0", "max_task_wait_time": "-",
                                   "active_shards_percent": "100.0%"}])

    @staticmethod
    def cat(request: web.Request, rows: list[dict[str, str]]) -> web.Response:
        """A ``_cat`` answer: JSON rows of strings (``format=json``) or the aligned text table; ``h`` and ``s``."""
        columns = list(rows[0]) if rows else []
        if "h" in request.query:
            columns = request.query["h"].split(",")
        for key in reversed(request.query.get("s", "").split(",") if request.query.get("s") else []):
            name, _, order = key.partition(":")
            rows.sort(key=lambda r, n=name: num_or_text(r.get(n, "")), reverse=order == "desc")
        rows = [{c: r.get(c) for c in columns} for r in rows]
        if request.query.get("format") == "json":
            return reply(request, rows)
        table = [columns] if "v" in request.query else []
        table += [[str(r[c]) for c in columns] for r in rows]
        widths = [max(len(row[k]) for row in table) for k in range(len(columns))] if table else []
        text = "".join(" ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
                       for row in table)
        return web.Response(text=text, content_type="text/plain")

    # -- indices ------------------------------------------------------------------------------------------------
    async def create_index(self, request: web.Request) -> web.Response:
        name = request.match_info["index"]
        self.store.create(name, await read_json(request))
        return reply(request, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    async def delete_index(self, request: web.Request) -> web.Response:
        for index in self.store.resolve(request.match_info["index"],
                                        request.query.get("ignore_unavailable") == "true"):
            self.store.delete(index.name)
        return reply(request, {"acknowledged": True})

    async def get_index(self, request: web.Request) -> web.StreamResponse:
        try:
            indices = self.store.resolve(request.match_info["index"],
                                         request.query.get("ignore_unavailable") == "true")
        except ApiError:
            if request.method == "HEAD":
                return web.Response(status=404)
            raise
        if request.method == "HEAD":
            return web.Response(status=200 if indices else 404)
        return reply(request, {i.name: {"aliases": {}, "mappings": i.mappings, "settings": self.settings_of(i)}
                               for i in indices})

    @staticmethod
    def settings_of(index: Index) -> dict[str, Any]:
        return {"index": {**index.settings["index"], "uuid": index.uuid, "provided_name": index.name,
                          "creation_date": str(index.created), "version": {"created": "9033000"}}}

    async def get_settings(self, request: web.Request) -> web.Response:
        return reply(request, {i.name: {"settings": self.settings_of(i)}
                               for i in self.store.resolve(request.match_info["index"])})

    async def get_mapping(self, request: web.Request) -> web.Response:
        indices = self.store.resolve(request.match_info.get("index", "_all"),
                                     request.query.get("ignore_unavailable") == "true")
        return reply(request, {i.name: {"mappings": i.mappings} for i in indices})

    async def put_mapping(self, request: web.Request) -> web.Response:
        body = await read_json(request, required=True)
        for index in self.store.resolve(request.match_info["index"]):
            self.store.put_mapping(index, body)
        return reply(request, {"acknowledged": True})

    async def template(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name")
        if request.method == "PUT":
            if request.query.get("create") == "true" and name in self.store.templates:
                raise illegal_argument(f"index template [{name}] already exists")
            self.store.put_template(name, await read_json(request, required=True))
            return reply(request, {"acknowledged": True})
        found = {n: t for n, t in self.store.templates.items() if name is None or re.fullmatch(
            re.escape(name).replace(r"\*", ".*"), n)}
        if request.method == "HEAD":
            return web.Response(status=200 if found else 404)
        if not found and name is not None and "*" not in name:
            raise es_error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
        if request.method == "DELETE":
            for n in found:
                self.store.delete_template(n)
            return reply(request, {"acknowledged": True})
        return reply(request, {"index_templates": [{"name": n, "index_template": t} for n, t in found.items()]})

    # -- documents ----------------------------------------------------------------------------------------------
    async def after_write(self, request: web.Request, indices: list[Index]) -> None:
        """``?refresh=true|wait_for``: the write is searchable before the answer."""
        mode = request.query.get("refresh")
        if mode in ("", "true", "wait_for"):
            self.store.refresh(indices)
        elif mode not in (None, "false"):
            raise illegal_argument(f"Unknown value for refresh: [{mode}].")

    async def bulk(self, request: web.Request) -> web.Response:
        raw = await request.read()
        result = bulk(self.store, raw, request.match_info.get("index"), request.query)
        touched = list({id(i): i for i in result.indices}.values())
        await self.after_write(request, touched)
        return reply(request, result.body)

    async def put_doc(self, request: web.Request) -> web.Response:
        name, doc_id = request.match_info["index"], request.match_info.get("id") or uuid.uuid4().hex[:20]
        op_type = "create" if "/_create/" in request.path else request.query.get("op_type", "index")
        if op_type not in ("index", "create"):
            raise illegal_argument(f"opType must be 'create' or 'index', found: [{op_type}]")
        body = await read_json(request, required=True)
        index = self.store.index(name)
        old = index.get(doc_id)
        if op_type == "create" and old is not None:
            raise conflict(index, doc_id, old)
        check_cas(request, index, doc_id, old)
        doc = self.store.write([(index, doc_id, body)])[0]
        assert doc is not None
        await self.after_write(request, [index])
        return reply(request, write_result(index, doc, "updated" if old else "created"), 200 if old else 201)

    async def get_doc(self, request: web.Request) -> web.StreamResponse:
        name, doc_id = request.match_info["index"], request.match_info["id"]
        if name not in self.store.indices:
            if request.method == "HEAD":
                return web.Response(status=404)
            raise index_not_found(name)
        index = self.store.indices[name]
        doc = index.get(doc_id)
        if request.method == "HEAD":
            return web.Response(status=200 if doc else 404)
        if "/_source/" in request.path:
            if doc is None:
                raise es_error(404, "resource_not_found_exception",
                               f"Document not found [{name}]/[{doc_id}]")
            return reply(request, doc.source)
        if doc is None:
            return reply(request, {"_index": name, "_id": doc_id, "found": False}, 404)
        from .search import source_filter
        spec: Any = None
        if "_source" in request.query:
            spec = {"true": True, "false": False}.get(request.query["_source"], request.query["_source"].split(","))
        elif "_source_includes" in request.query or "_source_excludes" in request.query:
            spec = {"includes": [x for x in request.query.get("_source_includes", "").split(",") if x],
                    "excludes": [x for x in request.query.get("_source_excludes", "").split(",") if x]}
        out = {"_index": name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no,
               "_primary_term": 1, "found": True}
        src = source_filter(doc.source, spec)
        if src is not None:
            out["_source"] = src
        return reply(request, out)

    async def delete_doc(self, request: web.Request) -> web.Response:
        name, doc_id = request.match_info["index"], request.match_info["id"]
        index = self.store.index(name, auto_create=False)
        old = index.get(doc_id)
        check_cas(request, index, doc_id, old)
        if old is None:
            return reply(request, {"_index": name, "_id": doc_id, "_version": 1, "result": "not_found",
                                   "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": self.store.seq,
                                   "_primary_term": 1}, 404)
        self.store.write([(index, doc_id, None)])
        await self.after_write(request, [index])
        seq = self.store.seq
        self.store.seq += 1
        return reply(request, {"_index": name, "_id": doc_id, "_version": old.version + 1, "result": "deleted",
                               "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq,
                               "_primary_term": 1})

    async def update_doc(self, request: web.Request) -> web.Response:
        name, doc_id = request.match_info["index"], request.match_info["id"]
        body = await read_json(request, required=True)
        if "script" in body:
            raise illegal_argument("scripted updates are not supported by the labkit simulator")
        unknown = set(body) - {"doc", "upsert", "doc_as_upsert", "detect_noop", "_source"}
        if unknown:
            raise parsing(f"[UpdateRequest] unknown field [{sorted(unknown)[0]}]")
        index = self.store.index(name)
        old = index.get(doc_id)
        check_cas(request, index, doc_id, old)
        if old is None:
            if "upsert" in body:
                source = body["upsert"]
            elif body.get("doc_as_upsert"):
                source = body.get("doc", {})
            else:
                raise es_error(404, "document_missing_exception", f"[{doc_id}]: document missing",
                               index=name, index_uuid=index.uuid, shard="0")
        else:
            source = merge(json.loads(json.dumps(old.source)), body.get("doc", {}))
            if source == old.source and body.get("detect_noop", True):
                return reply(request, {**write_result(index, old, "noop"), "_shards": {"total": 0, "successful": 0,
                                                                                        "failed": 0}})
        doc = self.store.write([(index, doc_id, source)])[0]
        assert doc is not None
        await self.after_write(request, [index])
        return reply(request, write_result(index, doc, "updated" if old else "created"), 200 if old else 201)

    async def search(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        indices = self.indices_for(request)
        return reply(request, search(indices, body, dict(request.query)))

    async def count(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if "q" in request.query:
            body = {"query": {"query_string": {"query": request.query["q"]}}}
        return reply(request, count(self.indices_for(request), body))

    def indices_for(self, request: web.Request) -> list[Index]:
        return self.store.resolve(request.match_info.get("index", "_all"),
                                  request.query.get("ignore_unavailable") == "true",
                                  request.query.get("allow_no_indices", "true") == "true")

    async def refresh(self, request: web.Request) -> web.Response:
        indices = self.indices_for(request)
        self.store.refresh(indices)
        return reply(request, {"_shards": {**shards(indices), "total": 2 * len(indices)}})


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def conflict(index: Index, doc_id: str, old: Doc) -> ApiError:
    return es_error(409, "version_conflict_engine_exception",
                    f"[{doc_id}]: version conflict, document already exists (current version [{old.version}])",
                    index_uuid=index.uuid, shard="0", index=index.name)


def check_cas(request: web.Request, index: Index, doc_id: str, old: Doc | None) -> None:
    """``if_seq_no``/``if_primary_term``: optimistic concurrency control."""
    if "if_seq_no" not in request.query:
        return
    want = int(request.query["if_seq_no"])
    if old is None or old.seq_no != want:
        have = old.seq_no if old else -2
        raise es_error(409, "version_conflict_engine_exception",
                       f"[{doc_id}]: version conflict, required seqNo [{want}], primary term [1]. current document "
                       f"has seqNo [{have}] and primary term [1]", index_uuid=index.uuid, shard="0",
                       index=index.name)


def write_result(index: Index, doc: Doc, result: str) -> dict[str, Any]:
    return {"_index": index.name, "_id": doc.id, "_version": doc.version, "result": result,
            "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": doc.seq_no, "_primary_term": 1}


def human_bytes(n: int, unit: str | None) -> str:
    if unit:
        return str(n // {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}.get(unit, 1))
    for suffix, size in (("gb", 1024**3), ("mb", 1024**2), ("kb", 1024)):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n}b"


def num_or_text(v: str) -> tuple[int, Any]:
    try:
        return 0, float(v)
    except ValueError:
        return 1, v


BULK_PARAMS = {"refresh", "routing", "timeout", "pipeline", "wait_for_active_shards", "_source", "_source_includes",
               "_source_excludes", "require_alias", "list_executed_pipelines", "require_data_stream"}
SEARCH_PARAMS = {"q", "size", "from", "sort", "_source", "_source_includes", "_source_excludes", "track_total_hits",
                 "rest_total_hits_as_int", "ignore_unavailable", "allow_no_indices", "expand_wildcards",
                 "timeout", "typed_keys", "track_scores", "search_type", "request_cache", "batched_reduce_size",
                 "max_concurrent_shard_requests", "pre_filter_shard_size", "allow_partial_search_results",
                 "ccs_minimize_roundtrips", "preference", "routing", "default_operator", "df", "analyze_wildcard",
                 "lenient"}
COUNT_PARAMS = {"q", "ignore_unavailable", "allow_no_indices", "expand_wildcards", "default_operator", "df",
                "analyze_wildcard", "lenient", "routing", "preference", "min_score", "terminate_after"}
DOC_PARAMS = {"refresh", "routing", "timeout", "version", "version_type", "if_seq_no", "if_primary_term",
              "op_type", "pipeline", "wait_for_active_shards", "require_alias"}
GET_PARAMS = {"_source", "_source_includes", "_source_excludes", "realtime", "refresh", "routing", "preference",
              "stored_fields", "version", "version_type"}
