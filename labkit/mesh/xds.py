"""Delivering a sidecar's configuration to its Envoy: file-based xDS.

Envoy's bootstrap names files in one directory as its LDS and CDS sources (``path_config_source`` with
``watched_directory``); each listener's RDS and each service cluster's EDS is a file of its own (Envoy's file
subscription takes one RouteConfiguration or ClusterLoadAssignment per file). Each push writes a file to a temporary
sibling and renames it into place (``write_atomic``), so Envoy sees a move into the watched directory and reads the
new file whole. Endpoints are written before clusters, clusters before routes and routes before listeners, so
nothing a resource names is missing when it arrives (istiod's ADS orders its pushes the same way).

Why files rather than an ADS gRPC server: Envoy reads the same JSON the translation produces (no Envoy protobuf
package or gRPC stack in the lab), a rename is atomic (Envoy never reads half a file), a config change reaches a
running Envoy in about 0.1 s (``benchmarks/mesh_sidecars.py --config`` measures it against the 1 s goal), and a
restarted Envoy reads the current files at start-up, as a reconnecting one re-fetches from istiod. As with
istiod's EDS, an endpoint change rewrites only that cluster's endpoints file: the cluster, its connections and
its outlier detection state stay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import write_atomic
from .identity import ADMIN_PORT, PEER_HEADER, ProxyIdentity
from .translate import ProxyConfig
from .translate.endpoints import socket_address
from .translate.listeners import HCM

FILES = {"lds": "lds.json", "cds": "cds.json"}  # and rds-<name>.json, eds-<hash of the cluster>.json
PROMETHEUS_LISTENER = "envoy_prometheus"
_ADDRESS = r"((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))"
# the tags of Istio's bootstrap (instead of Envoy's defaults): ``cluster_name`` runs to ``.svc.cluster.local``, where
# Envoy's default cluster tag stops at the first dot of ``outbound|8080||catalog.shop.svc.cluster.local``
ISTIO_STATS_TAGS = (
    ("cluster_name", r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix", rf"^listener(?=\.).*?\.http\.({_ADDRESS}\.)"),
    ("http_conn_manager_prefix", rf"^http\.({_ADDRESS}\.)"),
    ("listener_address", rf"^listener\.({_ADDRESS}\.)"),
)
ADMIN_CLUSTER = "prometheus_stats"
# the stats Istio's bootstrap template keeps (its stats_matcher inclusion list, without a proxyStatsMatcher)
ISTIO_STATS_PREFIXES = ("reporter=", "cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm",
                        "component")
ISTIO_STATS_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")


class FileDelivery:
    """One sidecar's xDS directory: ``push`` a :class:`ProxyConfig`, Envoy picks it up."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.version = 0
        self._written: dict[str, str] = {}

    def file(self, kind: str, name: str = "") -> Path:
        """The file of ``lds``, ``cds``, ``rds`` route configuration ``name`` or ``eds`` cluster ``name``."""
        if kind == "rds":
            return self.directory / f"rds-{name}.json"
        if kind == "eds":
            return self.directory / f"eds-{hashlib.sha1(name.encode()).hexdigest()[:16]}.json"
        return self.directory / FILES[kind]

    def source(self, kind: str, name: str = "") -> dict[str, Any]:
        """The ``ConfigSource`` of one resource type (``lds``, ``cds``, or ``rds``/``eds`` for route
        configuration or cluster ``name``)."""
        return {"path_config_source": {"path": str(self.file(kind, name)),
                                       "watched_directory": {"path": str(self.directory)}},
                "resource_api_version": "V3"}

    def push(self, config: ProxyConfig) -> list[str]:
        """Write what changed (endpoints, clusters, routes, then listeners); the names of the files written."""
        listeners = [self._with_file_rds(listener) for listener in config.listeners]
        clusters, assignments = self._split_endpoints(config.clusters)
        self.version += 1
        written = []
        batches = [*(("eds", a["cluster_name"], [a]) for a in assignments), ("cds", "", clusters),
                   *(("rds", r["name"], [r]) for r in config.routes), ("lds", "", listeners)]
        for kind, name, resources in batches:
            path = self.file(kind, name)
            body = json.dumps(resources, sort_keys=True)
            if self._written.get(path.name) == body and path.exists():
                continue
            doc = {"version_info": str(self.version), "resources": resources}
            write_atomic(path, json.dumps(doc, indent=1))
            self._written[path.name] = body
            written.append(path.name)
        keep = {self.file("eds", a["cluster_name"]).name for a in assignments}
        for stale in self.directory.glob("eds-*.json"):
            if stale.name not in keep:
                stale.unlink()
                self._written.pop(stale.name, None)
        return written

    def _split_endpoints(self, clusters: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Service clusters (``outbound|…``) as EDS clusters reading their endpoints from a file of their own, as
        istiod sends them by EDS: an endpoint change leaves the cluster (its outlier state, its connections) be.

        A cluster without endpoints has nothing for EDS to keep: it stays STATIC (and empty) in CDS until it has
        some. Each file subscription costs Envoy an inotify instance, of which a user has 128 in all
        (``fs.inotify.max_user_instances``): a cluster with dozens of Services (the kind harness's) made each sidecar
        take 19 and the fifth sidecar abort at start."""
        out, assignments = [], []
        for cluster in clusters:
            if not cluster["name"].startswith("outbound|") or cluster.get("type") != "STATIC" or \
                    not any(e.get("lb_endpoints") for e in (cluster.get("load_assignment") or {}).get("endpoints")
                            or []):
                out.append(cluster)
                continue
            eds = {k: v for k, v in cluster.items() if k != "load_assignment"}
            eds["type"] = "EDS"
            eds["eds_cluster_config"] = {"service_name": cluster["name"],
                                         "eds_config": self.source("eds", cluster["name"])}
            out.append(eds)
            assignments.append({"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                                **cluster["load_assignment"]})
        return out, assignments

    def _with_file_rds(self, listener: dict[str, Any]) -> dict[str, Any]:
        """The listener with its connection managers' RDS read from this directory (istiod's say ADS)."""
        out = json.loads(json.dumps(listener))
        for chain in out.get("filter_chains") or []:
            for f in chain.get("filters") or []:
                if f.get("name") == HCM and "rds" in f["typed_config"]:
                    rds = f["typed_config"]["rds"]
                    rds["config_source"] = self.source("rds", rds["route_config_name"])
        return out


@dataclass(frozen=True)
class AdminAddress:
    host: str
    port: int = ADMIN_PORT

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def bootstrap(identity: ProxyIdentity, delivery: FileDelivery, admin: AdminAddress,
              prometheus_port: int | None = None, istio_stats: bool = False) -> dict[str, Any]:
    """Envoy's bootstrap for a sidecar: its node (id and metadata as istiod's injector names them), the admin API
    on loopback, LDS/CDS from ``delivery``'s files and, with ``prometheus_port``, Istio's static listener that
    serves ``/stats/prometheus`` (15090) from the admin API. ``istio_stats``: Envoy keeps only the stats Istio's
    bootstrap includes by default (a few dozen instead of thousands per sidecar: ``proxyStatsMatcher``'s
    defaults); the lab's sidecars run so, tests that read per-cluster stats do not."""
    doc: dict[str, Any] = {
        "node": {"id": identity.node_id, "cluster": identity.cluster, "metadata": {
            "NAME": identity.pod, "NAMESPACE": identity.namespace, "WORKLOAD_NAME": identity.workload,
            "LABELS": dict(identity.labels), "SERVICE_ACCOUNT": identity.service_account,
            "INSTANCE_IPS": identity.ip, "PEER_METADATA_HEADER": PEER_HEADER}},
        "admin": {"address": socket_address(admin.host, admin.port)},
        "dynamic_resources": {"lds_config": delivery.source("lds"), "cds_config": delivery.source("cds")},
        "stats_config": {"use_all_default_tags": False, "stats_tags": [
            {"tag_name": name, "regex": regex} for name, regex in ISTIO_STATS_TAGS]},
        # the OpenTelemetry tracer exports its batch every 5 s by default: every 0.5 s, so a request's trace is in
        # Jaeger within a second of its end (Envoy's runtime keys; the admin layer keeps /runtime_modify working)
        "layered_runtime": {"layers": [
            {"name": "static", "static_layer": {"tracing.opentelemetry.flush_interval_ms": 500}},
            {"name": "admin", "admin_layer": {}}]},
    }
    if istio_stats:
        doc["stats_config"]["stats_matcher"] = {"inclusion_list": {"patterns": [
            *({"prefix": p} for p in ISTIO_STATS_PREFIXES), *({"suffix": s} for s in ISTIO_STATS_SUFFIXES)]}}
    if prometheus_port is not None:
        doc["static_resources"] = {
            "clusters": [{"name": ADMIN_CLUSTER, "type": "STATIC", "connect_timeout": "0.25s",
                          "load_assignment": {"cluster_name": ADMIN_CLUSTER, "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": socket_address(admin.host, admin.port)}}]}]}}],
            "listeners": [{"name": PROMETHEUS_LISTENER, "address": socket_address(identity.ip, prometheus_port),
                           "filter_chains": [{"filters": [{"name": HCM, "typed_config": {
                               "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                               "stat_prefix": "stats", "route_config": {"virtual_hosts": [{
                                   "name": "backend", "domains": ["*"], "routes": [{
                                       "match": {"prefix": "/stats/prometheus"},
                                       "route": {"cluster": ADMIN_CLUSTER}}]}]},
                               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                                   "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                           }}]}]}],
        }
    return doc
