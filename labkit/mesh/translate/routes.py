"""Route configurations as istiod builds them for a sidecar.

Outbound (``virtualOutbound``): a virtual host per service port, whose domains are every name a pod can use; its
routes are the VirtualService's HTTP routes (one Envoy route per match, first match wins, nothing matched is a
404 ``NR``) or, without a VirtualService, the default route to ``outbound|<port>||<host>`` with Istio's default
retries. A destination ``subset`` names the cluster ``outbound|<port>|<subset>|<host>`` whether or not a
DestinationRule defines it — as istiod does — so a missing subset is a cluster Envoy does not have (503 ``NC``).
Inbound (``virtualInbound``): the services selecting this pod, to ``inbound|<targetPort>||``.
"""

from __future__ import annotations

from typing import Any

from ..identity import PEER_HEADER, PEER_ID_HEADER, ProxyIdentity, peer_metadata
from .inputs import IstioResource, Mesh, Pod, Service, ServicePort
from .naming import (
    ALLOW_ANY,
    BLOCK_ALL,
    INBOUND_ROUTE,
    OUTBOUND_ROUTE,
    PASSTHROUGH_CLUSTER,
    fqdn,
    host_matches,
    inbound_cluster,
    outbound_cluster,
    service_domains,
)
from .policies import FAULT_FILTER, fault, retry_policy, route_match, timeout

REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT",
                  308: "PERMANENT_REDIRECT"}
SUPPORTED_HTTP = {"name", "match", "route", "redirect", "directResponse", "rewrite", "timeout", "retries", "fault",
                  "headers"}


def _header_values(ops: dict[str, Any], append: bool) -> list[dict[str, Any]]:
    action = "APPEND_IF_EXISTS_OR_ADD" if append else "OVERWRITE_IF_EXISTS_OR_ADD"
    return [{"header": {"key": k, "value": str(v)}, "append_action": action} for k, v in (ops or {}).items()]


def _headers(target: dict[str, Any], spec: dict[str, Any] | None) -> None:
    """Istio's ``headers.request|response.set|add|remove`` onto a route."""
    for side in ("request", "response"):
        ops = (spec or {}).get(side) or {}
        added = _header_values(ops.get("set"), False) + _header_values(ops.get("add"), True)
        if added:
            target.setdefault(f"{side}_headers_to_add", []).extend(added)
        if ops.get("remove"):
            target.setdefault(f"{side}_headers_to_remove", []).extend(ops["remove"])


def virtual_service(mesh: Mesh, host: str) -> IstioResource | None:
    """The VirtualService a sidecar uses for ``host``: bound to the mesh (no ``gateways``, or ``mesh`` among
    them), an exact host before a wildcard, the oldest first (istiod ignores a later one for the same host)."""
    bound = [vs for vs in mesh.of_kind("VirtualService")
             if not vs.spec.get("gateways") or "mesh" in vs.spec["gateways"]]
    for exact in (True, False):
        for vs in bound:
            hosts = [fqdn(h, vs.namespace) for h in vs.spec.get("hosts") or []]
            if any((h == host) if exact else host_matches(h, host) for h in hosts):
                return vs
    return None


class OutboundRoutes:
    """Builds ``virtualOutbound`` for one proxy; the clusters its routes name are in ``referenced``."""

    def __init__(self, mesh: Mesh, identity: ProxyIdentity, warnings: list[str], registry_only: bool = False) -> None:
        self.mesh, self.identity, self.warnings, self.registry_only = mesh, identity, warnings, registry_only
        self.referenced: set[str] = set()

    def build(self) -> dict[str, Any]:
        vhosts, seen = [], set()
        for service in self.mesh.services:
            same_ns = service.namespace == self.identity.namespace
            first = service.ports[0].port if service.ports else None
            has80 = any(p.port == 80 for p in service.ports)
            for port in service.ports:
                bare = port.port == 80 or (not has80 and port.port == first)
                names = [service.host, f"{service.host}:{port.port}"] if service.entry else service_domains(
                    service.name, service.namespace, port.port, service.cluster_ip, same_ns, bare)
                domains = [d for d in dict.fromkeys(names) if d not in seen]
                if not domains:  # Envoy refuses a virtual host without domains; istiod keeps the first service
                    self.warnings.append(f"{service.host}:{port.port}: every name is another service's (ignored)")
                    continue
                seen.update(domains)
                vhosts.append({"name": f"{service.host}:{port.port}", "domains": domains,
                               "routes": self.routes(service, port), "include_request_attempt_count": True,
                               "request_headers_to_add": self.peer_headers()})
        vhosts.append(self.fallback())
        return {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": OUTBOUND_ROUTE,
                "virtual_hosts": vhosts, "validate_clusters": False}

    def peer_headers(self) -> list[dict[str, Any]]:
        """This sidecar's metadata on requests to the mesh's services (not to hosts passed through)."""
        return [{"header": {"key": PEER_HEADER, "value": peer_metadata(self.identity)},
                 "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                {"header": {"key": PEER_ID_HEADER, "value": self.identity.node_id},
                 "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]

    def fallback(self) -> dict[str, Any]:
        """Hosts the registry does not know: ``allow_any`` to the ``PassthroughCluster`` (Istio's default
        ``outboundTrafficPolicy: ALLOW_ANY``; in the sim a dynamic forward proxy cluster, since the app's request
        names its destination in the absolute URL rather than in an original destination), or ``block_all``'s
        502 with ``REGISTRY_ONLY``."""
        if self.registry_only:
            return {"name": BLOCK_ALL, "domains": ["*"], "routes": [
                {"name": BLOCK_ALL, "match": {"prefix": "/"}, "direct_response": {"status": 502}}]}
        return {"name": ALLOW_ANY, "domains": ["*"], "routes": [
            {"name": ALLOW_ANY, "match": {"prefix": "/"}, "route": {"cluster": PASSTHROUGH_CLUSTER, "timeout": "0s"}}]}

    def routes(self, service: Service, port: ServicePort) -> list[dict[str, Any]]:
        vs = virtual_service(self.mesh, service.host)
        if vs is None:
            cluster = outbound_cluster(port.port, "", service.host)
            self.referenced.add(cluster)
            return [{"name": "default", "match": {"prefix": "/"}, "decorator": {
                "operation": f"{service.host}:{port.port}/*"}, "route": {
                "cluster": cluster, "timeout": "0s", "retry_policy": retry_policy(None)}}]
        return self.vs_routes(vs, service.host, port.port)

    def vs_routes(self, vs: IstioResource, host: str, port: int, bound: frozenset[str] = frozenset({"mesh"})
                  ) -> list[dict[str, Any]]:
        """A VirtualService's HTTP routes for ``host:port``, one Envoy route per match that applies to this proxy
        (``bound``: the gateways it counts as, ``mesh`` for a sidecar)."""
        out = []
        for i, http in enumerate(vs.spec.get("http") or []):
            where = f"VirtualService {vs.namespace}/{vs.name} http[{i}]"
            for key in sorted(set(http) - SUPPORTED_HTTP):
                self.warnings.append(f"{where}.{key} is not supported by the labkit simulator (ignored)")
            for match in http.get("match") or [None]:
                if match and not self._applies(match, port, bound):
                    continue
                out.append(self.route(vs, http, match, host, port))
        return out

    def _applies(self, match: dict[str, Any], port: int, bound: frozenset[str]) -> bool:
        """A match's ``port``, ``gateways``, ``sourceLabels`` and ``sourceNamespace`` select the proxies and ports
        it is for."""
        if match.get("port") and int(match["port"]) != port:
            return False
        if match.get("gateways") and not bound & set(match["gateways"]):
            return False
        labels = match.get("sourceLabels") or {}
        if any(self.identity.labels.get(k) != v for k, v in labels.items()):
            return False
        return not match.get("sourceNamespace") or match["sourceNamespace"] == self.identity.namespace

    def route(self, vs: IstioResource, http: dict[str, Any], match: dict[str, Any] | None, host: str,
              port: int) -> dict[str, Any]:
        out: dict[str, Any] = {"match": route_match(match)}
        if http.get("name"):
            out["name"] = http["name"]
        if http.get("redirect"):
            red = http["redirect"]
            out["redirect"] = {k: v for k, v in {
                "path_redirect": red.get("uri"), "host_redirect": red.get("authority"),
                "scheme_redirect": red.get("scheme"),
                "response_code": REDIRECT_CODES.get(int(red.get("redirectCode") or 301), "MOVED_PERMANENTLY"),
            }.items() if v}
        elif http.get("directResponse"):
            direct = http["directResponse"]
            out["direct_response"] = {"status": int(direct["status"])}
            body = (direct.get("body") or {}).get("string")
            if body is not None:
                out["direct_response"]["body"] = {"inline_string": body}
        else:
            out["route"] = self.action(vs, http, port)
            out["decorator"] = {"operation": f"{host}:{port}/*"}
        _headers(out, http.get("headers"))
        spec = http.get("fault") or {}
        for part, key in (("abort", "grpcStatus"), ("abort", "http2Error"), ("delay", "exponentialDelay")):
            if key in (spec.get(part) or {}):
                self.warnings.append(f"VirtualService {vs.namespace}/{vs.name}: fault.{part}.{key} is not "
                                     "supported by the labkit simulator (ignored)")
        faults = fault(spec)
        if faults:
            out["typed_per_filter_config"] = {FAULT_FILTER: faults}
        return out

    def action(self, vs: IstioResource, http: dict[str, Any], port: int) -> dict[str, Any]:
        """Destinations (weighted when several), rewrite, timeout and retries."""
        routed = http.get("route") or []
        dests = [d for d in routed if int(d.get("weight") or 0) > 0 or len(routed) == 1] or routed[:1]
        clusters = [{"name": self.cluster(vs, d["destination"], port), "weight": int(d.get("weight") or 100)}
                    for d in dests]
        # istiod's setTimeout: the route timeout (0s: none). istiod also caps a gRPC client's grpc-timeout with
        # the deprecated max_grpc_timeout; the sim's apps speak HTTP/1.1, so that is left out.
        action: dict[str, Any] = {"timeout": timeout(http.get("timeout"))}
        if len(clusters) == 1:
            action["cluster"] = clusters[0]["name"]
        else:
            action["weighted_clusters"] = {"clusters": clusters}
        retries = retry_policy(http.get("retries"))
        if retries:
            action["retry_policy"] = retries
        rewrite = http.get("rewrite") or {}
        if rewrite.get("uri") is not None:
            action["prefix_rewrite"] = rewrite["uri"]
        if rewrite.get("authority"):
            action["host_rewrite_literal"] = rewrite["authority"]
        return action

    def cluster(self, vs: IstioResource, dest: dict[str, Any], port: int) -> str:
        """The destination's cluster: its port, else the service's only port, else the port routed."""
        host = fqdn(dest["host"], vs.namespace)
        target = self.mesh.service(host)
        number = (dest.get("port") or {}).get("number")
        if number is None:
            number = target.ports[0].port if target and len(target.ports) == 1 else port
        name = outbound_cluster(int(number), dest.get("subset") or "", host)
        self.referenced.add(name)
        return name


def inbound_route_config(mesh: Mesh, identity: ProxyIdentity, pod: Pod | None) -> tuple[dict[str, Any], list[int]]:
    """``virtualInbound``: a virtual host per service port that selects this pod (its names, with the service
    port) to ``inbound|<targetPort>||``, and ``*`` to the app's first port; also the app ports it names."""
    vhosts, ports, seen = [], [], set()
    for service in mesh.services:
        if pod is None or service.entry is not None or pod not in mesh.selected(service):
            continue
        for port in service.ports:
            target = pod.resolve(port.target)
            if not target:
                continue
            ports.append(target)
            domains = [d for d in service_domains(service.name, service.namespace, port.port, service.cluster_ip,
                                                  True, port.port == 80) if d not in seen]
            if not domains:
                continue
            seen.update(domains)
            vhosts.append({"name": f"inbound|http|{port.port}", "domains": domains,
                           "routes": [_inbound_route(target, f"{service.host}:{port.port}/*")]})
    fallback = sorted(pod.port_numbers)[0] if pod and pod.port_numbers else (ports[0] if ports else None)
    if fallback:
        ports.append(fallback)
        vhosts.append({"name": "inbound|http|*", "domains": ["*"],
                       "routes": [_inbound_route(fallback, f"{identity.pod}.{identity.namespace}:{fallback}/*")]})
    config = {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": INBOUND_ROUTE,
              "virtual_hosts": vhosts, "validate_clusters": False,
              "response_headers_to_add": [
                  {"header": {"key": PEER_HEADER, "value": peer_metadata(identity)},
                   "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                  {"header": {"key": PEER_ID_HEADER, "value": identity.node_id},
                   "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}
    return config, ports


def _inbound_route(port: int, operation: str) -> dict[str, Any]:
    return {"name": "default", "match": {"prefix": "/"}, "decorator": {"operation": operation},
            "route": {"cluster": inbound_cluster(port), "timeout": "0s"}}
