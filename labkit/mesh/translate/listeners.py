"""The sidecar's two listeners, each an HTTP connection manager: ``virtualOutbound`` (pod IP:15001; in the sim the
app's HTTP proxy, so it takes absolute-form requests) with the fault filter before the router, and
``virtualInbound`` (pod IP:15006, which the sim's Endpoints name instead of Istio's iptables redirect). Both write
the access log ``identity.access_log_format`` describes and trace with Envoy's OpenTelemetry tracer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..identity import INBOUND_PORT, OUTBOUND_PORT, ProxyIdentity, access_log_format
from .endpoints import socket_address
from .naming import INBOUND_LISTENER, INBOUND_ROUTE, OTLP_CLUSTER, OUTBOUND_LISTENER, OUTBOUND_ROUTE
from .policies import FAULT_FILTER, FAULT_TYPE

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ADS = {"ads": {}, "resource_api_version": "V3"}  # istiod's config source; the file delivery rewrites it


@dataclass(frozen=True)
class ProxyOptions:
    """What a sidecar's configuration needs beyond the mesh: where it logs and traces, and its ports (tests move
    them; the sim uses Istio's)."""

    access_log: str | None = None
    otlp_url: str | None = None  # OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces
    sampling: float = 100.0
    outbound_port: int = OUTBOUND_PORT
    inbound_port: int = INBOUND_PORT
    registry_only: bool = False  # meshConfig.outboundTrafficPolicy.mode: ALLOW_ANY (default) or REGISTRY_ONLY


DNS_CACHE = {"name": "passthrough_dns_cache", "dns_lookup_family": "V4_ONLY"}
FORWARD_PROXY = {"name": "envoy.filters.http.dynamic_forward_proxy", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
    "dns_cache_config": DNS_CACHE}}


def _access_log(path: str, reporter: str) -> list[dict[str, Any]]:
    return [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path, "log_format": {"json_format": access_log_format(reporter)}}}]


def tracing(identity: ProxyIdentity, options: ProxyOptions) -> dict[str, Any]:
    """Envoy's OpenTelemetry tracer over OTLP/HTTP, service name ``<app>.<namespace>`` as Istio names it."""
    assert options.otlp_url
    return {"random_sampling": {"value": options.sampling}, "provider": {
        "name": "envoy.tracers.opentelemetry", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "http_service": {"http_uri": {"uri": options.otlp_url, "cluster": OTLP_CLUSTER, "timeout": "5s"}},
            "service_name": identity.cluster}}}


def connection_manager(identity: ProxyIdentity, options: ProxyOptions, route: str, prefix: str, reporter: str,
                       filters: list[dict[str, Any]]) -> dict[str, Any]:
    """An HTTP connection manager reading route configuration ``route`` (by RDS), with the access log and
    tracer ``options`` ask for."""
    config: dict[str, Any] = {
        "@type": HCM_TYPE, "stat_prefix": prefix, "codec_type": "AUTO",
        "rds": {"route_config_name": route, "config_source": ADS},
        "http_filters": [*filters, {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
        "http_protocol_options": {"allow_absolute_url": True},
        # the app's own x-request-id goes on (its logs and the access log agree), as through Istio's sidecars
        "generate_request_id": True, "preserve_external_request_id": True, "use_remote_address": False,
    }
    if options.access_log:
        config["access_log"] = _access_log(options.access_log, reporter)
    if options.otlp_url:
        config["tracing"] = tracing(identity, options)
    return {"name": HCM, "typed_config": config}


def outbound_listener(identity: ProxyIdentity, options: ProxyOptions) -> dict[str, Any]:
    filters = [{"name": FAULT_FILTER, "typed_config": {"@type": FAULT_TYPE}}]
    if not options.registry_only:
        filters.append(FORWARD_PROXY)  # acts on the PassthroughCluster's route only
    hcm = connection_manager(identity, options, OUTBOUND_ROUTE, f"outbound_0.0.0.0_{options.outbound_port}",
                             "source", filters)
    return {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": OUTBOUND_LISTENER,
            "address": socket_address(identity.ip, options.outbound_port), "traffic_direction": "OUTBOUND",
            "filter_chains": [{"filters": [hcm]}]}


def inbound_listener(identity: ProxyIdentity, options: ProxyOptions) -> dict[str, Any]:
    hcm = connection_manager(identity, options, INBOUND_ROUTE, f"inbound_0.0.0.0_{options.inbound_port}",
                             "destination", [])
    return {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": INBOUND_LISTENER,
            "address": socket_address(identity.ip, options.inbound_port), "traffic_direction": "INBOUND",
            "filter_chains": [{"filters": [hcm]}]}
