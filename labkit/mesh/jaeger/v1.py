"""Jaeger's ``/api`` (``cmd/query/app/http_handler.go``), the API the Jaeger UI calls: services, operations,
trace search, a trace by id and the dependency links, in Jaeger's ``structuredResponse``
(``{"data", "total", "limit", "offset", "errors"}``) and its error shape
(``{"data": null, …, "errors": [{"code": 400, "msg": "…"}]}``, written as Go's ``http.Error`` writes it).

Search as Jaeger parses it: ``service`` (required unless ``traceID`` is given), ``operation``, ``tag=k:v`` and
``tags={json}``, ``start``/``end`` in µs, ``minDuration``/``maxDuration`` as Go durations, ``limit`` (traces,
default 100). ``start`` defaults to two days back, as Jaeger's query lookback; the UI's own ``lookback`` (``1h``,
``2d``) is honoured when ``start`` is absent (Jaeger ignores it because its UI always sends ``start``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ...core.errors import ApiError, not_supported
from .otlp import JSON, BadPayload, parse_request, span_docs
from .params import ParamError, parse_go_bool, parse_go_duration, parse_go_int, parse_trace_id
from .query import TraceSearch, dependencies, find_traces, get_trace
from .store import KINDS, SpanQuery, StoredSpan, TraceStore, service_of
from .uimodel import trace_id_text, ui_trace

DEFAULT_LIMIT = 100
TRACE_LOOKBACK_US = 2 * 24 * 3600 * 1_000_000
DEPENDENCY_LOOKBACK_MS = 24 * 3600 * 1000
UI_LOOKBACK_UNITS = {"d": 86_400_000_000_000, "w": 7 * 86_400_000_000_000}


def structured(data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None) -> web.Response:
    return web.json_response({"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors})


def render_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Jaeger's ``handleError``: the structured response with one error, sent as ``http.Error`` sends text."""
    body = json.dumps({"data": None, "total": 0, "limit": 0, "offset": 0,
                       "errors": [{"code": err.status, "msg": err.message}]}, separators=(",", ":"))
    return web.Response(status=err.status, text=body + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _param(text: str, name: str, parse: Any) -> Any:
    try:
        return parse(text)
    except ParamError as err:
        raise bad_request(f"unable to parse param '{name}': {err}") from None


def _epoch_param(request: web.Request, name: str, default: int) -> int:
    """An epoch time parameter in its own unit (µs for search, ms for dependencies), ``default`` when absent."""
    text = request.query.get(name, "")
    return default if not text else _param(text, name, parse_go_int)


def _tags(request: web.Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in request.query.getall("tag", []):
        key, sep, value = text.partition(":")
        if not sep:
            raise bad_request(f"malformed 'tag' parameter, expecting key:value, received: {text}")
        found[key] = value
    for text in request.query.getall("tags", []):
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise bad_request(f"malformed 'tags' parameter, cannot unmarshal JSON: {err}") from None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise bad_request("malformed 'tags' parameter, cannot unmarshal JSON: "
                              "json: cannot unmarshal into Go value of type map[string]string")
        found.update(doc)
    return found


def _float(text: str) -> float:
    """``strconv.ParseFloat``."""
    try:
        return float(text)
    except ValueError:
        raise ParamError(f"strconv.ParseFloat: parsing {json.dumps(text)}: invalid syntax") from None


def _ui_lookback_ns(text: str) -> int:
    """The UI's lookback (``1h``, ``2d``, ``1w``): Go units plus days and weeks."""
    if text[-1:] in UI_LOOKBACK_UNITS and text[:-1].isdigit():
        return int(text[:-1]) * UI_LOOKBACK_UNITS[text[-1]]
    return parse_go_duration(text)


def parse_search(request: web.Request) -> tuple[TraceSearch, list[str]]:
    """(the search, the trace ids asked for) from ``/api/traces``' query, or a 400 in Jaeger's words."""
    q = request.query
    now_us = int(time.time() * 1e6)
    end = _epoch_param(request, "end", now_us)
    lookback = q.get("lookback", "")
    default_start = now_us - TRACE_LOOKBACK_US
    if lookback and lookback != "custom" and not q.get("start"):
        default_start = end - _param(lookback, "lookback", _ui_lookback_ns) // 1000
    start = _epoch_param(request, "start", default_start)
    tags = _tags(request)
    limit = DEFAULT_LIMIT
    if q.get("limit"):
        try:
            limit = parse_go_int(q["limit"])
        except ParamError as err:
            raise bad_request(str(err)) from None
    min_ns = _param(q["minDuration"], "minDuration", parse_go_duration) if q.get("minDuration") else 0
    max_ns = _param(q["maxDuration"], "maxDuration", parse_go_duration) if q.get("maxDuration") else 0
    ids = []
    for text in q.getall("traceID", []):
        try:
            ids.append(parse_trace_id(text))
        except ParamError as err:
            raise bad_request(f"cannot parse traceID param: {err}") from None
    raw = _raw(request)
    if not ids and not q.get("service"):
        raise bad_request("parameter 'service' is required")
    if min_ns and max_ns and max_ns < min_ns:
        raise bad_request("'maxDuration' should be greater than 'minDuration'")
    spans = SpanQuery(start, end, q.get("service", ""), q.get("operation", ""), min_ns // 1000, max_ns // 1000)
    return TraceSearch(spans, tags, limit, raw), ids


def _raw(request: web.Request) -> bool:
    text = request.query.get("raw", "")
    return _param(text, "raw", parse_go_bool) if text else False


def routes(store: TraceStore) -> list[web.RouteDef]:
    """The ``/api`` routes over ``store``."""

    async def services(request: web.Request) -> web.Response:
        names = store.services()
        return structured(names, len(names))

    async def operations_legacy(request: web.Request) -> web.Response:
        names = sorted({name for name, _ in store.operations(request.match_info["service"])})
        return structured(names, len(names))

    async def operations(request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        if not service:
            raise bad_request("parameter 'service' is required")
        ops = store.operations(service, request.query.get("spanKind", ""))
        return structured([{"name": n, "spanKind": k} for n, k in ops], len(ops))

    async def search(request: web.Request) -> web.Response:
        query, ids = parse_search(request)
        if ids:
            found, errors = [], []
            for trace_id in ids:
                spans = get_trace(store, trace_id, query.raw)
                if spans:
                    found.append(ui_trace(spans))
                else:
                    errors.append({"msg": "trace not found", "traceID": trace_id_text(trace_id)})
            return structured(found, errors=errors or None)
        return structured([ui_trace(spans) for spans in find_traces(store, query)])

    async def trace(request: web.Request) -> web.Response:
        try:
            trace_id = parse_trace_id(request.match_info["trace_id"])
        except ParamError as err:
            raise bad_request(str(err)) from None
        spans = get_trace(store, trace_id, _raw(request))
        if not spans:
            raise ApiError(404, "NotFound", "trace not found")
        return structured([ui_trace(spans)])

    async def deps(request: web.Request) -> web.Response:
        end_ms = _epoch_param(request, "endTs", int(time.time() * 1000))
        lookback = request.query.get("lookback", "")
        lookback_ms = _param(lookback, "lookback", parse_go_int) if lookback else DEPENDENCY_LOOKBACK_MS
        links = dependencies(store, (end_ms - lookback_ms) * 1000, end_ms * 1000)
        service = request.query.get("service", "")
        if service:
            links = [link for link in links if service in (link["parent"], link["child"])]
        return structured(links)

    async def transform(request: web.Request) -> web.Response:
        """OTLP-JSON in, the UI model out (what the UI's "upload a trace" does), nothing stored."""
        try:
            docs = span_docs(parse_request(await request.read(), JSON))
        except BadPayload as err:
            raise bad_request(f"cannot unmarshal OTLP : {err}") from None
        by_trace: dict[str, list[StoredSpan]] = {}
        for doc in docs:
            span = doc["span"]
            start, end = int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0))
            by_trace.setdefault(span["traceId"], []).append(StoredSpan(
                span["traceId"], span["spanId"], span.get("parentSpanId", ""), service_of(doc["resource"]),
                span.get("name", ""), KINDS.get(int(span.get("kind", 0)), ""), start // 1000,
                max(0, end - start) // 1000, doc))
        return structured([ui_trace(spans) for spans in by_trace.values()])

    async def metrics(request: web.Request) -> web.Response:
        """Service Performance Monitoring, as a Jaeger without a metrics backend answers it."""
        if request.match_info["kind"] == "latencies":
            _param(request.query.get("quantile", ""), "quantile", _float)
        if "service" not in request.query:
            raise bad_request("unable to parse param 'service': please provide at least one service name")
        raise ApiError(501, "NotImplemented", "trace metrics are currently disabled - no metrics backend configured")

    async def unsupported(request: web.Request) -> web.Response:
        raise not_supported(f"{request.method} {request.path}")

    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found\n", content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    return [web.get("/api/services", services), web.get("/api/services/{service}/operations", operations_legacy),
            web.get("/api/operations", operations), web.get("/api/traces", search),
            web.get("/api/traces/{trace_id}", trace), web.get("/api/dependencies", deps),
            web.post("/api/transform", transform),
            web.get("/api/metrics/{kind:latencies|calls|errors}", metrics),
            web.post("/api/archive/{trace_id}", unsupported), web.get("/api/deep-dependencies", unsupported),
            web.get("/api/quality-metrics", unsupported),
            web.route("*", "/api/{tail:(?!v3/).*}", not_found)]
