"""Clusters as istiod builds them: one per service port and one per DestinationRule subset, named
``outbound|<port>|<subset>|<host>``, with the DestinationRule's traffic policy (load balancer, outlier detection,
connection pool); the sidecar's inbound clusters ``inbound|<port>||`` to the app in its own pod."""

from __future__ import annotations

from typing import Any

from .endpoints import lb_endpoint, load_assignment
from .inputs import IstioResource, Mesh, Service, ServicePort
from .naming import PASSTHROUGH_CLUSTER, fqdn, host_matches, inbound_cluster, outbound_cluster, proto_duration

MAX = 4294967295  # istiod's default circuit-breaker thresholds: unlimited
CONNECT_TIMEOUT = "10s"  # istiod's default connectTimeout
LB_POLICIES = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_REQUEST": "LEAST_REQUEST", "LEAST_CONN": "LEAST_REQUEST",
               "RANDOM": "RANDOM"}
DEFAULT_LB = "LEAST_REQUEST"  # istiod's default since 1.14
ROOT_NAMESPACE = "istio-system"
SUPPORTED_POLICY = {"loadBalancer", "outlierDetection", "connectionPool", "portLevelSettings"}


def destination_rule(mesh: Mesh, host: str, proxy_namespace: str) -> IstioResource | None:
    """The DestinationRule that applies to ``host`` for a proxy in ``proxy_namespace``: istiod looks in the
    proxy's namespace, then the service's, then the root namespace; an exact host before a wildcard, oldest first."""
    service = mesh.service(host)
    order = [proxy_namespace, service.namespace if service else proxy_namespace, ROOT_NAMESPACE]
    rules = [r for r in mesh.of_kind("DestinationRule") if host_matches(fqdn(r.spec.get("host", ""), r.namespace),
                                                                           host)]
    for ns in order:
        mine = [r for r in rules if r.namespace == ns]
        exact = [r for r in mine if fqdn(r.spec.get("host", ""), r.namespace) == host]
        if exact or mine:
            return (exact or mine)[0]
    return None


def _port_level(policy: dict[str, Any], port: int) -> dict[str, Any]:
    for settings in policy.get("portLevelSettings") or []:
        if int((settings.get("port") or {}).get("number", -1)) == port:
            return settings
    return {}


def merged_policy(rule: IstioResource | None, subset: dict[str, Any] | None, port: int) -> dict[str, Any]:
    """istiod's ``MergeTrafficPolicy``: the rule's policy, its port-level settings for ``port``, then the
    subset's policy and the subset's port-level settings, each replacing whole fields."""
    out: dict[str, Any] = {}
    for policy in ((rule.spec.get("trafficPolicy") if rule else None), (subset or {}).get("trafficPolicy")):
        if policy:
            out.update({k: v for k, v in policy.items() if k != "portLevelSettings"})
            out.update({k: v for k, v in _port_level(policy, port).items() if k != "port"})
    return out


def _outlier(od: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Envoy's ``outlier_detection`` and the panic threshold (istiod's ``applyOutlierDetection``)."""
    out: dict[str, Any] = {"enforcing_success_rate": 0}
    if od.get("consecutiveGatewayErrors") is not None:
        v = int(od["consecutiveGatewayErrors"])
        out |= {"consecutive_gateway_failure": v, "enforcing_consecutive_gateway_failure": 100 if v > 0 else 0}
    if od.get("consecutive5xxErrors") is not None:
        v = int(od["consecutive5xxErrors"])
        out |= {"consecutive_5xx": v, "enforcing_consecutive_5xx": 100 if v > 0 else 0}
    elif int(od.get("consecutiveErrors") or 0) > 0:  # deprecated: counted as gateway errors
        out |= {"consecutive_gateway_failure": int(od["consecutiveErrors"]),
                "enforcing_consecutive_gateway_failure": 100}
    if od.get("interval"):
        out["interval"] = proto_duration(od["interval"])
    if od.get("baseEjectionTime"):
        out["base_ejection_time"] = proto_duration(od["baseEjectionTime"])
    if int(od.get("maxEjectionPercent") or 0) > 0:
        out["max_ejection_percent"] = int(od["maxEjectionPercent"])
    if od.get("splitExternalLocalOriginErrors"):
        out["split_external_local_origin_errors"] = True
        if od.get("consecutiveLocalOriginFailures") is not None:
            out["consecutive_local_origin_failure"] = int(od["consecutiveLocalOriginFailures"])
    return out, int(od.get("minHealthPercent") or 0)


def _connection_pool(pool: dict[str, Any], cluster: dict[str, Any]) -> None:
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    limits = cluster["circuit_breakers"]["thresholds"][0]
    for key, field in (("maxConnections", "max_connections"),):
        if tcp.get(key):
            limits[field] = int(tcp[key])
    for key, field in (("http1MaxPendingRequests", "max_pending_requests"), ("http2MaxRequests", "max_requests"),
                       ("maxRetries", "max_retries")):
        if http.get(key):
            limits[field] = int(http[key])
    if tcp.get("connectTimeout"):
        cluster["connect_timeout"] = proto_duration(tcp["connectTimeout"])
    common: dict[str, Any] = {}
    if http.get("maxRequestsPerConnection"):
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if http.get("idleTimeout"):
        common["idle_timeout"] = proto_duration(http["idleTimeout"])
    if common:
        cluster["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": common, "explicit_http_config": {"http_protocol_options": {}}}}


def apply_policy(cluster: dict[str, Any], policy: dict[str, Any], where: str, warnings: list[str]) -> None:
    """A merged traffic policy onto an Envoy cluster; what the sim does not translate becomes a warning."""
    lb = policy.get("loadBalancer") or {}
    simple = lb.get("simple")
    if simple in LB_POLICIES:
        cluster["lb_policy"] = LB_POLICIES[simple]
    elif simple or set(lb) - {"simple"}:
        warnings.append(f"{where}: loadBalancer {simple or sorted(set(lb) - {'simple'})} is not supported by the "
                        f"labkit simulator; {DEFAULT_LB} is used")
    if policy.get("outlierDetection") is not None:
        cluster["outlier_detection"], panic = _outlier(policy["outlierDetection"])
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": panic}}
    if policy.get("connectionPool"):
        _connection_pool(policy["connectionPool"], cluster)
    for key in sorted(set(policy) - SUPPORTED_POLICY):
        warnings.append(f"{where}: trafficPolicy.{key} is not supported by the labkit simulator (ignored)")


def base_cluster(name: str, endpoints: dict[str, Any], dns: bool = False) -> dict[str, Any]:
    """A cluster with istiod's defaults (connect timeout, unlimited circuit breakers, LEAST_REQUEST)."""
    return {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name, "type": "STRICT_DNS" if dns else "STATIC", "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": DEFAULT_LB, "load_assignment": endpoints,
        "circuit_breakers": {"thresholds": [{"max_connections": MAX, "max_pending_requests": MAX,
                                             "max_requests": MAX, "max_retries": MAX,
                                             "track_remaining": True}]},
    }


def service_clusters(mesh: Mesh, service: Service, port: ServicePort, proxy_namespace: str, inbound_port: int,
                     warnings: list[str]) -> list[dict[str, Any]]:
    """The default cluster of a service port and one per subset of its DestinationRule."""
    rule = destination_rule(mesh, service.host, proxy_namespace)
    dns = bool(service.entry) and str(service.entry.get("resolution", "")).startswith("DNS")
    out = []
    subsets: list[dict[str, Any] | None] = [None, *((rule.spec.get("subsets") or []) if rule else [])]
    for subset in subsets:
        name = outbound_cluster(port.port, subset["name"] if subset else "", service.host)
        labels = subset.get("labels") if subset else None
        cluster = base_cluster(name, load_assignment(name, mesh, service, port, labels, inbound_port), dns)
        cluster["metadata"] = {"filter_metadata": {"istio": {
            "services": [{"host": service.host, "name": service.name, "namespace": service.namespace}],
            **({"config": f"/apis/networking.istio.io/v1/namespaces/{rule.namespace}/destination-rule/"
                          f"{rule.name}"} if rule else {}),
            **({"subset": subset["name"]} if subset else {})}}}
        apply_policy(cluster, merged_policy(rule, subset, port.port), f"DestinationRule "
                     f"{rule.namespace}/{rule.name}" if rule else service.host, warnings)
        out.append(cluster)
    return out


def unique(clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cluster name once, the first one kept (a ServiceEntry naming a Service's host adds no second cluster:
    Envoy refuses a CDS update that names one twice)."""
    seen: set[str] = set()
    out = []
    for cluster in clusters:
        if cluster["name"] not in seen:
            seen.add(cluster["name"])
            out.append(cluster)
    return out


def inbound_clusters(ip: str, ports: list[int]) -> list[dict[str, Any]]:
    """``inbound|<port>||`` for each of the app's ports, to the pod's own IP (Istio ≥1.10 sends inbound traffic
    to the pod IP, not to localhost)."""
    return [base_cluster(inbound_cluster(p), {"cluster_name": inbound_cluster(p), "endpoints": [
        {"lb_endpoints": [lb_endpoint(ip, p)]}]}) for p in sorted(set(ports))]


def passthrough_cluster(dns_cache: dict[str, Any]) -> dict[str, Any]:
    """istiod's ``PassthroughCluster`` (an ORIGINAL_DST cluster there): in the sim a dynamic forward proxy
    cluster, which connects to the host and port the request's absolute URL names."""
    return {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": PASSTHROUGH_CLUSTER,
            "connect_timeout": CONNECT_TIMEOUT, "lb_policy": "CLUSTER_PROVIDED", "cluster_type": {
                "name": "envoy.clusters.dynamic_forward_proxy", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                    "dns_cache_config": dns_cache}}}


def otlp_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    """The OpenTelemetry collector the tracer sends spans to."""
    cluster = base_cluster(name, {"cluster_name": name, "endpoints": [{"lb_endpoints": [lb_endpoint(host, port)]}]})
    cluster["lb_policy"] = "ROUND_ROBIN"
    cluster["type"] = "STATIC" if host.replace(".", "").isdigit() else "STRICT_DNS"
    return cluster
