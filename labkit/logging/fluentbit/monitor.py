"""Fluent Bit's monitoring API (``HTTP_Server On``): ``/``, ``/api/v1/uptime``, ``/api/v1/health`` (with
``Health_Check On``), ``/api/v1/metrics`` (JSON) and ``/api/v1/metrics/prometheus`` (the text format Prometheus
scrapes: ``fluentbit_input_records_total``, ``fluentbit_output_proc_records_total``, ``…_errors_total``,
``…_retries_total`` …, one series per plugin instance by ``name``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import api_app, json_response

VERSION = "3.2.10"  # the Fluent Bit release whose API this follows
INPUT = [("bytes", "fluentbit_input_bytes_total", "Number of input bytes."),
         ("records", "fluentbit_input_records_total", "Number of input records."),
         ("files_opened", "fluentbit_input_files_opened_total", "Total number of opened files"),
         ("files_closed", "fluentbit_input_files_closed_total", "Total number of closed files"),
         ("files_rotated", "fluentbit_input_files_rotated_total", "Total number of rotated files")]
FILTER = [("drop_records", "fluentbit_filter_drop_records_total", "Fluentbit metrics."),
          ("add_records", "fluentbit_filter_add_records_total", "Fluentbit metrics.")]
OUTPUT = [("proc_records", "fluentbit_output_proc_records_total", "Number of processed output records."),
          ("proc_bytes", "fluentbit_output_proc_bytes_total", "Number of processed output bytes."),
          ("errors", "fluentbit_output_errors_total", "Number of output errors."),
          ("retries", "fluentbit_output_retries_total", "Number of output retries."),
          ("retries_failed", "fluentbit_output_retries_failed_total", "Number of abandoned batches because the "
                                                                      "maximum number of re-tries was reached."),
          ("dropped_records", "fluentbit_output_dropped_records_total", "Number of dropped records."),
          ("retried_records", "fluentbit_output_retried_records_total", "Number of retried records.")]

Metrics = dict[str, dict[str, dict[str, int]]]


def prometheus_text(metrics: Metrics, uptime: float, hostname: str) -> str:
    lines = ["# HELP fluentbit_uptime Number of seconds that Fluent Bit has been running.",
             "# TYPE fluentbit_uptime counter", f'fluentbit_uptime{{hostname="{hostname}"}} {int(uptime)}']
    for section, families in (("input", INPUT), ("filter", FILTER), ("output", OUTPUT)):
        for key, family, doc in families:
            series = [(name, values[key]) for name, values in metrics[section].items() if key in values]
            if not series:
                continue
            lines += [f"# HELP {family} {doc}", f"# TYPE {family} counter"]
            lines += [f'{family}{{name="{name}"}} {value}' for name, value in series]
    return "\n".join(lines) + "\n"


def monitoring_app(metrics: Callable[[], Metrics], healthy: Callable[[], bool], health_check: bool,
                   started: float, hostname: str) -> web.Application:
    """The API's aiohttp application (no authentication, as Fluent Bit's)."""
    app = api_app("fluent-bit")

    async def root(request: web.Request) -> web.Response:
        return json_response({"fluent-bit": {"version": VERSION, "edition": "Community",
                                             "flags": ["FLB_HAVE_METRICS", "FLB_HAVE_HTTP_SERVER"]}})

    async def uptime(request: web.Request) -> web.Response:
        secs = int(time.time() - started)
        d, h, m, s = secs // 86400, secs % 86400 // 3600, secs % 3600 // 60, secs % 60
        return json_response({"uptime_sec": secs, "uptime_hr": f"Fluent Bit has been running:  {d} day, {h} hour, "
                                                               f"{m} minute and {s} seconds"})

    async def health(request: web.Request) -> web.Response:
        if not health_check:
            raise ApiError(404, "not_found", "health check is disabled (Health_Check Off)")
        ok = healthy()
        return web.Response(text="ok" if ok else "error", status=200 if ok else 500)

    async def metrics_json(request: web.Request) -> web.Response:
        return json_response(metrics())

    async def metrics_prom(request: web.Request) -> web.Response:
        return web.Response(text=prometheus_text(metrics(), time.time() - started, hostname),
                            content_type="text/plain", charset="utf-8")

    app.router.add_get("/", root)
    app.router.add_get("/api/v1/uptime", uptime)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/metrics", metrics_json)
    app.router.add_get("/api/v1/metrics/prometheus", metrics_prom)
    return app


