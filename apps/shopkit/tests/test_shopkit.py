"""shopkit: routing, knobs, metrics, JSON logs, trace context and OTLP export."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from shopkit import App, HttpError, Request

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make_app(**env: str) -> App:
    app = App("demo", {"POD_NAME": "demo-7d9f-abcde", "APP_VERSION": "1.2.3", **env})

    @app.route("GET", "/items/{id}")
    def item(request: Request) -> dict[str, str]:
        if request.params["id"] == "bad":
            raise HttpError(422, "bad item")
        return {"id": request.params["id"]}

    return app


def get(app: App, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    return app.handle(method, path, headers or {})


def test_routes_pod_header_and_errors() -> None:
    app = make_app()
    status, headers, body = get(app, "/items/42")
    assert status == 200 and json.loads(body) == {"id": "42"}
    assert headers["X-Pod-Name"] == "demo-7d9f-abcde"
    assert get(app, "/items/bad")[0] == 422
    assert get(app, "/nope")[0] == 404
    assert get(app, "/items/1", method="DELETE")[0] == 405
    assert json.loads(get(app, "/")[2]) == {"service": "demo", "version": "1.2.3", "pod": "demo-7d9f-abcde"}


def test_metrics_count_requests_by_route_method_status() -> None:
    app = make_app()
    for _ in range(3):
        get(app, "/items/1")
    get(app, "/items/bad")
    text = get(app, "/metrics")[2].decode()
    assert 'http_requests_total{method="GET",route="/items/{id}",status="200"} 3.0' in text
    assert 'http_requests_total{method="GET",route="/items/{id}",status="422"} 1.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/items/{id}",status="200"}' in text
    assert "process_resident_memory_bytes" in text


def test_one_json_log_line_per_request_with_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app()
    capsys.readouterr()
    _, headers, _ = get(app, "/items/7", headers={"traceparent": TRACEPARENT})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("level", "msg", "route", "status", "service", "pod")} == {
        "level": "info", "msg": "request", "route": "/items/{id}", "status": 200, "service": "demo",
        "pod": "demo-7d9f-abcde"}
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c" == headers["X-Trace-Id"]
    assert isinstance(line["duration"], float)


def test_knobs_slow_fail_ready_reset() -> None:
    app = make_app()
    assert get(app, "/admin/slow?ms=200", method="POST")[0] == 200
    started = time.perf_counter()
    assert get(app, "/items/1")[0] == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    assert get(app, "/healthz")[0] == 200 and time.perf_counter() - started < 0.1  # infra routes are exempt
    assert get(app, "/admin/fail?rate=1", method="POST")[0] == 200
    assert get(app, "/items/1")[0] == 500
    assert get(app, "/admin/ready?value=false", method="POST")[0] == 200
    assert get(app, "/readyz")[0] == 503
    assert get(app, "/admin/fail?rate=2", method="POST")[0] == 400
    assert get(app, "/admin/reset", method="POST")[0] == 200
    assert json.loads(get(app, "/admin")[2]) == {"slow_ms": 0, "fail_rate": 0.0, "ready": True}
    assert get(app, "/items/1")[0] == 200 and get(app, "/readyz")[0] == 200


def test_knobs_from_environment() -> None:
    app = make_app(SLOW_MS="50", FAIL_RATE="1")
    assert app.knobs.slow_ms == 50 and app.knobs.fail_rate == 1.0
    assert get(app, "/items/1")[0] == 500


def test_crash_answers_then_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(threading, "Timer", lambda delay, fn, args: type("T", (), {
        "start": lambda self: calls.append((fn.__name__, args))})())
    status, _, body = get(make_app(), "/admin/crash", method="POST")
    assert status == 202 and json.loads(body)["exit_code"] == 1
    assert calls == [("_exit", (1,))]


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        _Collector.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_exported_over_otlp_only_when_configured() -> None:
    assert not make_app().telemetry.exporting
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = make_app(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}")
        assert app.telemetry.exporting
        get(app, "/healthz", headers={"traceparent": TRACEPARENT})
        app.telemetry.flush()
        request = ExportTraceServiceRequest.FromString(_Collector.received[-1])
        spans = request.resource_spans[0].scope_spans[0].spans
        assert spans[0].name == "GET /healthz"
        assert spans[0].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
        attrs = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
        assert attrs["service.name"] == "demo"
    finally:
        server.shutdown()
