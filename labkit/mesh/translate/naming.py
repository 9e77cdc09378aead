"""Names as istiod spells them: hosts, clusters, the domains a virtual host answers, and Istio's durations."""

from __future__ import annotations

import re

DOMAIN_SUFFIX = "svc.cluster.local"
OUTBOUND_LISTENER = "virtualOutbound"
INBOUND_LISTENER = "virtualInbound"
OUTBOUND_ROUTE = "virtualOutbound"  # the sim's one outbound route configuration (Istio names one per port)
INBOUND_ROUTE = "virtualInbound"
ALLOW_ANY = "allow_any"  # istiod's virtual host for hosts outside the registry (ALLOW_ANY: passed through)
PASSTHROUGH_CLUSTER = "PassthroughCluster"
BLOCK_ALL = "block_all"  # istiod's virtual host for hosts it does not know (REGISTRY_ONLY: a 502)
OTLP_CLUSTER = "opentelemetry_collector"


def fqdn(host: str, namespace: str) -> str:
    """A host as istiod resolves it (``ResolveShortnameToFQDN``): a name without a dot (``catalog``) is completed
    in ``namespace``'s cluster domain; ``*``, an IP address and any dotted name stay as written."""
    if host == "*" or "." in host or ":" in host:
        return host
    return f"{host}.{namespace}.{DOMAIN_SUFFIX}"


def host_matches(pattern: str, host: str) -> bool:
    """Istio's host matching: exact, or a ``*.`` wildcard covering any name ending with its suffix (``*`` all)."""
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*") and host.endswith(pattern[1:])


def outbound_cluster(port: int, subset: str, host: str) -> str:
    """``outbound|<port>|<subset>|<host>``, as istiod names a service port's (subset's) cluster."""
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    """``inbound|<port>||``: the app's port in the sidecar's own pod."""
    return f"inbound|{port}||"


def service_domains(name: str, namespace: str, port: int, cluster_ip: str | None, same_namespace: bool,
                    bare: bool) -> list[str]:
    """Every name a pod can use for a service port, as the virtual host's domains: ``name.ns``,
    ``name.ns.svc``, ``name.ns.svc.cluster.local``, the ClusterIP, each with ``:port``; the short ``name`` only
    from the service's own namespace. ``bare`` adds the names without a port (an authority without a port means
    the scheme's port: the sim's single outbound route configuration gives them to one port per service)."""
    names = [f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.{DOMAIN_SUFFIX}"]
    if same_namespace:
        names.insert(0, name)
    if cluster_ip and cluster_ip != "None":
        names.append(cluster_ip)
    out = [f"{n}:{port}" for n in names]
    if bare:
        out += names
    return out


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def seconds(duration: str) -> float:
    """Seconds of an Istio duration (Go's spelling: ``1s``, ``500ms``, ``1m30s``, ``1.5s``); ValueError if bad."""
    text = str(duration).strip()
    if not _DURATION.match(text):
        raise ValueError(f"invalid duration {duration!r}")
    return sum(float(v) * _SECONDS[u] for v, u in _PART.findall(text))


def proto_duration(duration: str) -> str:
    """An Istio duration as protobuf JSON's ``"<seconds>s"`` (what Envoy's JSON config reads)."""
    return f"{seconds(duration):.9f}".rstrip("0").rstrip(".") + "s"
