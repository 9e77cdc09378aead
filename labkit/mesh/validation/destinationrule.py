"""istiod's ``ValidateDestinationRule``: host, traffic policies (outlier detection, connection pool, load
balancer, port-level settings) and subsets."""

from __future__ import annotations

from . import celrules
from .fields import Err, Obj, duration, export_to, labels, percent, subset_name, wildcard_domain
from .goerrors import join


def outlier_detection(o: Obj | None, warnings: list[str]) -> Err:
    if o is None:
        return None
    errs = duration(o.get("baseEjectionTime"))
    if o.get("consecutiveErrors"):
        warnings.append("outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or "
                        "consecutive5xxErrors instead")
    if not o.get("splitExternalLocalOriginErrors") and int(o.get("consecutiveLocalOriginFailures") or 0) > 0:
        errs = join(errs, "outlier detection consecutive local origin failures is specified, but split external "
                          "local origin errors is set to false")
    errs = join(errs, duration(o.get("interval")))
    return join(errs, percent(o.get("maxEjectionPercent")), percent(o.get("minHealthPercent")))


def connection_pool(cp: Obj | None) -> Err:
    if cp is None:
        return None
    if cp.get("http") is None and cp.get("tcp") is None:
        return "connection pool must have at least one field"
    errs: Err = None
    http, tcp = cp.get("http") or {}, cp.get("tcp") or {}
    for key, msg in (("http1MaxPendingRequests", "http1 max pending requests must be non-negative"),
                     ("http2MaxRequests", "http2 max requests must be non-negative"),
                     ("maxRequestsPerConnection", "max requests per connection must be non-negative"),
                     ("maxRetries", "max retries must be non-negative")):
        if int(http.get(key) or 0) < 0:
            errs = join(errs, msg)
    errs = join(errs, duration(http.get("idleTimeout")))
    if http.get("h2UpgradePolicy") == "UPGRADE" and http.get("useClientProtocol"):
        errs = join(errs, "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
    if int(http.get("maxConcurrentStreams") or 0) < 0:
        errs = join(errs, "max concurrent streams must be non-negative")
    if int(tcp.get("maxConnections") or 0) < 0:
        errs = join(errs, "max connections must be non-negative")
    errs = join(errs, duration(tcp.get("connectTimeout")), duration(tcp.get("maxConnectionDuration")))
    if tcp.get("idleTimeout") is not None and celrules.go_duration(str(tcp["idleTimeout"])) != 0:
        errs = join(errs, duration(tcp["idleTimeout"]))  # 0s disables the timeout
    keepalive = tcp.get("tcpKeepalive") or {}
    return join(errs, duration(keepalive.get("time")), duration(keepalive.get("interval")))


def load_balancer(lb: Obj | None) -> Err:
    if lb is None:
        return None
    errs: Err = None
    ch = lb.get("consistentHash")
    if ch is not None:
        cookie = ch.get("httpCookie")
        if cookie is not None and not cookie.get("name"):
            errs = join(errs, "name required for HttpCookie")
        maglev = ch.get("maglev")
        if maglev is not None:
            size = int(maglev.get("tableSize") or 0)
            if size == 0:
                errs = join(errs, "tableSize must be set for maglev")
            if size >= 5000011:
                errs = join(errs, "tableSize must be less than 5000011 for maglev")
            if not _is_prime(size):
                errs = join(errs, "tableSize must be a prime number for maglev")
    warm = lb.get("warmup")
    if warm is not None:
        if warm.get("duration") is None:
            errs = join(errs, "duration is required")
        else:
            errs = join(errs, duration(warm["duration"]))
        if float(warm.get("minimumPercent") or 0) > 100:
            errs = join(errs, "minimumPercent value should be less than or equal to 100")
        if warm.get("aggression") is not None and float(warm["aggression"]) < 1:
            errs = join(errs, "aggression should be greater than or equal to 1")
    return errs


def _is_prime(x: int) -> bool:
    if 0 < x < 4:
        return True
    if x % 2 == 0:
        return False
    return all(x % f for f in range(3, int(x ** 0.5) + 1, 2))


_POLICY_FIELDS = ("outlierDetection", "connectionPool", "loadBalancer", "tls", "portLevelSettings", "tunnel",
                  "proxyProtocol", "retryBudget")


def traffic_policy(policy: Obj | None, warnings: list[str]) -> Err:
    if policy is None:
        return None
    if not any(policy.get(f) is not None for f in _POLICY_FIELDS):
        return "traffic policy must have at least one field"
    if policy.get("tunnel") is not None and policy.get("proxyProtocol") is not None:
        return "tunnel and proxyProtocol must not be set together"
    errs = join(outlier_detection(policy.get("outlierDetection"), warnings),
                connection_pool(policy.get("connectionPool")), load_balancer(policy.get("loadBalancer")))
    for p in policy.get("portLevelSettings") or []:
        if p.get("port") is None:
            errs = join(errs, "portTrafficPolicy must have valid port")
        if not any(p.get(f) is not None for f in ("outlierDetection", "connectionPool", "loadBalancer", "tls")):
            errs = join(errs, "port traffic policy must have at least one field")
        else:
            errs = join(errs, outlier_detection(p.get("outlierDetection"), warnings),
                        connection_pool(p.get("connectionPool")), load_balancer(p.get("loadBalancer")))
    return errs


def destination_rule(spec: Obj, namespace: str, warnings: list[str]) -> Err:
    errs = join(wildcard_domain(spec.get("host", "")), traffic_policy(spec.get("trafficPolicy"), warnings))
    names: set[str] = set()
    for subset in spec.get("subsets") or []:
        if subset is None:
            errs = join(errs, "subset may not be null")
            continue
        name = subset.get("name", "")
        if name in names:
            errs = join(errs, f"duplicate subset names: {name}")
        names.add(name)
        errs = join(errs, join(subset_name(name), labels(subset.get("labels")),
                               traffic_policy(subset.get("trafficPolicy"), warnings)))
    return join(errs, export_to(spec.get("exportTo"), namespace))
