"""Harbor's Prometheus metrics on a listener of their own (port 8001, the Harbor chart's metrics port):
``/metrics`` is the exporter's, ``?comp=core`` and ``?comp=registry`` select the core's and the registry's, as
the nginx of Harbor's compose install routes them on its single metrics port:

* the exporter's series, read from Harbor's database at each scrape: ``harbor_project_total``,
  ``harbor_project_repo_total``, ``harbor_project_member_total``, ``harbor_project_quota_usage_byte``,
  ``harbor_project_quota_byte``, ``harbor_artifact_pulled``;
* the core's ``harbor_core_http_request_total`` and ``harbor_core_http_request_duration_seconds`` (by method and
  API operation; a summary, of which the lab reports the count and sum, not quantiles);
* the registry's (distribution's) ``registry_http_requests_total`` and ``registry_http_request_duration_seconds``
  (by route handler and method).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ...core.http_metrics import RequestMetrics, exposition

if TYPE_CHECKING:
    from .service import Harbor

OPERATION = web.RequestKey("harbor_operation", str)  # the Harbor API operation a request was routed to
COMPONENTS = ("exporter", "core", "registry")
# distribution's route names (registry/api/v2/routes.go), as its metrics label them
UPLOAD = re.compile(r"^/v2/.+/blobs/uploads/[^/]+$")
ROUTES = ((re.compile(r"^/v2/?$"), "base"), (re.compile(r"^/v2/_catalog$"), "catalog"),
          (re.compile(r"^/v2/.+/tags/list$"), "tags"), (re.compile(r"^/v2/.+/manifests/[^/]+$"), "manifest"),
          (re.compile(r"^/v2/.+/blobs/uploads/?$"), "blob_upload"), (UPLOAD, "blob_upload_chunk"),
          (re.compile(r"^/v2/.+/blobs/[^/]+$"), "blob"), (re.compile(r"^/v2/.+/referrers/[^/]+$"), "referrers"))
# distribution's duration buckets (prometheus' defaults)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def operation_id(handler_name: str) -> str:
    """Harbor's swagger operation id for one of the lab's route handlers (``list_projects`` -> ``listProjects``)."""
    head, *rest = handler_name.strip("_").split("_")
    return head + "".join(part.capitalize() for part in rest)


def registry_handler(path: str) -> str | None:
    for pattern, name in ROUTES:
        if pattern.match(path):
            return name
    return None


class ExporterCollector(Collector):
    """The exporter's series, from Harbor's database at collection time."""

    def __init__(self, harbor: Harbor) -> None:
        self.harbor = harbor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self.harbor.store
        projects = store.projects()
        total = GaugeMetricFamily("harbor_project_total", "Total project number", labels=["public"])
        repos = GaugeMetricFamily("harbor_project_repo_total", "Total project repository number",
                                  labels=["project_name", "public"])
        members = GaugeMetricFamily("harbor_project_member_total", "Total members number of a project",
                                    labels=["project_name"])
        usage = GaugeMetricFamily("harbor_project_quota_usage_byte", "The used resource of a project",
                                  labels=["project_name"])
        quota = GaugeMetricFamily("harbor_project_quota_byte", "The quota of a project", labels=["project_name"])
        pulled = GaugeMetricFamily("harbor_artifact_pulled", "The pull number of an artifact",
                                   labels=["project_name"])
        for public in ("true", "false"):
            total.add_metric([public], sum(p["public"] == public for p in projects))
        for p in projects:
            name = p["name"]
            rows = store.repositories(p["project_id"])
            repos.add_metric([name, p["public"]], len(rows))
            members.add_metric([name], len(store.members(p["project_id"])))
            usage.add_metric([name], self.harbor.events.usage(name))
            quota.add_metric([name], p["storage_limit"])
            pulled.add_metric([name], sum(int(r["pull_count"]) for r in rows))
        yield from (total, repos, members, usage, quota, pulled)


class HarborMetrics:
    """The three components' registries; ``install`` counts the registry listener's requests, ``app`` is the
    metrics listener."""

    def __init__(self, harbor: Harbor) -> None:
        self.registries = {c: CollectorRegistry() for c in COMPONENTS}
        self.registries["exporter"].register(ExporterCollector(harbor))
        core, registry = self.registries["core"], self.registries["registry"]
        self.core = RequestMetrics(
            self._core_labels,
            Counter("harbor_core_http_request", "The total number of requests", ("method", "operation", "code"),
                    registry=core),
            Summary("harbor_core_http_request_duration_seconds", "The time duration of the requests",
                    ("method", "operation"), registry=core))
        self.registry = RequestMetrics(
            self._registry_labels,
            Counter("registry_http_requests", "Total number of HTTP requests made.", ("handler", "method", "code"),
                    registry=registry),
            Histogram("registry_http_request_duration_seconds", "The HTTP request latencies in seconds.",
                      ("handler", "method"), buckets=BUCKETS, registry=registry))

    @staticmethod
    def _core_labels(request: web.Request) -> dict[str, str] | None:
        return {"method": request.method, "operation": request.get(OPERATION, "")}

    @staticmethod
    def _registry_labels(request: web.Request) -> dict[str, str] | None:
        handler = registry_handler(request.path) if request.path.startswith("/v2") else None
        return None if handler is None else {"handler": handler, "method": request.method.lower()}

    def install(self, app: web.Application) -> None:
        """Count the requests of the registry's listener (core sees every one, as Harbor's core proxies /v2)."""
        app.middlewares.extend([self.core.middleware, self.registry.middleware])

    def app(self) -> web.Application:
        metrics = web.Application()
        metrics.router.add_get("/metrics", self.serve)
        return metrics

    async def serve(self, request: web.Request) -> web.StreamResponse:
        comp = request.query.get("comp", "exporter")
        if comp not in self.registries:
            return web.Response(status=404, text=f"metrics of component {comp!r}: not supported by the labkit "
                                                 f"simulator (it has {', '.join(COMPONENTS)})\n")
        return exposition(self.registries[comp])
