"""A real Envoy's OpenTelemetry tracer (``envoy.tracers.opentelemetry`` over ``http_service``) reports to the
Jaeger receiver: the sidecar's span joins the caller's trace from ``traceparent`` and is queryable by service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from labkit.core.network import free_port
from labkit.mesh.envoy import Envoy

from ..waiting import until
from .jaeger_fixtures import RunningJaeger, jaeger_fixture  # noqa: F401 - the fixture

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def bootstrap(listen: int, admin: int, otlp: str) -> dict[str, Any]:
    """One listener answering itself (503 under ``/fail``, else 200), every request traced to ``otlp``; spans
    flushed one at a time (Envoy's default buffers them for 5 s, ``tracing.opentelemetry.flush_interval_ms``)."""
    target = urlsplit(otlp)
    tracer = {"name": "envoy.tracers.opentelemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig", "service_name": "edge.test",
        "http_service": {"http_uri": {"uri": f"{otlp}/v1/traces", "cluster": "jaeger", "timeout": "2s"}}}}
    manager = {"@type": HCM, "stat_prefix": "edge", "tracing": {"random_sampling": {"value": 100},
                                                                "provider": tracer},
               "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                   {"match": {"prefix": "/fail"}, "decorator": {"operation": "edge-fail"},
                    "direct_response": {"status": 503, "body": {"inline_string": "down"}}},
                   {"match": {"prefix": "/"}, "decorator": {"operation": "edge-answer"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                   "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    return {
        "node": {"id": "edge", "cluster": "edge.test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {
            "tracing.opentelemetry.min_flush_spans": 1, "tracing.opentelemetry.flush_interval_ms": 100}}]},
        "static_resources": {
            "listeners": [{"name": "edge", "address": {"socket_address": {"address": "127.0.0.1",
                                                                          "port_value": listen}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": manager}]}]}],
            "clusters": [{"name": "jaeger", "type": "STATIC", "connect_timeout": "1s",
                          "load_assignment": {"cluster_name": "jaeger", "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": {"socket_address": {
                                  "address": target.hostname, "port_value": target.port}}}}]}]}}]}}


@pytest.fixture(scope="module")
def envoy(jaeger: RunningJaeger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Envoy, int]]:
    folder = tmp_path_factory.mktemp("envoy")
    listen = free_port()
    (folder / "bootstrap.json").write_text(json.dumps(bootstrap(listen, free_port(), jaeger.otlp)))
    with Envoy(folder / "bootstrap.json", folder / "envoy.log").start() as running:
        yield running, listen


def test_envoys_span_joins_the_callers_trace(jaeger: RunningJaeger, envoy: tuple[Envoy, int]) -> None:
    _, port = envoy
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = requests.get(f"http://127.0.0.1:{port}/products", timeout=10,
                     headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert r.status_code == 200 and r.text == "ok"
    found = until("Envoy's span in Jaeger", lambda: jaeger.get(f"/api/traces/{trace_id}").ok, timeout=20)
    assert found
    trace = jaeger.get(f"/api/traces/{trace_id}").json()["data"][0]
    [span] = trace["spans"]
    assert trace["processes"][span["processID"]]["serviceName"] == "edge.test"
    assert span["operationName"] == "edge-answer"
    assert span["references"] == [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["span.kind"] == "server" and str(tags["http.status_code"]) == "200"
    assert "edge.test" in jaeger.get("/api/services").json()["data"]


def test_a_failed_request_is_an_error_span_found_by_its_tags(jaeger: RunningJaeger, envoy: tuple[Envoy, int]) -> None:
    _, port = envoy
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    r = requests.get(f"http://127.0.0.1:{port}/fail", timeout=10,
                     headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert r.status_code == 503
    until("Envoy's error span in Jaeger", lambda: jaeger.get(f"/api/traces/{trace_id}").ok, timeout=20)
    [span] = jaeger.get(f"/api/traces/{trace_id}").json()["data"][0]["spans"]
    tags = [(t["key"], t["value"]) for t in span["tags"]]
    assert ("error", True) in tags and ("otel.status_code", "ERROR") in tags and ("http.status_code", "503") in tags
    found = jaeger.get("/api/traces", service="edge.test", tags='{"error":"true"}').json()["data"]
    assert [t["traceID"] for t in found] == [trace_id]
