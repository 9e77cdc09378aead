"""Argo CD's Prometheus metrics, as its components serve them on ``/metrics``: the application controller's
(port 8082) ``argocd_app_info`` (one series per Application, with its ``sync_status`` and ``health_status``),
``argocd_app_sync_total`` (sync operations by ``phase``) and the ``argocd_app_reconcile`` histogram; the API
server's (port 8083) ``grpc_server_handled_total`` (each REST call is a gRPC call behind Argo CD's grpc-gateway:
by service, method and gRPC code); the repo server's (port 8084) ``argocd_git_request_total`` (``ls-remote`` and
``fetch`` per repository)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.http_metrics import RequestMetrics, exposition
from .api.kubeapi import GROUP

if TYPE_CHECKING:
    from .controller import Controller

RECONCILE_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16)  # Argo CD's argocd_app_reconcile buckets
GIT_REQUESTS = ("ls-remote", "fetch")
# the API server's route handlers (class, method) -> (gRPC service, method), where the name does not say it
SERVICES = {"Applications": "application.ApplicationService", "Projects": "project.ProjectService",
            "Repositories": "repository.RepositoryService", "SessionRoutes": "session.SessionService"}
METHODS = {("Applications", "events"): "ListResourceEvents", ("Repositories", "list"): "ListRepositories",
           ("Repositories", "create"): "CreateRepository", ("SessionRoutes", "userinfo"): "GetUserInfo",
           ("SessionRoutes", "version"): "version.VersionService/Version"}
# grpc-gateway's HTTP status for each gRPC code, read backwards
GRPC_CODES = {200: "OK", 400: "InvalidArgument", 401: "Unauthenticated", 403: "PermissionDenied", 404: "NotFound",
              409: "AlreadyExists", 412: "FailedPrecondition", 429: "ResourceExhausted", 499: "Canceled",
              500: "Internal", 501: "Unimplemented", 503: "Unavailable", 504: "DeadlineExceeded"}
INFO_LABELS = ("namespace", "name", "project", "autosync_enabled", "repo", "dest_server", "dest_namespace",
               "sync_status", "health_status", "operation")


def _dest(app: dict[str, Any]) -> dict[str, Any]:
    return (app.get("spec") or {}).get("destination") or {}


def _info(app: dict[str, Any]) -> list[str]:
    spec, status = app.get("spec") or {}, app.get("status") or {}
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    operation = (app.get("operation") or {})
    return [app["metadata"].get("namespace", ""), app["metadata"]["name"], spec.get("project", ""),
            "true" if (spec.get("syncPolicy") or {}).get("automated") is not None else "false",
            source.get("repoURL", ""), _dest(app).get("server", ""), _dest(app).get("namespace", ""),
            (status.get("sync") or {}).get("status", ""), (status.get("health") or {}).get("status", ""),
            "sync" if operation.get("sync") is not None else ""]


class AppInfoCollector(Collector):
    """``argocd_app_info``: the controller's cached Applications at the time of the scrape."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("argocd_app_info", "Information about application.", labels=INFO_LABELS)
        informer = self.controller.cluster.informers.get((GROUP, "Application"))
        for (namespace, _), app in sorted((informer.objects if informer else {}).items()):
            if namespace == self.controller.namespace:
                family.add_metric(_info(app), 1)
        yield family


def grpc_call(request: web.Request) -> dict[str, str] | None:
    """The gRPC service and method behind an API server route (None: not a gRPC call, as the webhook, healthz)."""
    handler = getattr(request.match_info, "handler", None)
    owner, name = type(getattr(handler, "__self__", None)).__name__, getattr(handler, "__name__", "")
    if owner not in SERVICES or name == "healthz":
        return None
    method = METHODS.get((owner, name)) or "".join(part.capitalize() for part in name.split("_"))
    service, _, method = method.rpartition("/") if "/" in method else (SERVICES[owner], "", method)
    return {"grpc_service": service, "grpc_method": method, "grpc_type": "unary"}


def grpc_code(status: int) -> str:
    return GRPC_CODES.get(status, "OK" if status < 400 else "Unknown")


class ArgoCDMetrics:
    """The controller's and the repo server's registries, fed by the controller's hooks; the API server's, fed by
    ``server.middleware``."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.controller_registry, self.repo_registry = CollectorRegistry(), CollectorRegistry()
        self.controller_registry.register(AppInfoCollector(controller))
        self.syncs = Counter("argocd_app_sync", "Number of application syncs.",
                             ("namespace", "name", "project", "dest_server", "phase"),
                             registry=self.controller_registry)
        self.reconciles = Histogram("argocd_app_reconcile", "Application reconciliation performance in seconds.",
                                    ("namespace", "dest_server"), buckets=RECONCILE_BUCKETS,
                                    registry=self.controller_registry)
        self.git = Counter("argocd_git_request", "Number of git requests performed by repo server",
                           ("repo", "request_type"), registry=self.repo_registry)
        self.server_registry = CollectorRegistry()
        self.server = RequestMetrics(grpc_call, Counter(
            "grpc_server_handled", "Total number of RPCs completed on the server, regardless of success or failure.",
            ("grpc_service", "grpc_method", "grpc_type", "grpc_code"), registry=self.server_registry), None,
            code_label="grpc_code", code_name=grpc_code)

    def _app(self, name: str) -> dict[str, Any] | None:
        informer = self.controller.cluster.informers.get((GROUP, "Application"))
        return informer.objects.get((self.controller.namespace, name)) if informer else None

    def reconciled(self, name: str, seconds: float) -> None:
        app = self._app(name)
        if app is not None:
            self.reconciles.labels(self.controller.namespace, _dest(app).get("server", "")).observe(seconds)

    def synced(self, app: dict[str, Any], phase: str) -> None:
        self.syncs.labels(self.controller.namespace, app["metadata"]["name"],
                          (app.get("spec") or {}).get("project", ""), _dest(app).get("server", ""), phase).inc()

    def git_request(self, repo: str, request_type: str) -> None:
        if request_type in GIT_REQUESTS:
            self.git.labels(repo, request_type).inc()

    def app(self, registry: CollectorRegistry) -> web.Application:
        """A ``/metrics`` application serving ``registry``."""
        async def serve(request: web.Request) -> web.Response:
            return exposition(registry)

        metrics = web.Application()
        metrics.router.add_get("/metrics", serve)
        return metrics
