"""Jaeger's UI model (``internal/uimodel``): traces as ``/api/traces`` returns them, converted from OTLP as
Jaeger does (the Collector's OTLP→Jaeger translator, then ``uimodel/converter/v1/json``): typed tags, the span
kind as ``span.kind``, an error status as ``error: true`` and ``otel.status_code``, the scope as
``otel.scope.name``/``otel.scope.version``, events as logs with an ``event`` field, the parent as a ``CHILD_OF``
reference and links as ``FOLLOWS_FROM``, and each distinct process (service + resource tags) once in
``processes`` (``p1``, ``p2`` …)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .store import StoredSpan, service_of

JS_MAX_SAFE = 2**53 - 1
STATUS = {1: "OK", 2: "ERROR"}


def trace_id_text(hex32: str) -> str:
    """Jaeger's spelling of a trace id: 16 hex digits when the high half is zero, else 32."""
    return hex32[16:] if hex32.startswith("0" * 16) else hex32


def tag(key: str, value: dict[str, Any]) -> dict[str, Any]:
    """A typed Jaeger tag from an OTLP-JSON ``AnyValue``."""
    if "stringValue" in value:
        return {"key": key, "type": "string", "value": value["stringValue"]}
    if "boolValue" in value:
        return {"key": key, "type": "bool", "value": bool(value["boolValue"])}
    if "intValue" in value:
        number = int(value["intValue"])
        return {"key": key, "type": "int64", "value": number if abs(number) <= JS_MAX_SAFE else str(number)}
    if "doubleValue" in value:
        return {"key": key, "type": "float64", "value": float(value["doubleValue"])}
    if "bytesValue" in value:
        return {"key": key, "type": "binary", "value": value["bytesValue"]}
    return {"key": key, "type": "string", "value": json.dumps(_plain(value), separators=(",", ":"))}


def _plain(value: dict[str, Any]) -> Any:
    """An array or kvlist AnyValue as plain JSON (how the translator flattens them into a string tag)."""
    if "arrayValue" in value:
        return [_plain(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _plain(kv.get("value", {}))
                for kv in sorted(value["kvlistValue"].get("values", []), key=lambda kv: kv["key"])}
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return value.get("bytesValue")


def tags(attributes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tag(a["key"], a.get("value", {})) for a in attributes]


def span_tags(s: StoredSpan) -> list[dict[str, Any]]:
    """A span's tags in the translator's order: its scope, its attributes, then what its kind, status and trace
    state say."""
    span, scope = s.doc["span"], s.doc.get("scope", {})
    out = []
    if scope.get("name"):
        out.append({"key": "otel.scope.name", "type": "string", "value": scope["name"]})
    if scope.get("version"):
        out.append({"key": "otel.scope.version", "type": "string", "value": scope["version"]})
    out += tags(span.get("attributes", []))
    if s.kind:
        out.append({"key": "span.kind", "type": "string", "value": s.kind})
    status = span.get("status", {})
    code = STATUS.get(int(status.get("code", 0)))
    if code:
        out.append({"key": "otel.status_code", "type": "string", "value": code})
    if code == "ERROR":
        out.append({"key": "error", "type": "bool", "value": True})
    if status.get("message"):
        out.append({"key": "otel.status_description", "type": "string", "value": status["message"]})
    if span.get("traceState"):
        out.append({"key": "w3c.tracestate", "type": "string", "value": span["traceState"]})
    return out


def logs(s: StoredSpan) -> list[dict[str, Any]]:
    """Events as logs; the event's name becomes an ``event`` field unless an attribute already has that key."""
    out = []
    for event in s.doc["span"].get("events", []):
        attributes = event.get("attributes", [])
        named = event.get("name") and not any(a.get("key") == "event" for a in attributes)
        fields = [{"key": "event", "type": "string", "value": event["name"]}] if named else []
        out.append({"timestamp": int(event.get("timeUnixNano", 0)) // 1000, "fields": fields + tags(attributes)})
    return out


def references(s: StoredSpan) -> list[dict[str, Any]]:
    """The parent first as ``CHILD_OF``, then each link as ``FOLLOWS_FROM`` (``CHILD_OF`` when its
    ``opentracing.ref_type`` says ``child_of``); a link to the parent only sets the parent reference's type."""
    refs = []
    if s.parent_id:
        refs.append({"refType": "CHILD_OF", "traceID": trace_id_text(s.trace_id), "spanID": s.parent_id})
    for link in s.doc["span"].get("links", []):
        ref_type = next((a.get("value", {}).get("stringValue") for a in link.get("attributes", [])
                         if a.get("key") == "opentracing.ref_type"), None)
        ref = {"refType": "CHILD_OF" if ref_type == "child_of" else "FOLLOWS_FROM",
               "traceID": trace_id_text(link.get("traceId", "")), "spanID": link.get("spanId", "")}
        if s.parent_id and link.get("traceId") == s.trace_id and link.get("spanId") == s.parent_id:
            refs[0]["refType"] = ref["refType"]
        else:
            refs.append(ref)
    return refs


def process(s: StoredSpan) -> dict[str, Any]:
    resource = s.doc.get("resource", {})
    return {"serviceName": service_of(resource),
            "tags": tags(a for a in resource.get("attributes", []) if a.get("key") != "service.name")}


def ui_trace(spans: list[StoredSpan]) -> dict[str, Any]:
    """One trace in the UI model (its spans by start time)."""
    processes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    out = []
    for s in sorted(spans, key=lambda x: (x.start_us, x.span_id)):
        proc = process(s)
        key = json.dumps(proc, sort_keys=True)
        if key not in keys:
            keys[key] = f"p{len(keys) + 1}"
            processes[keys[key]] = proc
        out.append({"traceID": trace_id_text(s.trace_id), "spanID": s.span_id, "operationName": s.operation,
                    "references": references(s), "startTime": s.start_us, "duration": s.duration_us,
                    "tags": span_tags(s), "logs": logs(s), "processID": keys[key], "warnings": None})
    return {"traceID": trace_id_text(spans[0].trace_id), "spans": out, "processes": processes, "warnings": None}


def searchable(s: StoredSpan) -> dict[str, set[str]]:
    """What a ``tags`` search compares against, as Jaeger's stores do: the span's tags, its process' tags and its
    logs' fields, each value as a string (``true``, ``200``)."""
    found: dict[str, set[str]] = {}
    fields = span_tags(s) + process(s)["tags"] + [f for log in logs(s) for f in log["fields"]]
    for t in fields:
        value = t["value"]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        found.setdefault(t["key"], set()).add(text)
    return found


def matches_tags(s: StoredSpan, wanted: dict[str, str]) -> bool:
    if not wanted:
        return True
    have = searchable(s)
    return all(value in have.get(key, ()) for key, value in wanted.items())
