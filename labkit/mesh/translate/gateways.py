"""An ingress gateway proxy (``istio-ingressgateway``) as istiod configures it: a listener per Gateway server port
(``0.0.0.0_<port>``, route configuration ``http.<port>``), a virtual host per host of each VirtualService bound to
that Gateway (``<host>``, ``<host>:*``), ``blackhole:<port>``'s 404 when none is, and the same clusters as a
sidecar's. Plain HTTP servers only: TLS termination is not supported by the labkit simulator (a warning)."""

from __future__ import annotations

from typing import Any

from ..identity import ProxyIdentity
from . import ProxyConfig
from .clusters import service_clusters, unique
from .endpoints import socket_address
from .inputs import IstioResource, Mesh
from .listeners import ProxyOptions, connection_manager
from .naming import host_matches
from .routes import OutboundRoutes

HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC"}


def gateways_of(mesh: Mesh, identity: ProxyIdentity) -> list[IstioResource]:
    """The Gateways whose ``selector`` matches this proxy's labels (in any namespace, istiod's default)."""
    return [g for g in mesh.of_kind("Gateway")
            if all(identity.labels.get(k) == v for k, v in (g.spec.get("selector") or {}).items())]


def _names(gateway: IstioResource) -> set[str]:
    return {f"{gateway.namespace}/{gateway.name}"}


def _bound(vs: IstioResource, gateway: IstioResource) -> bool:
    refs = {g if "/" in g else f"{vs.namespace}/{g}" for g in vs.spec.get("gateways") or []}
    return bool(refs & _names(gateway))


def _allowed(server_hosts: list[str], vs: IstioResource, host: str) -> bool:
    """A server's ``hosts`` (``host``, ``ns/host``, ``*/host``, wildcards) admit a VirtualService's host."""
    for entry in server_hosts:
        ns, _, pattern = entry.rpartition("/")
        if ns not in ("", "*", ".", vs.namespace):
            continue
        if host_matches(pattern, host) or host_matches(host, pattern):
            return True
    return False


def gateway_routes(mesh: Mesh, identity: ProxyIdentity, port: int, servers: list[tuple[IstioResource, dict[str, Any]]],
                   warnings: list[str]) -> dict[str, Any]:
    builder = OutboundRoutes(mesh, identity, warnings)
    vhosts, seen = [], set()
    for vs in mesh.of_kind("VirtualService"):
        for gateway, server in servers:
            if not _bound(vs, gateway):
                continue
            for host in vs.spec.get("hosts") or []:
                if not _allowed(server.get("hosts") or [], vs, host):
                    continue
                domains = ["*"] if host == "*" else [host, f"{host}:*"]
                if any(d in seen for d in domains):
                    warnings.append(f"VirtualService {vs.namespace}/{vs.name}: host {host} on port {port} is "
                                    "already routed by an older VirtualService (ignored)")
                    continue
                seen.update(domains)
                vhosts.append({"name": f"{host}:{port}", "domains": domains,
                               "routes": builder.vs_routes(vs, host, port, frozenset(_names(gateway))),
                               "request_headers_to_add": builder.peer_headers()})
    if not vhosts:
        vhosts.append({"name": f"blackhole:{port}", "domains": ["*"], "routes": [
            {"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 404}}]})
    return {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": f"http.{port}",
            "virtual_hosts": vhosts, "validate_clusters": False}


def translate_gateway(mesh: Mesh, identity: ProxyIdentity, options: ProxyOptions | None = None,
                      listen: dict[int, int] | None = None) -> ProxyConfig:
    """The configuration istiod pushes to a gateway proxy; ``listen`` maps a server port to the port the sim
    listens on (tests move them; default: the server's own port)."""
    options = options or ProxyOptions()
    warnings: list[str] = []
    by_port: dict[int, list[tuple[IstioResource, dict[str, Any]]]] = {}
    for gateway in gateways_of(mesh, identity):
        for server in gateway.spec.get("servers") or []:
            port = server.get("port") or {}
            protocol = str(port.get("protocol", "HTTP")).upper()
            if protocol not in HTTP_PROTOCOLS or server.get("tls"):
                warnings.append(f"Gateway {gateway.namespace}/{gateway.name}: {protocol} server on port "
                                f"{port.get('number')} is not supported by the labkit simulator (ignored)")
                continue
            by_port.setdefault(int(port["number"]), []).append((gateway, server))
    listeners, routes = [], []
    for port, servers in sorted(by_port.items()):
        routes.append(gateway_routes(mesh, identity, port, servers, warnings))
        hcm = connection_manager(identity, options, f"http.{port}", f"outbound_0.0.0.0_{port}", "source", [])
        listeners.append({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                          "name": f"0.0.0.0_{port}", "traffic_direction": "OUTBOUND",
                          "address": socket_address(identity.ip, (listen or {}).get(port, port)),
                          "filter_chains": [{"filters": [hcm]}]})
    clusters = [c for service in mesh.services for port in service.ports
                for c in service_clusters(mesh, service, port, identity.namespace, options.inbound_port, warnings)]
    clusters = unique(clusters)
    return ProxyConfig(listeners, routes, clusters, sorted(set(warnings)))
