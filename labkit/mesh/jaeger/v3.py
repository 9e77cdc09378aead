"""Jaeger v2's ``/api/v3`` HTTP gateway (``internal/apiv3/http_gateway.go``): services, operations, trace search
and a trace by id, traces as OTLP-JSON under ``{"result": {"resourceSpans": […]}}`` (ids in hex, enums as
numbers), errors as ``{"error": {"httpCode": 400, "message": "…"}}``. Search parameters are the gateway's:
``query.service_name`` (or ``query.serviceName``), ``query.operation_name``, ``query.start_time_min`` and
``query.start_time_max`` (RFC 3339, both required), ``query.duration_min``/``_max`` (Go durations),
``query.search_depth`` (traces, default 100) and ``query.attributes`` (a JSON map)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from ...core.errors import ApiError, not_supported
from ...core.http import json_response
from .params import ParamError, parse_go_bool, parse_go_duration, parse_trace_id
from .query import TraceSearch, find_traces, get_trace
from .store import SpanQuery, StoredSpan, TraceStore

RFC3339NANO = "2006-01-02T15:04:05.999999999Z07:00"
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def render_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    body = json.dumps({"error": {"httpCode": err.status, "message": err.message}}, separators=(",", ":"))
    return web.Response(status=err.status, text=body + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def param(q: Any, canonical: str, deprecated: str) -> tuple[str, str]:
    """(value, the name it came under): the camelCase name first, then its snake_case alias."""
    if q.get(canonical):
        return q[canonical], canonical
    return q.get(deprecated, ""), deprecated


def parse_rfc3339_us(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 time (nanoseconds truncated to µs)."""
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ParamError(f"parsing time {json.dumps(text)} as {json.dumps(RFC3339NANO)}: cannot parse "
                         f"{json.dumps(text)} as \"2006\"")
    fraction = (m.group(2) or ".0")[1:][:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    moment = datetime.fromisoformat(m.group(1) + zone)
    return int(moment.timestamp()) * 1_000_000 + int(fraction)


def parse_find(q: Any) -> TraceSearch:
    service, _ = param(q, "query.serviceName", "query.service_name")
    operation, _ = param(q, "query.operationName", "query.operation_name")
    attributes: dict[str, str] = {}
    if q.get("query.attributes"):
        try:
            attributes = json.loads(q["query.attributes"])
            if not isinstance(attributes, dict):
                raise ValueError("not an object")
        except ValueError as err:
            raise bad_request(f"malformed parameter query.attributes: {err}") from None
    if q.get("query.filter"):
        raise bad_request("malformed parameter query.filter: filter expressions are not supported by the "
                          "labkit simulator")
    tmin, tmin_name = param(q, "query.startTimeMin", "query.start_time_min")
    tmax, tmax_name = param(q, "query.startTimeMax", "query.start_time_max")
    if not tmin or not tmax:
        raise bad_request("query.startTimeMin and query.startTimeMax are required")
    bounds = []
    for text, name in ((tmin, tmin_name), (tmax, tmax_name)):
        try:
            bounds.append(parse_rfc3339_us(text))
        except ParamError as err:
            raise bad_request(f"malformed parameter {name}: {err}") from None
    if bounds[0] >= bounds[1]:
        raise bad_request("query.startTimeMin must be before query.startTimeMax")
    depth, depth_name = param(q, "query.searchDepth", "query.search_depth")
    if not depth and q.get("query.num_traces"):
        depth, depth_name = q["query.num_traces"], "query.num_traces"
    limit = 100
    if depth:
        if not re.fullmatch(r"[+-]?\d+", depth):
            raise bad_request(f"malformed parameter {depth_name}: strconv.Atoi: parsing {json.dumps(depth)}: "
                              "invalid syntax")
        limit = int(depth)
    durations = []
    for canonical, deprecated in (("query.durationMin", "query.duration_min"),
                                  ("query.durationMax", "query.duration_max")):
        text, name = param(q, canonical, deprecated)
        try:
            durations.append(parse_go_duration(text) // 1000 if text else 0)
        except ParamError as err:
            raise bad_request(f"malformed parameter {name}: {err}") from None
    return TraceSearch(SpanQuery(bounds[0], bounds[1], service, operation, *durations),
                       {str(k): str(v) for k, v in attributes.items()}, limit,
                       raw_traces(q, "query.rawTraces", "query.raw_traces"))


def raw_traces(q: Any, canonical: str, deprecated: str) -> bool:
    text, name = param(q, canonical, deprecated)
    try:
        return parse_go_bool(text) if text else False
    except ParamError as err:
        raise bad_request(f"malformed parameter {name}: {err}") from None


def resource_spans(traces: list[list[StoredSpan]]) -> list[dict[str, Any]]:
    """OTLP-JSON ``resourceSpans`` of traces: spans grouped under their resource and scope, in arrival order."""
    out: list[dict[str, Any]] = []
    for spans in traces:
        groups: dict[str, dict[str, Any]] = {}
        for s in spans:
            resource, scope = s.doc.get("resource", {}), s.doc.get("scope", {})
            rkey = json.dumps(resource, sort_keys=True)
            if rkey not in groups:
                groups[rkey] = {"resource": resource, "scopeSpans": {}}
                out.append(groups[rkey])
            scopes = groups[rkey]["scopeSpans"]
            scopes.setdefault(json.dumps(scope, sort_keys=True), {"scope": scope, "spans": []})["spans"].append(
                s.doc["span"])
        for group in groups.values():
            group["scopeSpans"] = list(group["scopeSpans"].values())
    return out


def traces_response(traces: list[list[StoredSpan]]) -> web.Response:
    if not traces:
        raise ApiError(404, "NotFound", "No traces found")
    return json_response({"result": {"resourceSpans": resource_spans(traces)}})


def routes(store: TraceStore) -> list[web.RouteDef]:
    """The ``/api/v3`` routes over ``store``."""

    async def services(request: web.Request) -> web.Response:
        return json_response({"services": store.services()})

    async def operations(request: web.Request) -> web.Response:
        kind, _ = param(request.query, "spanKind", "span_kind")
        ops = store.operations(request.query.get("service", ""), kind)
        return json_response({"operations": [{"name": n, "spanKind": k or "internal"} for n, k in ops]})

    async def find(request: web.Request) -> web.Response:
        return traces_response(find_traces(store, parse_find(request.query)))

    async def trace(request: web.Request) -> web.Response:
        try:
            trace_id = parse_trace_id(request.match_info["trace_id"])
        except ParamError as err:
            raise bad_request(f"malformed parameter trace_id: {err}") from None
        spans = get_trace(store, trace_id, raw_traces(request.query, "rawTraces", "raw_traces"))
        return traces_response([spans] if spans else [])

    async def summaries(request: web.Request) -> web.Response:
        raise not_supported("GET /api/v3/trace-summaries")

    return [web.get("/api/v3/services", services), web.get("/api/v3/trace-summaries", summaries),
            web.get("/api/v3/operations", operations), web.get("/api/v3/traces", find),
            web.get("/api/v3/traces/{trace_id}", trace)]
