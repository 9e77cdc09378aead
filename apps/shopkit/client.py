"""Calls to other shop services by name (``http://catalog:8080``), traced and with ``traceparent``.

urllib's default opener honours ``HTTP_PROXY``/``NO_PROXY``: in the sim the kubelet points them at the
node's service proxy, which resolves service names; in a cluster, DNS does.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .app import HttpError


class Upstream:
    """Another service, e.g. ``Upstream(tracer, "catalog", "http://catalog:8080")``."""

    def __init__(self, tracer: Tracer, name: str, url: str, timeout: float | None = None) -> None:
        self.tracer, self.name, self.url = tracer, name, url.rstrip("/")
        self.timeout = timeout if timeout is not None else float(os.environ.get("UPSTREAM_TIMEOUT", "3"))
        self.opener = urllib.request.build_opener()  # with the environment's proxies

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON); an unreachable service is HttpError 502 (504 on a timeout)."""
        with self.tracer.start_as_current_span(f"{method} {self.name}", kind=SpanKind.CLIENT,
                                               attributes={"http.request.method": method,
                                                           "server.address": self.name,
                                                           "url.full": self.url + path}) as span:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
            propagate.inject(headers)
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with self.opener.open(request, timeout=self.timeout) as resp:
                    status, raw = resp.status, resp.read()
            except urllib.error.HTTPError as err:
                status, raw = err.code, err.read()
            except TimeoutError as err:
                span.set_status(Status(StatusCode.ERROR, str(err)))
                raise HttpError(504, f"{self.name} did not answer in {self.timeout}s") from err
            except (urllib.error.URLError, OSError) as err:
                span.set_status(Status(StatusCode.ERROR, str(err)))
                raise HttpError(502, f"{self.name} is unreachable: {getattr(err, 'reason', err)}") from err
            span.set_attribute("http.response.status_code", status)
            try:
                return status, json.loads(raw or b"null")
            except ValueError:
                return status, {"raw": raw.decode(errors="replace")[:200]}

    def get_ok(self, path: str) -> Any:
        """GET that passes a 404 through and turns any other failure into 502."""
        status, data = self.call("GET", path)
        if status == 404:
            raise HttpError(404, (data or {}).get("error", "not found"))
        if status >= 400:
            raise HttpError(502, f"{self.name} answered {status}")
        return data
