"""What a running Envoy really has, from its admin API: ``/config_dump`` (listeners, route configurations,
clusters and the xDS version of each) and ``/clusters`` (each endpoint's live health, outlier ejections included),
summarised as rows a notebook can show — and the routes that name a cluster Envoy does not have."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .envoy import Envoy


def _typed(dump: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next((c for c in dump.get("configs", []) if c.get("@type", "").endswith(f".{suffix}")), {})


def versions(dump: dict[str, Any]) -> dict[str, str]:
    """The xDS version Envoy accepted per source: ``lds``, ``cds`` and ``rds:<route configuration>``."""
    out = {"lds": _typed(dump, "ListenersConfigDump").get("version_info", ""),
           "cds": _typed(dump, "ClustersConfigDump").get("version_info", "")}
    for r in _typed(dump, "RoutesConfigDump").get("dynamic_route_configs", []):
        out[f"rds:{r['route_config']['name']}"] = r.get("version_info", "")
    return out


def _action(route: dict[str, Any]) -> dict[str, Any]:
    action = route.get("route") or {}
    out: dict[str, Any] = {}
    if "cluster" in action:
        out["clusters"] = {action["cluster"]: 100}
    elif "weighted_clusters" in action:
        out["clusters"] = {c["name"]: c.get("weight", 0) for c in action["weighted_clusters"]["clusters"]}
    elif "direct_response" in route:
        out["direct_response"] = route["direct_response"].get("status")
    elif "redirect" in route:
        out["redirect"] = route["redirect"]
    if action.get("timeout") not in (None, "0s"):
        out["timeout"] = action["timeout"]
    retry = action.get("retry_policy")
    if retry:
        out["retries"] = f"{retry.get('num_retries', 1)} on {retry.get('retry_on', '')}"
    fault = (route.get("typed_per_filter_config") or {}).get("envoy.filters.http.fault")
    if fault:
        out["fault"] = {k: v for k, v in fault.items() if k in ("delay", "abort")}
    return out


def _match(match: dict[str, Any]) -> str:
    parts = [f"{k}={match[k]}" for k in ("path", "prefix") if k in match]
    if "safe_regex" in match:
        parts.append(f"regex={match['safe_regex']['regex']}")
    for h in match.get("headers", []):
        sm = h.get("string_match") or {}
        how = next((f"{k}={v}" for k, v in sm.items() if k in ("exact", "prefix")), "")
        how = how or (f"regex={sm['safe_regex']['regex']}" if "safe_regex" in sm else "present")
        parts.append(f"{'!' if h.get('invert_match') else ''}header {h['name']} {how}")
    return ", ".join(parts)


def _address(address: dict[str, Any]) -> str:
    sock = address.get("socket_address", {})
    return f"{sock.get('address')}:{sock.get('port_value')}"


def _host(host: dict[str, Any]) -> dict[str, Any]:
    """One endpoint of ``/clusters?format=json``: its address, its health (the failed checks, e.g.
    ``failed_outlier_check`` while ejected, or ``HEALTHY``) and how many requests it served."""
    status = host.get("health_status", {})
    failed = [k for k, v in status.items() if v is True]
    return {"address": _address(host["address"]), "health": ",".join(failed) or status.get("eds_health_status",
                                                                                             "HEALTHY"),
            "rq_total": next((int(s.get("value", 0)) for s in host.get("stats", []) if s["name"] == "rq_total"), 0)}


@dataclass
class ConfigSummary:
    """Rows of what Envoy has: ``listeners``, ``routes`` (one per route of each virtual host), ``clusters``
    (with endpoints and their health), ``missing`` (clusters routes name that Envoy does not have: a 503 NC),
    ``versions``, and ``rejected``: Envoy's ``update_rejected`` counters that are not zero, with the last reason
    its log gives (a rejected file leaves the previous configuration in force)."""

    listeners: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    last_rejection: str = ""

    def route_for(self, authority: str, config: str | None = None) -> list[dict[str, Any]]:
        """The rows of the virtual host that answers ``authority`` (exact domain first, then ``*``)."""
        rows = [r for r in self.routes if config in (None, r["config"])]
        exact = [r for r in rows if authority in r["domains"]]
        return exact or [r for r in rows if "*" in r["domains"]]

    def cluster(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.clusters if c["name"] == name), None)


def summarise(dump: dict[str, Any], live: dict[str, Any] | None = None) -> ConfigSummary:
    """A summary of ``/config_dump`` (and ``/clusters?format=json`` as ``live``, for endpoint health)."""
    out = ConfigSummary(versions=versions(dump))
    for entry in _typed(dump, "ListenersConfigDump").get("dynamic_listeners", []):
        listener = (entry.get("active_state") or {}).get("listener") or {}
        routes = [f["typed_config"]["rds"]["route_config_name"] for chain in listener.get("filter_chains", [])
                  for f in chain.get("filters", []) if "rds" in f.get("typed_config", {})]
        out.listeners.append({"name": entry["name"], "address": _address(listener.get("address", {})),
                              "routes": routes})
    referenced = set()
    for r in _typed(dump, "RoutesConfigDump").get("dynamic_route_configs", []):
        config = r["route_config"]
        for vh in config.get("virtual_hosts", []):
            for route in vh.get("routes", []):
                action = _action(route)
                referenced.update(action.get("clusters", {}))
                out.routes.append({"config": config["name"], "virtual_host": vh["name"], "domains": vh["domains"],
                                   "name": route.get("name", ""), "match": _match(route.get("match", {})),
                                   **action})
    health = {c["name"]: [_host(h) for h in c.get("host_statuses", [])]
              for c in (live or {}).get("cluster_statuses", [])}
    names = set()
    for entry in _typed(dump, "ClustersConfigDump").get("dynamic_active_clusters", []):
        cluster = entry["cluster"]
        names.add(cluster["name"])
        endpoints = health.get(cluster["name"]) or [
            {"address": _address(e["endpoint"]["address"]), "health": "HEALTHY"}
            for group in cluster.get("load_assignment", {}).get("endpoints", []) for e in group.get("lb_endpoints", [])]
        out.clusters.append({"name": cluster["name"], "type": cluster.get("type", "STATIC"),
                             "lb_policy": cluster.get("lb_policy", "ROUND_ROBIN"),
                             "outlier_detection": cluster.get("outlier_detection"), "endpoints": endpoints})
    out.missing = sorted(referenced - names)
    return out


def last_rejection(log: str) -> str:
    """The last configuration Envoy's log says it rejected, and why (the line naming the resource, rather than
    the file subscription's repeat of the reason)."""
    found = [line for line in log.splitlines() if "rejected" in line]
    lines = [line for line in found if "Filesystem config update rejected" not in line] or found
    return lines[-1].split("] ", 3)[-1] if lines else ""


def config_dump(envoy: Envoy) -> ConfigSummary:
    """What ``envoy`` has now, summarised."""
    out = summarise(envoy.config_dump(), envoy.get("/clusters", format="json").json())
    out.rejected = {k: v for k, v in envoy.stats("update_rejected").items() if v}
    if out.rejected and envoy.log.exists():
        out.last_rejection = last_rejection(envoy.log.read_text(errors="replace"))
    return out
