"""istiod's translation for the sim: Kubernetes Services and Pods plus Istio's networking resources in, one
sidecar's Envoy configuration (listeners, route configurations, clusters with their endpoints) out.

``Mesh.from_objects`` reads the API objects; :func:`translate` builds a :class:`ProxyConfig` for one
:class:`~labkit.mesh.identity.ProxyIdentity`; ``labkit.mesh.xds`` delivers it to a running Envoy. What the sim
does not translate is listed in ``ProxyConfig.warnings`` (never silently dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...core.network import is_loopback
from ..identity import ProxyIdentity
from .clusters import inbound_clusters, otlp_cluster, passthrough_cluster, service_clusters, unique
from .inputs import Mesh
from .listeners import DNS_CACHE, ProxyOptions, inbound_listener, outbound_listener
from .naming import OTLP_CLUSTER
from .routes import OutboundRoutes, inbound_route_config

__all__ = ["Mesh", "ProxyConfig", "ProxyOptions", "translate"]


@dataclass
class ProxyConfig:
    """One sidecar's xDS resources (each with its ``@type``), and what was not translated."""

    listeners: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def cluster(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.clusters if c["name"] == name), None)

    def route(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.routes if r["name"] == name), None)


def _on_loopback(cluster: dict[str, Any]) -> bool:
    """A static cluster whose endpoints are all on loopback (a pod's address can be the source only there: not
    for the passthrough, DNS or outside ServiceEntry endpoints)."""
    if cluster.get("type") != "STATIC" or "load_assignment" not in cluster:
        return False
    hosts = [e["endpoint"]["address"]["socket_address"]["address"]
             for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    return all(is_loopback(h) for h in hosts)


def translate(mesh: Mesh, identity: ProxyIdentity, options: ProxyOptions | None = None) -> ProxyConfig:
    """The Envoy configuration istiod would push to ``identity``'s sidecar."""
    options = options or ProxyOptions()
    warnings: list[str] = [f"Sidecar {r.namespace}/{r.name} is not supported by the labkit simulator (ignored)"
                           for r in mesh.of_kind("Sidecar")]
    outbound = OutboundRoutes(mesh, identity, warnings, options.registry_only)
    outbound_routes = outbound.build()
    pod = mesh.pod(identity.namespace, identity.pod)
    inbound_routes, app_ports = inbound_route_config(mesh, identity, pod)
    clusters = [c for service in mesh.services for port in service.ports
                for c in service_clusters(mesh, service, port, identity.namespace, options.inbound_port, warnings)]
    clusters = unique(clusters)
    clusters += inbound_clusters(identity.ip, app_ports)
    if not options.registry_only:
        clusters.append(passthrough_cluster(DNS_CACHE))
    if options.otlp_url:
        url = urlsplit(options.otlp_url)
        clusters.append(otlp_cluster(OTLP_CLUSTER, url.hostname or "127.0.0.1", url.port or 4318))
    for cluster in clusters:
        if _on_loopback(cluster):  # the destination sees the pod's own address as its peer, as in Istio
            cluster["upstream_bind_config"] = {"source_address": {"address": identity.ip, "port_value": 0}}
    return ProxyConfig([outbound_listener(identity, options), inbound_listener(identity, options)],
                       [outbound_routes, inbound_routes], clusters, sorted(set(warnings)))
