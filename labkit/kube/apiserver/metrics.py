"""The API server's own ``/metrics``: ``apiserver_request_total`` (by verb, group, version, resource, subresource,
scope, component and code) and the ``apiserver_request_duration_seconds`` histogram (long-running WATCH and
CONNECT requests left out, as the real API server leaves them out), as kube-apiserver reports them."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from ...core import http_metrics
from ...core.http import UserInfo
from .rbac import request_attributes

BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)
LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
REPORTED = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT", "patch": "PATCH",
            "delete": "DELETE", "deletecollection": "DELETE"}
LONG_RUNNING = ("WATCH", "CONNECT")
NOBODY = UserInfo("")


def labels(request: web.Request) -> dict[str, str]:
    """The request's metric labels, from the same attributes RBAC reads."""
    a = request_attributes(NOBODY, request.method, request.path, request.query)
    verb = REPORTED.get(a.verb, a.verb.upper()) if a.resource_request else request.method
    if verb == "PATCH" and request.content_type == "application/apply-patch+yaml":
        verb = "APPLY"
    if a.subresource in ("exec", "attach", "portforward", "proxy"):
        verb = "CONNECT"
    scope = ("resource" if a.name else "namespace" if a.namespace else "cluster") if a.resource_request else ""
    return {"verb": verb, "dry_run": "All" if request.query.get("dryRun") else "", "group": a.api_group,
            "version": a.api_version, "resource": a.resource, "subresource": a.subresource, "scope": scope,
            "component": "apiserver"}


class RequestMetrics(http_metrics.RequestMetrics):
    """The API server's request counter and latency histogram, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        total = Counter("apiserver_request", "Counter of apiserver requests broken out for each verb, dry run "
                        "value, group, version, resource, scope, component, and HTTP response code.",
                        (*LABELS, "code"), registry=self.registry)
        duration = Histogram("apiserver_request_duration_seconds", "Response latency distribution in seconds "
                             "for each verb, dry run value, group, version, resource, subresource, scope and "
                             "component.", LABELS, buckets=BUCKETS, registry=self.registry)
        super().__init__(labels, total, duration, timed=lambda found: found["verb"] not in LONG_RUNNING)

    def response(self) -> web.Response:
        return http_metrics.exposition(self.registry)
