"""A tiny HTTP service on the standard library's threading server, with what every shop service needs.

``App.handle`` does one request without sockets (the unit tests call it): routing, W3C trace context,
the knobs, metrics, one JSON log line, and the ``X-Pod-Name`` header. ``App.main`` serves it on
``$HOST:$PORT`` (default 127.0.0.1:8080: a container's manifest sets HOST=0.0.0.0) and stops cleanly on
SIGTERM: not ready at once, still serving for ``SHUTDOWN_DELAY_SECONDS`` (default 6: the time the pod's endpoint
takes to leave the proxies and sidecars that still send it requests, and longer than an Istio sidecar's drain,
``terminationDrainDuration`` 5 s, in which the pod's Envoy still accepts requests for it), then it stops accepting
and finishes the requests in flight.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .knobs import Knobs
from .telemetry import Telemetry, trace_ids

INFRA = ("/healthz", "/readyz", "/metrics", "/admin")


class HttpError(Exception):
    """Answer with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as err:
            raise HttpError(400, f"invalid JSON body: {err}") from err


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode() + b"\n"


Handler = Callable[[Request], Response | Any]
SHUTDOWN_DELAY = 6.0


def shutdown_delay(env: Mapping[str, str]) -> float:
    """``SHUTDOWN_DELAY_SECONDS`` (default 6): how long the service keeps serving after SIGTERM."""
    try:
        return max(0.0, float(env.get("SHUTDOWN_DELAY_SECONDS") or SHUTDOWN_DELAY))
    except ValueError:
        return SHUTDOWN_DELAY


class App:
    """One shop service: ``@app.route("GET", "/products/{id}")`` handlers plus health, metrics and admin."""

    def __init__(self, service: str, env: Mapping[str, str] = os.environ) -> None:
        self.service = service
        self.pod = env.get("POD_NAME") or socket.gethostname()
        self.version = env.get("APP_VERSION") or "dev"
        self.knobs = Knobs.from_env(env)
        self.telemetry = Telemetry(service, self.version, self.pod, env)
        self.tracer = self.telemetry.tracer
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self.route("GET", "/")(lambda r: {"service": self.service, "version": self.version, "pod": self.pod})
        self.route("GET", "/healthz")(lambda r: {"status": "ok"})
        self.route("GET", "/readyz")(self._readyz)
        self.route("GET", "/metrics")(self._metrics)
        self.route("GET", "/admin")(lambda r: self.knobs.state())
        for name in ("slow", "fail", "ready", "reset", "crash"):
            self.route("POST", f"/admin/{name}")(getattr(self, f"_admin_{name}"))

    # -- routing ------------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(fn: Handler) -> Handler:
            self._routes.append((method, regex, pattern, fn))
            return fn

        return register

    def _match(self, method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
        other = ""
        for m, regex, pattern, fn in self._routes:
            found = regex.match(path)
            if found and m == method:
                return pattern, fn, found.groupdict()
            other = other or (pattern if found else "")
        if other:
            return other, None, {"status": "405"}
        return "unmatched", None, {}

    # -- one request -----------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> tuple[
            int, dict[str, str], bytes]:
        """Serve one request: (status, headers, body)."""
        started = time.perf_counter()
        parts = urllib.parse.urlsplit(target)
        route, fn, params = self._match(method, parts.path)
        request = Request(method, parts.path, dict(urllib.parse.parse_qsl(parts.query)), headers, body, params)
        context = propagate.extract({k.lower(): v for k, v in headers.items()})
        with self.tracer.start_as_current_span(f"{method} {route}", context=context, kind=SpanKind.SERVER,
                                               attributes={"http.request.method": method, "url.path": parts.path,
                                                           "http.route": route}) as span:
            response = self._respond(request, route, fn, params)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        seconds = time.perf_counter() - started
        trace_id, span_id = trace_ids(span)
        self.telemetry.observe(route, method, response.status, seconds)
        level = "error" if response.status >= 500 else "warn" if response.status >= 400 else "info"
        self.telemetry.log(level, "request", method=method, route=route, path=parts.path, status=response.status,
                           duration=round(seconds, 6), trace_id=trace_id, span_id=span_id)
        out = {"Content-Type": response.content_type, "X-Pod-Name": self.pod, "X-Trace-Id": trace_id,
               **response.headers}
        return response.status, out, response.payload()

    def _respond(self, request: Request, route: str, fn: Handler | None, params: dict[str, str]) -> Response:
        if fn is None:
            status = 405 if params.get("status") == "405" else 404
            return Response(status, {"error": "method not allowed" if status == 405 else "not found"})
        try:
            if not route.startswith(INFRA) and route != "/":
                if self.knobs.slow_ms:
                    time.sleep(self.knobs.slow_ms / 1000)
                if self.knobs.should_fail():
                    raise HttpError(500, f"injected failure (fail rate {self.knobs.fail_rate})")
            result = fn(request)
        except HttpError as err:
            return Response(err.status, {"error": err.message})
        except Exception as err:  # an unexpected bug answers 500, and the log line says so
            self.telemetry.log("error", "unhandled error", route=route, error=repr(err))
            return Response(500, {"error": "internal error"})
        return result if isinstance(result, Response) else Response(200, result)

    # -- built-in routes ---------------------------------------------------------------------------------------
    def _readyz(self, request: Request) -> Response:
        return Response(200 if self.knobs.ready else 503, {"ready": self.knobs.ready})

    def _metrics(self, request: Request) -> Response:
        data, content_type = self.telemetry.metrics()
        return Response(200, raw=data, content_type=content_type)

    def _knob(self, request: Request, setter: Callable[[str], None], param: str) -> dict[str, object]:
        if param not in request.query:
            raise HttpError(400, f"missing query parameter {param!r}")
        try:
            setter(request.query[param])
        except ValueError as err:
            raise HttpError(400, str(err)) from err
        self.telemetry.log("warn", "knob changed", knobs=self.knobs.state())
        return self.knobs.state()

    def _admin_slow(self, request: Request) -> dict[str, object]:
        return self._knob(request, self.knobs.set_slow, "ms")

    def _admin_fail(self, request: Request) -> dict[str, object]:
        return self._knob(request, self.knobs.set_fail, "rate")

    def _admin_ready(self, request: Request) -> dict[str, object]:
        return self._knob(request, self.knobs.set_ready, "value")

    def _admin_reset(self, request: Request) -> dict[str, object]:
        self.knobs.reset()
        self.telemetry.log("info", "knobs reset")
        return self.knobs.state()

    def _admin_crash(self, request: Request) -> Response:
        code = int(request.query.get("code") or 1)
        self.telemetry.log("error", "crashing as asked", exit_code=code)
        self.telemetry.flush()
        threading.Timer(0.1, os._exit, (code or 1,)).start()  # after the answer is on the wire
        return Response(202, {"crashing": True, "exit_code": code or 1})

    # -- serving -------------------------------------------------------------------------------------------
    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        app = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = f"shop-{app.service}"
            # headers and body are two writes: without TCP_NODELAY a keep-alive client waits for the
            # delayed ACK (40 ms) between them
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = app.handle(self.command, self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # the JSON request log replaces it
                pass

        ThreadingHTTPServer.daemon_threads = True
        return ThreadingHTTPServer((host, port), RequestHandler)

    def main(self, env: Mapping[str, str] = os.environ) -> None:
        """Serve until SIGTERM/SIGINT; exit non-zero at once if ``CRASH_ON_START`` is set."""
        if Knobs.crash_on_start(env):
            self.telemetry.log("error", "crashing on start as asked (CRASH_ON_START)")
            sys.exit(1)
        host, port = env.get("HOST") or "127.0.0.1", int(env.get("PORT") or 8080)
        trace.set_tracer_provider(self.telemetry.provider)
        server = self.server(host, port)

        delay = shutdown_delay(env)

        def stop(signum: int, frame: Any) -> None:
            self.knobs.ready = False
            self.telemetry.log("info", "shutting down", signal=signal.Signals(signum).name, serving_for=delay)
            later = threading.Timer(delay, server.shutdown)
            later.daemon = True
            later.start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.telemetry.log("info", "listening", host=host, port=port, version=self.version,
                           otlp=self.telemetry.exporting)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            self.telemetry.shutdown()
