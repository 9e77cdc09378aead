"""OTLP/HTTP trace payloads (``POST /v1/traces``) in both encodings the spec allows, as the OpenTelemetry
Collector's receiver reads them: binary protobuf (``application/x-protobuf``, what the Python exporter and Envoy's
OpenTelemetry tracer send) and OTLP-JSON (``application/json``: lowerCamelCase keys, trace and span ids in hex,
enums as integers); a gzip body is undone by the HTTP server. Spans become :class:`SpanDoc` dicts: the span's own
OTLP-JSON with its resource and scope beside it, which is what the store keeps and ``/api/v3`` returns."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUPPORTED = (JSON, PROTOBUF)

SpanDoc = dict[str, Any]  # {"span": OTLP-JSON span, "resource": OTLP-JSON resource, "scope": OTLP-JSON scope}


class BadPayload(ValueError):
    """A request the receiver rejects with 400 (the message is the Collector's or says what is wrong)."""


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header (``application/json; charset=utf-8`` → ``application/json``)."""
    return content_type.split(";", 1)[0].strip().lower()


def parse_request(body: bytes, mtype: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from a body of media type ``mtype`` (one of :data:`SUPPORTED`)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    if mtype == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as err:
            raise BadPayload(f"proto: cannot parse invalid wire-format data: {err}") from err
        return request
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise BadPayload(f"ReadObject: invalid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise BadPayload("ReadObject: expect { or n, but found " + body[:1].decode(errors="replace"))
    _hex_ids_to_base64(doc)
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise BadPayload(str(err)) from err
    return request


def span_docs(request: trace_service_pb2.ExportTraceServiceRequest) -> list[SpanDoc]:
    """Every span of a request with its resource and scope, ids in hex (OTLP-JSON's spelling)."""
    docs: list[SpanDoc] = []
    for resource_spans in request.resource_spans:
        resource = _to_json(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            scope = _to_json(scope_spans.scope)
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    raise BadPayload(f"span {span.name!r}: invalid trace id (16 bytes, not all zero)")
                if len(span.span_id) != 8 or not any(span.span_id):
                    raise BadPayload(f"span {span.name!r}: invalid span id (8 bytes, not all zero)")
                doc = _to_json(span)
                _base64_ids_to_hex(doc)
                docs.append({"span": doc, "resource": resource, "scope": scope})
    return docs


def export_response(mtype: str) -> tuple[bytes, str]:
    """The success answer (an empty ``ExportTraceServiceResponse``) in the request's encoding."""
    if mtype == PROTOBUF:
        return trace_service_pb2.ExportTraceServiceResponse().SerializeToString(), PROTOBUF
    return b"{}", JSON


def status_body(code: int, message: str, mtype: str) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` (the Collector's error body) in the request's encoding, JSON when unknown."""
    status = status_pb2.Status(code=code, message=message)
    if mtype == PROTOBUF:
        return status.SerializeToString(), PROTOBUF
    return json.dumps(json_format.MessageToDict(status)).encode(), JSON


def _to_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, use_integers_for_enums=True)


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _each_span(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The span objects of an OTLP-JSON request, and their links (the objects holding ids)."""
    found: list[dict[str, Any]] = []
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            for span in _list(ss, "spans"):
                if isinstance(span, dict):
                    found.append(span)
                    found.extend(link for link in _list(span, "links") if isinstance(link, dict))
    return found


def _list(doc: Any, *keys: str) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    for key in keys:
        value = doc.get(key)
        if isinstance(value, list):
            return value
    return []


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    for obj in _each_span(doc):
        for key in _ID_FIELDS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                try:
                    obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as err:
                    raise BadPayload(f"invalid {key} {value!r}: not hex") from err


def _base64_ids_to_hex(span: dict[str, Any]) -> None:
    for obj in (span, *span.get("links", [])):
        for key in ("traceId", "spanId", "parentSpanId"):
            if obj.get(key):
                obj[key] = base64.b64decode(obj[key]).hex()
