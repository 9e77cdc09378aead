"""Jaeger's query APIs over traces the real OpenTelemetry SDK exported: a request across two services with
``traceparent`` propagated over real HTTP, then every ``/api`` and ``/api/v3`` read and their errors, with plain
HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .jaeger_fixtures import RunningJaeger, TracedService, hex_id, jaeger_fixture  # noqa: F401 - the fixture

PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class ShopTrace:
    trace_id: str
    gateway_server: str
    gateway_client: str
    catalog_server: str
    started_us: int


def _catalog_server(service: TracedService) -> ThreadingHTTPServer:
    """A 'catalog' answering over real HTTP, continuing the caller's trace from its ``traceparent``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ctx = PROPAGATOR.extract(dict(self.headers.items()))
            with service.tracer.start_as_current_span("GET /products", context=ctx, kind=SpanKind.SERVER) as span:
                span.set_attribute("http.response.status_code", 200)
                span.add_event("query", {"db.rows": 3})
                body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def shop(jaeger: RunningJaeger) -> Iterator[ShopTrace]:
    """gateway → catalog: a server span, its client span, and catalog's server span in catalog's own process."""
    gateway, catalog = TracedService(jaeger.otlp, "gateway"), TracedService(jaeger.otlp, "catalog", version="v2")
    server = _catalog_server(catalog)
    started = time.time_ns() // 1000
    try:
        with gateway.tracer.start_as_current_span("GET /shop", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/shop")
            with gateway.tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as client:
                headers: dict[str, str] = {}
                PROPAGATOR.inject(headers)
                assert requests.get(f"http://127.0.0.1:{server.server_port}/products", headers=headers,
                                    timeout=10).status_code == 200
        yield ShopTrace(hex_id(root.get_span_context().trace_id), format(root.get_span_context().span_id, "016x"),
                        format(client.get_span_context().span_id, "016x"), "", started)
    finally:
        server.shutdown()
        gateway.close()
        catalog.close()


def _trace(jaeger: RunningJaeger, trace_id: str) -> dict[str, Any]:
    r = jaeger.get(f"/api/traces/{trace_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is None and len(body["data"]) == 1
    return body["data"][0]


def test_a_trace_across_two_services_is_one_trace_with_both_processes(jaeger: RunningJaeger,
                                                                      shop: ShopTrace) -> None:
    trace = _trace(jaeger, shop.trace_id)
    assert trace["traceID"] == shop.trace_id and trace["warnings"] is None
    by_service = {p["serviceName"]: pid for pid, p in trace["processes"].items()}
    assert set(by_service) == {"gateway", "catalog"}
    catalog_tags = {t["key"]: t["value"] for t in trace["processes"][by_service["catalog"]]["tags"]}
    assert catalog_tags["version"] == "v2" and catalog_tags["telemetry.sdk.language"] == "python"
    spans = {(s["processID"], s["operationName"]): s for s in trace["spans"]}
    root = spans[(by_service["gateway"], "GET /shop")]
    client = spans[(by_service["gateway"], "GET")]
    server = spans[(by_service["catalog"], "GET /products")]
    assert root["spanID"] == shop.gateway_server and root["references"] == []
    assert client["references"] == [{"refType": "CHILD_OF", "traceID": shop.trace_id, "spanID": root["spanID"]}]
    assert server["references"] == [{"refType": "CHILD_OF", "traceID": shop.trace_id, "spanID": client["spanID"]}]
    assert {"key": "span.kind", "type": "string", "value": "client"} in client["tags"]
    assert {"key": "http.response.status_code", "type": "int64", "value": 200} in server["tags"]
    assert {"key": "otel.scope.name", "type": "string", "value": "labkit.tests"} in server["tags"]
    assert server["logs"][0]["fields"] == [{"key": "event", "type": "string", "value": "query"},
                                           {"key": "db.rows", "type": "int64", "value": 3}]
    assert root["startTime"] <= client["startTime"] <= server["startTime"]
    assert server["startTime"] + server["duration"] <= root["startTime"] + root["duration"]
    assert shop.started_us <= root["startTime"] and root["duration"] > 0


def test_services_and_operations_as_the_ui_lists_them(jaeger: RunningJaeger, shop: ShopTrace) -> None:
    services = jaeger.get("/api/services").json()
    assert {"gateway", "catalog"} <= set(services["data"])
    assert services["total"] == len(services["data"]) and services["errors"] is None
    legacy = jaeger.get("/api/services/gateway/operations").json()
    assert legacy["data"] == ["GET", "GET /shop"] and legacy["total"] == 2
    ops = jaeger.get("/api/operations", service="gateway").json()["data"]
    assert ops == [{"name": "GET", "spanKind": "client"}, {"name": "GET /shop", "spanKind": "server"}]
    servers = jaeger.get("/api/operations", service="gateway", spanKind="server").json()["data"]
    assert servers == [{"name": "GET /shop", "spanKind": "server"}]


def test_dependencies_count_calls_between_services(jaeger: RunningJaeger, shop: ShopTrace) -> None:
    now_ms = int(time.time() * 1000)
    links = jaeger.get("/api/dependencies", endTs=now_ms + 1000, lookback=3_600_000).json()["data"]
    assert {"parent": "gateway", "child": "catalog", "callCount": 1} in links
    assert {"parent": "gateway", "child": "gateway", "callCount": 1} in links  # the client span under the root
    only = jaeger.get("/api/dependencies", endTs=now_ms + 1000, lookback=3_600_000, service="catalog").json()
    assert only["data"] == [{"parent": "gateway", "child": "catalog", "callCount": 1}]
    before = jaeger.get("/api/dependencies", endTs=shop.started_us // 1000 - 60_000, lookback=60_000).json()
    assert before["data"] == []


class _Spans:
    """Spans with chosen times and attributes, exported by the SDK: the search cases."""

    def __init__(self, jaeger: RunningJaeger, name: str) -> None:
        self.service = TracedService(jaeger.otlp, name)
        self.now = time.time_ns()

    def span(self, name: str, ago_s: float, ms: float, error: bool = False, **attrs: Any) -> str:
        start = self.now - int(ago_s * 1e9)
        span = self.service.tracer.start_span(name, start_time=start, kind=SpanKind.SERVER, attributes=attrs)
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=start + int(ms * 1e6))
        return hex_id(span.get_span_context().trace_id)


@pytest.fixture(scope="module")
def searchable(jaeger: RunningJaeger) -> dict[str, str]:
    spans = _Spans(jaeger, "search-svc")
    ids = {"fast": spans.span("GET /a", 30, 5, **{"http.response.status_code": 200}),
           "slow": spans.span("GET /a", 20, 1500, **{"http.response.status_code": 200}),
           "failed": spans.span("GET /b", 10, 50, error=True, **{"http.response.status_code": 503}),
           "old": spans.span("GET /a", 7200, 5)}
    spans.service.close()
    return {**ids, "now_us": str(spans.now // 1000)}


def _search(jaeger: RunningJaeger, **params: Any) -> list[str]:
    r = jaeger.get("/api/traces", service="search-svc", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is None and body["total"] == 0 and body["limit"] == 0  # as Jaeger fills a search
    return [t["traceID"] for t in body["data"]]


def test_search_by_service_operation_tags_duration_and_time(jaeger: RunningJaeger,
                                                           searchable: dict[str, str]) -> None:
    ids, now = searchable, int(searchable["now_us"])
    assert _search(jaeger) == [ids["failed"], ids["slow"], ids["fast"], ids["old"]]  # the latest first
    assert _search(jaeger, operation="GET /a") == [ids["slow"], ids["fast"], ids["old"]]
    assert _search(jaeger, tags='{"error":"true"}') == [ids["failed"]]
    assert _search(jaeger, tags='{"http.response.status_code":"200"}') == [ids["slow"], ids["fast"]]
    assert _search(jaeger, tag="otel.status_description:boom") == [ids["failed"]]
    assert _search(jaeger, minDuration="1.2s") == [ids["slow"]]
    assert _search(jaeger, maxDuration="100ms", operation="GET /a") == [ids["fast"], ids["old"]]
    assert _search(jaeger, minDuration="10ms", maxDuration="1s") == [ids["failed"]]
    assert _search(jaeger, start=now - 60_000_000, end=now) == [ids["failed"], ids["slow"], ids["fast"]]
    assert _search(jaeger, start=now - 25_000_000, end=now - 15_000_000) == [ids["slow"]]
    assert _search(jaeger, limit=2) == [ids["failed"], ids["slow"]]
    assert _search(jaeger, lookback="1h", end=now) == [ids["failed"], ids["slow"], ids["fast"]]
    found = jaeger.get("/api/traces", traceID=[ids["fast"], "00000000000000000000000000abcdef"]).json()
    assert [t["traceID"] for t in found["data"]] == [ids["fast"]]
    assert found["errors"] == [{"msg": "trace not found", "traceID": "0000000000abcdef"}]


def test_an_error_span_is_tagged_as_jaeger_tags_it(jaeger: RunningJaeger, searchable: dict[str, str]) -> None:
    span = _trace(jaeger, searchable["failed"])["spans"][0]
    tags = {t["key"]: (t["type"], t["value"]) for t in span["tags"]}
    assert tags["error"] == ("bool", True) and tags["otel.status_code"] == ("string", "ERROR")
    assert tags["otel.status_description"] == ("string", "boom") and tags["span.kind"] == ("string", "server")


@pytest.mark.parametrize(("path", "params", "status", "msg"), [
    ("/api/traces", {}, 400, "parameter 'service' is required"),
    ("/api/traces", {"service": "s", "start": "soon"}, 400,
     "unable to parse param 'start': strconv.ParseInt: parsing \"soon\": invalid syntax"),
    ("/api/traces", {"service": "s", "minDuration": "1.2"}, 400,
     "unable to parse param 'minDuration': time: missing unit in duration \"1.2\""),
    ("/api/traces", {"service": "s", "maxDuration": "3 sec"}, 400,
     "unable to parse param 'maxDuration': time: unknown unit \" sec\" in duration \"3 sec\""),
    ("/api/traces", {"service": "s", "minDuration": "2s", "maxDuration": "1s"}, 400,
     "'maxDuration' should be greater than 'minDuration'"),
    ("/api/traces", {"service": "s", "limit": "ten"}, 400, "strconv.ParseInt: parsing \"ten\": invalid syntax"),
    ("/api/traces", {"service": "s", "tag": "nocolon"}, 400,
     "malformed 'tag' parameter, expecting key:value, received: nocolon"),
    ("/api/traces/zz", {}, 400, "strconv.ParseUint: parsing \"zz\": invalid syntax"),
    ("/api/traces/" + "1" * 33, {}, 400, "TraceID cannot be longer than 32 hex characters: " + "1" * 33),
    ("/api/traces/0123456789abcdef0123456789abcdef", {}, 404, "trace not found"),
    ("/api/operations", {}, 400, "parameter 'service' is required"),
    ("/api/dependencies", {"endTs": "x"}, 400,
     "unable to parse param 'endTs': strconv.ParseInt: parsing \"x\": invalid syntax"),
])
def test_errors_in_jaegers_shape(jaeger: RunningJaeger, path: str, params: dict[str, str], status: int,
                                 msg: str) -> None:
    r = jaeger.get(path, **params)
    assert r.status_code == status, r.text
    assert r.json() == {"data": None, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": status, "msg": msg}]}


def test_tags_must_be_a_json_map_of_strings(jaeger: RunningJaeger) -> None:
    r = jaeger.get("/api/traces", service="s", tags="{not json")
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"].startswith("malformed 'tags' parameter, cannot unmarshal JSON: ")
    assert jaeger.get("/api/nothing-here").text == "404 page not found\n"


def _rfc3339(us: int) -> str:
    return (datetime.fromtimestamp(us / 1e6, UTC)).isoformat().replace("+00:00", "Z")


def test_v3_serves_otlp_json(jaeger: RunningJaeger, shop: ShopTrace, searchable: dict[str, str]) -> None:
    assert {"gateway", "catalog"} <= set(jaeger.get("/api/v3/services").json()["services"])
    assert jaeger.get("/api/v3/operations", service="gateway", spanKind="server").json() == {
        "operations": [{"name": "GET /shop", "spanKind": "server"}]}
    body = jaeger.get(f"/api/v3/traces/{shop.trace_id}").json()
    resources = body["result"]["resourceSpans"]
    names = {a["value"]["stringValue"] for r in resources for a in r["resource"]["attributes"]
             if a["key"] == "service.name"}
    assert names == {"gateway", "catalog"}
    spans = [s for r in resources for ss in r["scopeSpans"] for s in ss["spans"]]
    assert {s["traceId"] for s in spans} == {shop.trace_id} and len(spans) == 3
    client = next(s for s in spans if s["spanId"] == shop.gateway_client)
    assert client["kind"] == 3 and client["parentSpanId"] == shop.gateway_server
    assert int(client["endTimeUnixNano"]) > int(client["startTimeUnixNano"])
    assert resources[0]["scopeSpans"][0]["scope"] == {"name": "labkit.tests", "version": "1.0"}
    now = int(searchable["now_us"])
    found = jaeger.get("/api/v3/traces", **{"query.service_name": "search-svc", "query.start_time_min":
                                            _rfc3339(now - 60_000_000), "query.start_time_max": _rfc3339(now),
                                            "query.duration_min": "1s"}).json()
    assert [s["traceId"] for r in found["result"]["resourceSpans"] for ss in r["scopeSpans"]
            for s in ss["spans"]] == [searchable["slow"]]


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    ("/api/v3/traces", {"query.service_name": "s"}, 400, "query.startTimeMin and query.startTimeMax are required"),
    ("/api/v3/traces", {"query.start_time_min": "yesterday", "query.start_time_max": "2026-01-01T00:00:00Z"}, 400,
     'malformed parameter query.start_time_min: parsing time "yesterday" as "2006-01-02T15:04:05.999999999Z07:00": '
     'cannot parse "yesterday" as "2006"'),
    ("/api/v3/traces", {"query.start_time_min": "2026-01-02T00:00:00Z", "query.start_time_max":
                        "2026-01-01T00:00:00Z"}, 400, "query.startTimeMin must be before query.startTimeMax"),
    ("/api/v3/traces", {"query.start_time_min": "2001-01-01T00:00:00Z", "query.start_time_max":
                        "2001-01-02T00:00:00.5Z", "query.service_name": "s"}, 404, "No traces found"),
    ("/api/v3/traces/0123456789abcdef0123456789abcdef", {}, 404, "No traces found"),
    ("/api/v3/traces/xyz", {}, 400, 'malformed parameter trace_id: strconv.ParseUint: parsing "xyz": invalid syntax'),
])
def test_v3_errors(jaeger: RunningJaeger, path: str, params: dict[str, str], status: int,
                   message: str) -> None:
    r = jaeger.get(path, **params)
    assert r.status_code == status, r.text
    assert r.json() == {"error": {"httpCode": status, "message": message}}


def test_rfc3339_times_bound_the_v3_search(jaeger: RunningJaeger, searchable: dict[str, str]) -> None:
    now = datetime.fromtimestamp(int(searchable["now_us"]) / 1e6, UTC)
    window = {"query.serviceName": "search-svc", "query.searchDepth": "1",
              "query.startTimeMin": (now - timedelta(seconds=25)).isoformat(),
              "query.startTimeMax": (now - timedelta(seconds=15)).isoformat()}
    spans = jaeger.get("/api/v3/traces", **window).json()["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["traceId"] for s in spans] == [searchable["slow"]]


def test_the_waterfall_nests_spans_and_marks_errors(jaeger: RunningJaeger, shop: ShopTrace,
                                                    searchable: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex

    from labkit.mesh.jaeger.views import ERROR_COLOR, plot_waterfall, waterfall_rows

    trace = _trace(jaeger, shop.trace_id)
    rows = waterfall_rows(trace)
    assert [(r.service, r.operation, r.depth) for r in rows] == [
        ("gateway", "GET /shop", 0), ("gateway", "GET", 1), ("catalog", "GET /products", 2)]
    assert rows[0].start_ms == 0 and all(r.start_ms >= 0 and not r.error for r in rows)
    fig = plot_waterfall(trace)
    bars = fig.axes[0].patches
    assert len(bars) == 3 and [b.get_width() for b in bars] == pytest.approx([r.duration_ms for r in rows])
    failed = plot_waterfall(_trace(jaeger, searchable["failed"]))
    assert to_hex(failed.axes[0].patches[0].get_facecolor()) == ERROR_COLOR
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(failed)


def test_the_client_the_notebook_view_reads_with(jaeger: RunningJaeger, shop: ShopTrace,
                                                 searchable: dict[str, str]) -> None:
    from labkit.mesh.jaeger.client import JaegerClient, JaegerError

    client = JaegerClient(jaeger.url)
    assert {"gateway", "catalog", "search-svc"} <= set(client.services())
    assert {"name": "GET /shop", "spanKind": "server"} in client.operations("gateway")
    assert client.find_trace_ids("search-svc") == [searchable["failed"], searchable["slow"], searchable["fast"]]
    assert client.find_trace_ids("search-svc", min_duration="1s") == [searchable["slow"]]
    assert client.find_trace_ids("search-svc", attributes={"error": "true"}) == [searchable["failed"]]
    assert client.find_trace_ids("nobody") == []
    frame = client.spans(shop.trace_id)
    assert list(frame["operation"]) == ["GET /shop", "GET", "GET /products"] and list(frame["depth"]) == [0, 1, 2]
    with pytest.raises(JaegerError, match="trace not found"):
        client.trace("0123456789abcdef")


def test_transform_metrics_and_what_the_simulator_does_not_serve(jaeger: RunningJaeger) -> None:
    span = {"traceId": "7" * 32, "spanId": "1" * 16, "name": "uploaded", "kind": 2,
            "startTimeUnixNano": "1000000", "endTimeUnixNano": "3000000"}
    otlp = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": "upload"}}]},
                               "scopeSpans": [{"spans": [span]}]}]}
    shown = requests.post(f"{jaeger.url}/api/transform", json=otlp, timeout=10).json()["data"][0]
    assert shown["spans"][0]["operationName"] == "uploaded" and shown["spans"][0]["duration"] == 2000
    assert shown["processes"] == {"p1": {"serviceName": "upload", "tags": []}}
    assert jaeger.get(f"/api/traces/{'7' * 32}").status_code == 404  # shown, not stored
    bad = requests.post(f"{jaeger.url}/api/transform", data=b"[]", timeout=10)
    assert bad.status_code == 400 and bad.json()["errors"][0]["msg"].startswith("cannot unmarshal OTLP : ")
    assert jaeger.get("/api/metrics/calls").json()["errors"] == [
        {"code": 400, "msg": "unable to parse param 'service': please provide at least one service name"}]
    calls = jaeger.get("/api/metrics/calls", service="gateway")
    assert calls.status_code == 501 and calls.json()["errors"][0]["msg"] == \
        "trace metrics are currently disabled - no metrics backend configured"
    archive = requests.post(f"{jaeger.url}/api/archive/{'7' * 32}", timeout=10)
    assert archive.status_code == 501
    assert archive.json()["errors"][0]["msg"] == \
        f"POST /api/archive/{'7' * 32} is not supported by the labkit simulator"
    summaries = jaeger.get("/api/v3/trace-summaries")
    assert summaries.status_code == 501 and summaries.json() == {"error": {
        "httpCode": 501, "message": "GET /api/v3/trace-summaries is not supported by the labkit simulator"}}
