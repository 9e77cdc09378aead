"""Reading traces from a Jaeger query service — the sim's or a real Jaeger v2 (kind) — for the notebook view:
services and search through ``/api/v3`` (what Jaeger keeps as its UI moves to it), a trace in the UI model through
``/api/traces/{id}`` (what the waterfall draws)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from .views import waterfall_rows

if TYPE_CHECKING:
    import pandas as pd


class JaegerError(RuntimeError):
    """An error answer of the query service (its message as Jaeger wrote it)."""


class JaegerClient:
    def __init__(self, url: str, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # loopback / NodePort: never through a proxy

    def _get(self, path: str, **params: Any) -> Any:
        r = self.session.get(self.url + path, params=params, timeout=self.timeout)
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200:
            if isinstance(body, dict) and body.get("errors"):
                raise JaegerError(body["errors"][0].get("msg", r.text))
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                raise JaegerError(body["error"].get("message", r.text))
            raise JaegerError(f"HTTP {r.status_code}: {r.text.strip()}")
        return body

    def services(self) -> list[str]:
        return sorted(self._get("/api/v3/services").get("services", []))

    def operations(self, service: str, span_kind: str = "") -> list[dict[str, str]]:
        return self._get("/api/v3/operations", service=service, spanKind=span_kind).get("operations", [])

    def find_trace_ids(self, service: str, operation: str = "", lookback: timedelta = timedelta(hours=1),
                       limit: int = 20, min_duration: str = "", attributes: dict[str, str] | None = None) -> list[str]:
        """The ids of the latest traces through ``service`` (newest first); [] when none."""
        end = datetime.now(UTC)
        params = {"query.service_name": service, "query.start_time_min": (end - lookback).isoformat(),
                  "query.start_time_max": end.isoformat(), "query.search_depth": str(limit)}
        if operation:
            params["query.operation_name"] = operation
        if min_duration:
            params["query.duration_min"] = min_duration
        if attributes:
            params["query.attributes"] = json.dumps(attributes)
        try:
            body = self._get("/api/v3/traces", **params)
        except JaegerError as err:
            if str(err) == "No traces found":
                return []
            raise
        latest: dict[str, int] = {}
        for rs in body["result"].get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    start = int(span.get("startTimeUnixNano", 0))
                    latest[span["traceId"]] = max(latest.get(span["traceId"], 0), start)
        return sorted(latest, key=latest.__getitem__, reverse=True)

    def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace in Jaeger's UI model (``traceID``, ``spans``, ``processes``)."""
        return self._get(f"/api/traces/{trace_id}")["data"][0]

    def spans(self, trace_id: str) -> pd.DataFrame:
        """A trace's spans as the waterfall orders them: service, operation, depth, start/duration ms, error."""
        import pandas as pd

        return pd.DataFrame([r.__dict__ for r in waterfall_rows(self.trace(trace_id))])
