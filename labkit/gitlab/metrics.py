"""GitLab's ``/-/metrics`` (Rails' Prometheus exporter), as GitLab answers it: only to addresses in the monitoring
IP whitelist (``gitlab_rails['monitoring_whitelist']``, by default ``127.0.0.0/8`` and ``::1/128``), 404 to
anyone else. Series: ``http_requests_total`` (method, status), ``http_request_duration_seconds`` (method),
``gitlab_ci_pipeline_creation_duration_seconds`` and ``gitlab_ci_active_jobs`` (the project's active jobs when a
pipeline is created), and the pipelines and jobs the instance holds, by status (``gitlab_ci_pipelines``,
``gitlab_ci_jobs``: the lab's names, GitLab reports these through its separate gitlab-exporter)."""

from __future__ import annotations

import ipaddress
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.http_metrics import RequestMetrics, exposition

PATH = "/-/metrics"
MONITORING_WHITELIST = ("127.0.0.0/8", "::1/128")  # GitLab's default monitoring whitelist
ACTIVE = ("created", "waiting_for_resource", "preparing", "pending", "running", "scheduled")
REQUEST_BUCKETS = (0.005, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25)  # GitLab's http_request_duration_seconds
CREATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 15, 20, 50, 120, 240)
ACTIVE_JOB_BUCKETS = (20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 250, 300, 350, 400, 450, 500)


class CiCollector(Collector):
    """The instance's pipelines and jobs by status, read at each scrape."""

    def __init__(self, projects: Any, pipelines: Any) -> None:
        self.projects, self.pipelines = projects, pipelines

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pipelines, jobs = Tally[str](), Tally[str]()
        for project in self.projects.all():
            pipelines.update(p["status"] for p in self.pipelines.list(project["id"]))
            jobs.update(j["status"] for j in self.pipelines.jobs(project["id"], include_retried=False))
        for name, help_text, tally in (("gitlab_ci_pipelines", "Pipelines by status", pipelines),
                                       ("gitlab_ci_jobs", "Jobs (not retried) by status", jobs)):
            family = GaugeMetricFamily(name, help_text, labels=["status"])
            for status, count in sorted(tally.items()):
                family.add_metric([status], count)
            yield family


class GitLabMetrics:
    """The registry behind ``/-/metrics``; ``install`` counts the requests and serves the endpoint."""

    def __init__(self, projects: Any, pipelines: Any,
                 whitelist: tuple[str, ...] = MONITORING_WHITELIST) -> None:
        self.whitelist = [ipaddress.ip_network(n) for n in whitelist]
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(
            lambda r: None if r.path == PATH else {"method": r.method.lower()},
            Counter("http_requests", "Rack request count", ("method", "status"), registry=self.registry),
            Histogram("http_request_duration_seconds", "HTTP response time", ("method",), buckets=REQUEST_BUCKETS,
                      registry=self.registry), code_label="status")
        self.projects, self.pipelines = projects, pipelines
        self.creation = Histogram("gitlab_ci_pipeline_creation_duration_seconds",
                                  "Time in seconds it takes to create a CI/CD pipeline", buckets=CREATION_BUCKETS,
                                  registry=self.registry)
        self.active_jobs = Histogram("gitlab_ci_active_jobs", "Total amount of active jobs",
                                     buckets=ACTIVE_JOB_BUCKETS, registry=self.registry)
        if pipelines is not None:
            self.registry.register(CiCollector(projects, pipelines))
        observers = getattr(pipelines, "creation_observers", None)  # PipelineService's
        if observers is not None:
            observers.append(self.created)

    def created(self, req: Any, seconds: float) -> None:
        self.creation.observe(seconds)
        self.active_jobs.observe(sum(j["status"] in ACTIVE for j in self.pipelines.jobs(req.project.id)))

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.requests.middleware)
        app.router.add_get(PATH, self.serve)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        try:
            allowed = any(ipaddress.ip_address(request.remote or "") in n for n in self.whitelist)
        except ValueError:
            allowed = False
        if not allowed:  # GitLab answers 404 outside the whitelist, as if the page did not exist
            return web.Response(status=404, text="404 Not Found\n")
        return exposition(self.registry)
