"""Jaeger's OTLP/HTTP receiver with the clients that send to it: the OpenTelemetry SDK's exporter (protobuf,
gzip), OTLP-JSON by plain HTTP (hex ids, every attribute type, links), and the Collector's error answers."""

from __future__ import annotations

import time
from typing import Any

import requests
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from .jaeger_fixtures import RunningJaeger, hex_id, jaeger_fixture  # noqa: F401 - the fixture

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, CHILD, LINKED = "eee19b7ec3c1b174", "eee19b7ec3c1b173", "00f067aa0ba902b7"


def _json_request(now_ns: int) -> dict[str, Any]:
    """OTLP-JSON as the spec spells it: camelCase, hex ids, int64 as strings, enums as numbers."""
    def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "value": value}

    return {"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", {"stringValue": "json-svc"}),
                                    attr("host.name", {"stringValue": "node-1"})]},
        "scopeSpans": [{"scope": {"name": "manual", "version": "0.1"}, "spans": [
            {"traceId": TRACE, "spanId": ROOT, "name": "root", "kind": 2,
             "startTimeUnixNano": str(now_ns), "endTimeUnixNano": str(now_ns + 3_000_000),
             "attributes": [attr("s", {"stringValue": "x"}), attr("b", {"boolValue": True}),
                            attr("i", {"intValue": "42"}), attr("big", {"intValue": str(2**60)}),
                            attr("d", {"doubleValue": 0.5}), attr("raw", {"bytesValue": "AQI="}),
                            attr("list", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}),
                            attr("map", {"kvlistValue": {"values": [attr("k", {"boolValue": False})]}})],
             "status": {"code": 1}},
            {"traceId": TRACE, "spanId": CHILD, "parentSpanId": ROOT, "name": "child", "kind": 3,
             "startTimeUnixNano": str(now_ns + 1_000_000), "endTimeUnixNano": str(now_ns + 2_000_000),
             "traceState": "vendor=1",
             "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": LINKED}],
             "events": [{"timeUnixNano": str(now_ns + 1_500_000), "name": "retry",
                         "attributes": [attr("attempt", {"intValue": "2"})]}]},
        ]}]}]}


def test_otlp_json_spans_keep_their_types(jaeger: RunningJaeger) -> None:
    now = time.time_ns()
    r = requests.post(f"{jaeger.otlp}/v1/traces", json=_json_request(now), timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json") and r.json() == {}
    trace = jaeger.get(f"/api/traces/{TRACE}").json()["data"][0]
    root, child = trace["spans"]
    assert trace["processes"]["p1"] == {"serviceName": "json-svc",
                                        "tags": [{"key": "host.name", "type": "string", "value": "node-1"}]}
    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert tags["s"] == ("string", "x") and tags["b"] == ("bool", True) and tags["i"] == ("int64", 42)
    assert tags["big"] == ("int64", str(2**60))  # beyond JavaScript's integers, a string as Jaeger's UI model
    assert tags["d"] == ("float64", 0.5) and tags["raw"] == ("binary", "AQI=")
    assert tags["list"] == ("string", '["a",1]') and tags["map"] == ("string", '{"k":false}')
    assert tags["otel.status_code"] == ("string", "OK") and "error" not in tags
    assert tags["otel.scope.version"] == ("string", "0.1")
    assert root["startTime"] == now // 1000 and root["duration"] == 3000
    assert child["references"] == [
        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": ROOT},
        {"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": LINKED}]
    assert {"key": "w3c.tracestate", "type": "string", "value": "vendor=1"} in child["tags"]
    assert child["logs"] == [{"timestamp": (now + 1_500_000) // 1000, "fields": [
        {"key": "event", "type": "string", "value": "retry"}, {"key": "attempt", "type": "int64", "value": 2}]}]
    v3 = jaeger.get(f"/api/v3/traces/{TRACE}").json()["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert v3[1]["links"] == [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": LINKED}]


def test_a_span_sent_twice_is_stored_once(jaeger: RunningJaeger) -> None:
    body = _json_request(time.time_ns())
    body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] = "twice-svc"
    for _ in range(2):
        assert requests.post(f"{jaeger.otlp}/v1/traces", json=body, timeout=10).status_code == 200
    assert len(jaeger.get("/api/traces", service="twice-svc").json()["data"][0]["spans"]) == 2


def test_the_sdk_exporter_with_gzip(jaeger: RunningJaeger) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "gzip-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{jaeger.otlp}/v1/traces", compression=Compression.Gzip, timeout=10)))
    with provider.get_tracer("t").start_as_current_span("compressed") as span:
        pass
    provider.shutdown()
    trace = jaeger.get(f"/api/traces/{hex_id(span.get_span_context().trace_id)}").json()["data"][0]
    assert [s["operationName"] for s in trace["spans"]] == ["compressed"]


def _status(r: requests.Response) -> status_pb2.Status:
    status = status_pb2.Status()
    status.ParseFromString(r.content)
    return status


def test_the_collectors_errors(jaeger: RunningJaeger) -> None:
    url = f"{jaeger.otlp}/v1/traces"
    bad = requests.post(url, data=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/x-protobuf"
    assert _status(bad).code == 3 and "proto" in _status(bad).message
    bad_json = requests.post(url, data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad_json.status_code == 400 and bad_json.json()["code"] == 3
    zero = _json_request(time.time_ns())
    zero["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "0" * 32
    invalid = requests.post(url, json=zero, timeout=10)
    assert invalid.status_code == 400 and "invalid trace id" in invalid.json()["message"]
    text = requests.post(url, data=b"x", headers={"Content-Type": "text/plain"}, timeout=10)
    assert text.status_code == 415 and text.json() == {
        "code": 12, "message": "415 unsupported media type, supported: [application/json, application/x-protobuf]"}
    get = requests.get(url, timeout=10)
    assert get.status_code == 405 and get.json()["message"] == "405 method not allowed, supported: [POST]"
    gz = requests.post(url, data=b"not gzip", timeout=10,
                       headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert gz.status_code == 400 and gz.json()["message"].startswith("failed to decompress gzip body")


def test_jaegers_adjusters_unless_raw(jaeger: RunningJaeger) -> None:
    trace_id, now = "6b8efff798038103d269b633813fc60c", time.time_ns()
    body = _json_request(now)
    root, child = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for span in (root, child):
        span["traceId"] = trace_id
    root["attributes"].append({"key": "telemetry.sdk.name", "value": {"stringValue": "handmade"}})
    child["events"] = [{"timeUnixNano": str(now + 1), "name": "zeta", "attributes": [
                           {"key": "event", "value": {"stringValue": "named-by-attribute"}}]},
                       {"timeUnixNano": str(now + 2), "name": "alpha"}]
    child["links"] = [{"traceId": trace_id, "spanId": ROOT, "attributes": [
        {"key": "opentracing.ref_type", "value": {"stringValue": "follows_from"}}]}, {"spanId": LINKED}]
    assert requests.post(f"{jaeger.otlp}/v1/traces", json=body, timeout=10).status_code == 200

    adjusted = jaeger.get(f"/api/traces/{trace_id}").json()["data"][0]
    a_root, a_child = adjusted["spans"]
    keys = [t["key"] for t in a_root["tags"]]
    assert keys[:2] == ["otel.scope.name", "otel.scope.version"]
    assert keys[2:10] == sorted(keys[2:10]) == ["b", "big", "d", "i", "list", "map", "raw", "s"]
    assert "telemetry.sdk.name" not in keys  # moved to the process
    assert {"key": "telemetry.sdk.name", "type": "string", "value": "handmade"} in \
        adjusted["processes"][a_root["processID"]]["tags"]
    assert [log["fields"][0]["value"] for log in a_child["logs"]] == ["alpha", "named-by-attribute"]
    assert a_child["references"] == [{"refType": "FOLLOWS_FROM", "traceID": trace_id, "spanID": ROOT}]

    raw = jaeger.get(f"/api/traces/{trace_id}", raw="true").json()["data"][0]
    r_root, r_child = raw["spans"]
    assert [t["key"] for t in r_root["tags"]][2:5] == ["s", "b", "i"]
    assert "telemetry.sdk.name" in [t["key"] for t in r_root["tags"]]
    assert [log["fields"][0]["value"] for log in r_child["logs"]] == ["named-by-attribute", "alpha"]
    assert len(r_child["references"]) == 2  # the link without a trace id is still there
    v3_raw = jaeger.get(f"/api/v3/traces/{trace_id}", raw_traces="true").json()["result"]["resourceSpans"]
    assert [a["key"] for a in v3_raw[0]["scopeSpans"][0]["spans"][0]["attributes"]][:3] == ["s", "b", "i"]
    assert jaeger.get(f"/api/traces/{trace_id}", raw="maybe").json()["errors"] == [
        {"code": 400, "msg": "unable to parse param 'raw': strconv.ParseBool: parsing \"maybe\": invalid syntax"}]
