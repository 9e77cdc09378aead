"""Jaeger's query-time adjusters (``jaegerquery/internal/adjuster``) that change what a stored trace looks like,
applied unless the caller asks for raw traces: attributes sorted by key (resource, scope, span, event, link),
events sorted by name, ``telemetry.sdk.*``/``telemetry.distro.*`` span attributes moved to the resource, links
without a trace id removed. (Clock skew correction is left out: every sim process shares one clock.)"""

from __future__ import annotations

import copy
from typing import Any

from .store import StoredSpan

LIBRARY_KEYS = {"telemetry.sdk.language", "telemetry.sdk.name", "telemetry.sdk.version",
                "telemetry.distro.name", "telemetry.distro.version"}


def _sorted(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(attributes, key=lambda a: a.get("key", ""))


def _adjust_doc(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    span, resource, scope = doc["span"], doc.setdefault("resource", {}), doc.setdefault("scope", {})
    have = {a["key"]: a.get("value") for a in resource.get("attributes", [])}
    kept = []
    for attr in span.get("attributes", []):
        if attr["key"] in LIBRARY_KEYS and have.get(attr["key"], attr.get("value")) == attr.get("value"):
            if attr["key"] not in have:
                resource.setdefault("attributes", []).append(attr)
                have[attr["key"]] = attr.get("value")
        else:
            kept.append(attr)
    for holder, attrs in ((span, kept), (resource, resource.get("attributes")), (scope, scope.get("attributes"))):
        if attrs:
            holder["attributes"] = _sorted(attrs)
        elif holder is span:
            holder.pop("attributes", None)
    if span.get("events"):
        span["events"] = sorted(span["events"], key=lambda e: e.get("name", ""))
        for event in span["events"]:
            if event.get("attributes"):
                event["attributes"] = _sorted(event["attributes"])
    if "links" in span:
        span["links"] = [link for link in span["links"] if link.get("traceId")]
        for link in span["links"]:
            if link.get("attributes"):
                link["attributes"] = _sorted(link["attributes"])
        if not span["links"]:
            del span["links"]
    return doc


def adjusted(spans: list[StoredSpan], raw: bool = False) -> list[StoredSpan]:
    """A trace's spans as Jaeger's standard adjusters leave them (``raw``: as stored)."""
    if raw:
        return spans
    return [StoredSpan(s.trace_id, s.span_id, s.parent_id, s.service, s.operation, s.kind, s.start_us,
                       s.duration_us, _adjust_doc(s.doc)) for s in spans]
