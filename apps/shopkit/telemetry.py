"""Metrics, JSON logs and traces for a shop service.

- Prometheus: ``http_requests_total`` and ``http_request_duration_seconds`` (route, method, status),
  plus the process/platform/gc collectors, on a registry of the service's own.
- Logs: one JSON object per line on stdout (time, level, msg, service, pod, and the call's fields).
- Traces: OpenTelemetry spans always (so trace ids reach the logs and W3C ``traceparent`` propagates);
  they are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific
  variable) is set.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LABELS = ("route", "method", "status")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_log_lock = threading.Lock()


class Telemetry:
    """The service's metrics registry, logger and tracer."""

    def __init__(self, service: str, version: str, pod: str, env: Mapping[str, str] = os.environ) -> None:
        self.service, self.version, self.pod = service, version, pod
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.requests = Counter("http_requests", "HTTP requests served", LABELS, registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency", LABELS,
                                 registry=self.registry, buckets=BUCKETS)
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service,
                                    "service.version": version, "service.instance.id": pod,
                                    "k8s.pod.name": pod, "service.namespace": "shop"})
        self.provider = TracerProvider(resource=resource)
        endpoint = otlp_traces_endpoint(env)
        self.exporting = endpoint is not None
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint),
                                                                schedule_delay_millis=1000))
        self.tracer = self.provider.get_tracer(f"shop.{service}", version)

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """A service-specific counter on the service's registry."""
        return Counter(name, documentation, labels, registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)

    def metrics(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def log(self, level: str, msg: str, **fields: Any) -> None:
        now = time.time()
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
                  "level": level, "msg": msg, "service": self.service, "pod": self.pod, **fields}
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with _log_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def flush(self) -> None:
        """Export the spans still queued (at shutdown)."""
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_traces_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the OpenTelemetry variables name, or None (no export)."""
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return None


def trace_ids(span: trace.Span) -> tuple[str, str]:
    """(trace id, span id) in hex, as Jaeger and the ``traceparent`` header spell them."""
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
