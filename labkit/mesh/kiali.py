"""The service graph Kiali draws, built the way Kiali builds it.

For each namespace Kiali runs three PromQL queries over ``istio_requests_total`` (``graph/telemetry/istio/
istio.go``): requests from outside the namespace to its services that no destination sidecar reported, requests the
namespace's sidecars received (``reporter="destination"``) and requests they sent (``reporter="source"``), each a
``sum(rate(...[<duration>s])) by (<Kiali's 17 labels>) > 0``. Every series adds its rate to a source node and a
destination node (app, versioned app, workload or service nodes, named as Kiali's ``graph.Id`` names them), a
request counted by both reporters only once, with a service node injected in front of a destination workload.
VirtualServices mark their service nodes (``hasTrafficShifting``, ``hasFaultInjection``, ``hasRequestTimeout``,
``hasRequestRouting``, ``hasMirroring``, ``hasVS``), and the result is Kiali's graph JSON (``graph/config/common``):
``{"timestamp", "duration", "graphType", "elements": {"nodes": [{"data": ...}], "edges": [{"data": ...}]}}``, with
the rates as Kiali formats them (strings, ``http``, ``http5xx``, ``httpPercentErr``, ``responses`` per code with
flag and host percentages), and on request Kiali's response time appender (``responseTime`` per edge, ms, a
``histogram_quantile`` of ``istio_request_duration_milliseconds_bucket``). Kiali's other appenders (health, dead
nodes, security, throughput) are not computed by the labkit simulator.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

UNKNOWN = "unknown"
GROUP_BY = ("source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
            "source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,"
            "destination_service_name,destination_workload_namespace,destination_workload,"
            "destination_canonical_service,destination_canonical_revision,request_protocol,response_code,"
            "grpc_response_status,response_flags")
GRAPH_TYPES = ("app", "versionedApp", "workload", "service")
SUPPORTED_GRAPH_TYPES = ("app", "versionedApp", "workload")  # "service" (Kiali's ReduceToServiceGraph) is not
# Kiali's HTTP rates: (name, kind) in its order; kind is total, err, percentErr, percentReq or "" (3xx)
EDGE_RATES = (("http", "total"), ("httpNoResponse", "err"), ("http3xx", ""), ("http4xx", "err"),
              ("http5xx", "err"), ("httpPercentErr", "percentErr"), ("httpPercentReq", "percentReq"))
NODE_RATES = ("httpIn", "httpInNoResponse", "httpIn3xx", "httpIn4xx", "httpIn5xx", "httpOut")
VS_FLAGS = ("hasFaultInjection", "hasMirroring", "hasRequestRouting", "hasRequestTimeout", "hasTrafficShifting")


def queries(namespace: str, duration: int) -> list[str]:
    """Kiali's three ``istio_requests_total`` queries for one namespace (sidecar mesh, HTTP request rates)."""
    metric, idle = "istio_requests_total", "> 0"
    ns = namespace.replace(".", "\\\\.")
    return [
        f'sum(rate({metric}{{reporter="source",source_workload_namespace!="{namespace}",'
        f'destination_workload_namespace="unknown",destination_workload="unknown",'
        f'destination_service=~"^.+\\\\.{ns}\\\\..+$"}} [{duration}s])) by ({GROUP_BY}) {idle}',
        f'sum(rate({metric}{{reporter="destination",destination_workload_namespace="{namespace}"}} '
        f'[{duration}s])) by ({GROUP_BY}) {idle}',
        f'sum(rate({metric}{{reporter="source",source_workload_namespace="{namespace}"}} '
        f'[{duration}s])) by ({GROUP_BY}) {idle}',
    ]


RT_GROUP_BY = ("le,source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
               "source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,"
               "destination_service_name,destination_workload_namespace,destination_workload,"
               "destination_canonical_service,destination_canonical_revision,request_protocol")


def response_time_queries(namespace: str, duration: int, quantile: float = 0.95) -> list[str]:
    """Kiali's response time appender queries (destination-reported first, then source-reported)."""
    metric = "istio_request_duration_milliseconds_bucket"
    return [f'histogram_quantile({quantile:.2f}, sum(rate({metric}{{reporter="{reporter}",{side}="{namespace}"}}'
            f'[{duration}s])) by ({RT_GROUP_BY})) > 0'
            for reporter, side in (("destination", "destination_service_namespace"),
                                   ("source", "source_workload_namespace"))]


def ok(value: str) -> bool:
    return value not in ("", UNKNOWN)


def node_id(cluster: str, service_ns: str, service: str, workload_ns: str, workload: str, app: str, version: str,
            graph_type: str) -> tuple[str, str]:
    """Kiali's ``graph.Id``: the node's internal id and its type (app, workload, service, unknown)."""
    namespace = workload_ns if ok(workload_ns) else service_ns
    if namespace == UNKNOWN and workload == UNKNOWN and app == UNKNOWN and service == "":
        return f"{cluster}_unknown_source", "unknown"
    if workload == UNKNOWN and app == UNKNOWN and service == UNKNOWN:
        return f"svc_{cluster}_{namespace}_unknown", "service"
    if not (ok(workload) or ok(app) or ok(service)):
        raise ValueError(f"failed ID gen1: namespace=[{namespace}] workload=[{workload}] app=[{app}] "
                         f"service=[{service}]")
    if graph_type in ("workload", "service"):
        if not ok(workload):
            return f"svc_{cluster}_{namespace}_{service if ok(service) else UNKNOWN}", "service"
        return f"wl_{cluster}_{namespace}_{workload}", "workload"
    if ok(app):
        if graph_type == "versionedApp":
            if ok(workload):
                return f"vapp_{cluster}_{namespace}_{workload}", "app"
            if ok(version) and version != "latest":
                return f"vapp_{cluster}_{namespace}_{app}_{version}", "app"
        return f"app_{cluster}_{namespace}_{app}", "app"
    if ok(workload):
        return f"wl_{cluster}_{namespace}_{workload}", "workload"
    return f"svc_{cluster}_{namespace}_{service}", "service"


@dataclass
class Node:
    id: str
    node_type: str
    cluster: str
    namespace: str
    workload: str = ""
    app: str = ""
    version: str = ""
    service: str = ""
    rates: dict[str, float] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    dest_services: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)


@dataclass
class Edge:
    source: Node
    dest: Node
    protocol: str
    rates: dict[str, float] = field(default_factory=dict)
    responses: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    response_time: float | None = None  # ms, Kiali's responseTime appender


def _add(rates: dict[str, float], key: str, value: float) -> None:
    rates[key] = rates.get(key, 0.0) + value


class TrafficMap:
    """Kiali's traffic map: nodes by id, each with its outgoing edges."""

    def __init__(self, graph_type: str = "versionedApp", inject_service_nodes: bool = True) -> None:
        if graph_type not in GRAPH_TYPES:
            raise ValueError(f"Invalid graphType [{graph_type}]")
        if graph_type not in SUPPORTED_GRAPH_TYPES:
            raise ValueError(f"graphType [{graph_type}] is not supported by the labkit simulator")
        self.graph_type, self.inject = graph_type, inject_service_nodes
        self.nodes: dict[str, Node] = {}

    def node(self, cluster: str, service_ns: str, service: str, workload_ns: str, workload: str, app: str,
             version: str) -> Node:
        nid, kind = node_id(cluster, service_ns, service, workload_ns, workload, app, version, self.graph_type)
        if nid not in self.nodes:
            namespace = workload_ns if ok(workload_ns) else service_ns
            if kind == "app":
                service = ""
                if self.graph_type != "versionedApp":
                    workload = version = ""
            elif kind == "service":
                app = workload = version = ""
            elif kind == "workload":
                app, version, service = ("" if app == UNKNOWN else app), ("" if version == UNKNOWN else version), ""
            self.nodes[nid] = Node(nid, kind, cluster, namespace, workload, app, version, service)
        return self.nodes[nid]

    def add_series(self, labels: Mapping[str, str], value: float) -> None:
        """One series of a query's answer, as ``populateTrafficMap`` adds it."""
        m = dict(labels)
        need = ("source_workload_namespace", "source_workload", "source_canonical_service",
                "source_canonical_revision", "destination_service_namespace", "destination_service",
                "destination_service_name", "destination_workload_namespace", "destination_workload",
                "destination_canonical_service", "destination_canonical_revision", "response_flags",
                "request_protocol", "response_code")
        if any(k not in m for k in need):
            return
        src_cluster, dst_cluster = m.get("source_cluster", UNKNOWN), m.get("destination_cluster", UNKNOWN)
        src_ns, src_wl = m["source_workload_namespace"], m["source_workload"]
        src_app, src_ver = m["source_canonical_service"], m["source_canonical_revision"]
        if ok(src_ns) and not ok(src_wl) and not ok(src_app):
            return  # Kiali's bad source telemetry
        dst_svc_ns, dst_svc, dst_name = m["destination_service_namespace"], m["destination_service"], \
            m["destination_service_name"]
        dst_ns, dst_wl = m["destination_workload_namespace"], m["destination_workload"]
        dst_app, dst_ver = m["destination_canonical_service"], m["destination_canonical_revision"]
        if not ok(dst_cluster) and ok(src_cluster) and ok(dst_svc_ns):
            dst_cluster = src_cluster  # Istio#29373, as Kiali handles it
        protocol, code, flags = m["request_protocol"], m["response_code"], m["response_flags"]
        if protocol != "http":
            return  # gRPC and TCP rates are not drawn by the labkit simulator
        code = "-" if code == "0" else code
        source = self.node(src_cluster, src_ns, "", src_ns, src_wl, src_app, src_ver)
        dest = self.node(dst_cluster, dst_svc_ns, dst_name, dst_ns, dst_wl, dst_app, dst_ver)
        series = ":".join(("istio_requests_total", source.id, dest.id, code, flags, dst_svc))
        if self.inject and ok(dst_name) and dest.node_type != "service":
            service = self.node(dst_cluster, dst_svc_ns, dst_name, "", "", "", "")
            service.flags["isInjected"] = True
            if self._edge(source, service, protocol, value, code, flags, dst_svc, series):
                self._dest_service(service, dst_cluster, dst_svc_ns, dst_name)
                self._edge(service, dest, protocol, value, code, flags, dst_svc, series)
                self._dest_service(dest, dst_cluster, dst_svc_ns, dst_name)
        elif self._edge(source, dest, protocol, value, code, flags, dst_svc, series):
            self._dest_service(dest, dst_cluster, dst_svc_ns, dst_name)

    @staticmethod
    def _dest_service(node: Node, cluster: str, namespace: str, name: str) -> None:
        if ok(name):
            node.dest_services[f"{cluster}:{namespace}:{name}"] = {"cluster": cluster, "namespace": namespace,
                                                                  "name": name}

    @staticmethod
    def _edge(source: Node, dest: Node, protocol: str, value: float, code: str, flags: str, host: str,
              series: str) -> bool:
        edge = source.edges.setdefault(f"{dest.id}|{protocol}", Edge(source, dest, protocol))
        if series in edge.seen:
            return False  # the same request reported by the other sidecar
        edge.seen.add(series)
        if value <= 0:
            return True
        _add(source.rates, "httpOut", value)
        _add(dest.rates, "httpIn", value)
        _add(edge.rates, "http", value)
        detail = edge.responses.setdefault(code or "-", {"flags": {}, "hosts": {}})
        if flags:
            _add(detail["flags"], flags, value)
        if host:
            _add(detail["hosts"], host, value)
        klass = {"-": "NoResponse", "3": "3xx", "4": "4xx", "5": "5xx"}.get(code if code == "-" else code[:1])
        if klass:
            _add(dest.rates, f"httpIn{klass}", value)
            _add(edge.rates, f"http{klass}", value)
        return True

    def add_response_time(self, labels: Mapping[str, str], value: float, times: dict[str, float]) -> None:
        """One series of a response time query into ``times`` (edge key → ms), as Kiali's appender keys it: the
        injected service → destination edge when a service node sits in front, else source → destination; the
        first value for an edge wins."""
        m = dict(labels)
        need = ("source_workload_namespace", "source_workload", "source_canonical_service", "source_canonical_revision",
                "destination_service_namespace", "destination_service", "destination_service_name",
                "destination_workload_namespace", "destination_workload", "destination_canonical_service",
                "destination_canonical_revision", "request_protocol")
        if any(k not in m for k in need) or math.isnan(value):
            return
        src_cluster, dst_cluster = m.get("source_cluster", UNKNOWN), m.get("destination_cluster", UNKNOWN)
        src_ns, src_wl = m["source_workload_namespace"], m["source_workload"]
        if ok(src_ns) and not ok(src_wl) and not ok(m["source_canonical_service"]):
            return
        dst_ns, dst_name = m["destination_service_namespace"], m["destination_service_name"]
        if not ok(dst_cluster) and ok(src_cluster) and ok(dst_ns):
            dst_cluster = src_cluster
        dest = (dst_cluster, dst_ns, dst_name, m["destination_workload_namespace"], m["destination_workload"],
                m["destination_canonical_service"], m["destination_canonical_revision"])
        try:
            dest_id, dest_type = node_id(*dest, self.graph_type)
            if self.inject and ok(dst_name) and dest_type != "service":
                source_id, _ = node_id(dst_cluster, dst_ns, dst_name, "", "", "", "", self.graph_type)
            else:
                source_id, _ = node_id(src_cluster, src_ns, "", src_ns, src_wl, m["source_canonical_service"],
                                       m["source_canonical_revision"], self.graph_type)
        except ValueError:
            return
        times.setdefault(f"{source_id} {dest_id} {m['request_protocol']}", value)

    def apply_response_times(self, times: Mapping[str, float]) -> None:
        for node in self.nodes.values():
            for edge in node.edges.values():
                found = times.get(f"{node.id} {edge.dest.id} {edge.protocol}")
                if found is not None:
                    edge.response_time = found

    def apply_virtual_services(self, virtual_services: Iterable[Mapping[str, Any]]) -> None:
        """Mark each service node a VirtualService routes to, as Kiali's istio appender does."""
        for vs in virtual_services:
            vs_ns = vs.get("metadata", {}).get("namespace", "")
            spec = vs.get("spec") or {}
            http = [r for r in spec.get("http") or [] if r]
            marks = {"hasFaultInjection": any(r.get("fault") for r in http),
                     "hasMirroring": any(r.get("mirror") for r in http),
                     "hasRequestTimeout": any(r.get("timeout") for r in http),
                     "hasTrafficShifting": any(len(r.get("route") or []) > 1 for r in http),
                     "hasRequestRouting": any(r.get("route") for kind in ("http", "tcp", "tls")
                                              for r in spec.get(kind) or [] if r)}
            hosts = {normalize_host(d["destination"]["host"], vs_ns) for kind in ("http", "tcp", "tls")
                     for r in spec.get(kind) or [] if r for d in r.get("route") or [] if d.get("destination")}
            for node in self.nodes.values():
                if node.node_type != "service" or (node.namespace, node.service) not in hosts \
                        or "hasVS" in node.flags:
                    continue
                node.flags["hasVS"] = {"hostnames": list(spec.get("hosts") or [])} if spec.get("hosts") else {}
                node.flags.update({k: True for k, v in marks.items() if v})

    def config(self, duration: int, timestamp: int) -> dict[str, Any]:
        """Kiali's graph JSON (``graph/config/common.NewConfig``), app boxes included for app graphs."""
        nodes, edges = [], []
        for node in self.nodes.values():
            data: dict[str, Any] = {"id": _hash(node.id), "nodeType": node.node_type, "cluster": node.cluster,
                                    "namespace": node.namespace}
            data.update({k: v for k, v in (("workload", node.workload), ("app", node.app),
                                           ("version", node.version), ("service", node.service)) if v})
            if node.dest_services:
                data["destServices"] = sorted(node.dest_services.values(),
                                              key=lambda s: (s["cluster"], s["namespace"], s["name"]))
            rates = {k: rate_text(2, node.rates[k]) for k in NODE_RATES if node.rates.get(k, 0) > 0}
            if rates:
                data["traffic"] = [{"protocol": "http", "rates": rates}]
            data["healthData"] = None
            data.update(node.flags)
            nodes.append({"data": data})
            edges += [{"data": edge_data(edge)} for edge in node.edges.values()]
        if self.graph_type in ("app", "versionedApp"):
            box_by_app(nodes)
        return {"timestamp": timestamp, "duration": duration, "graphType": self.graph_type,
                "elements": {"nodes": nodes, "edges": edges}}


def normalize_host(host: str, namespace: str) -> tuple[str, str]:
    """A VirtualService destination host as (namespace, service name), as Kiali's ``NormalizeHost`` reads it."""
    parts = host.split(".")
    return (parts[1], parts[0]) if len(parts) > 1 else (namespace, host)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rate_text(precision: int, value: float) -> str:
    """Kiali's ``rateToString``: at least ``precision`` decimals, more (up to 5) for rates below 1."""
    needed, v = 0, value
    while needed < 5 and 0 < v < 1:
        v *= 10
        needed += 1
    return f"{value:.{max(precision, needed)}f}"


def edge_data(edge: Edge) -> dict[str, Any]:
    source, target = _hash(edge.source.id), _hash(edge.dest.id)
    data: dict[str, Any] = {"id": _hash(f"{source}.{target}.{edge.protocol}"), "source": source, "target": target,
                            "traffic": {"protocol": edge.protocol}}
    if edge.response_time is not None:
        data["responseTime"] = f"{edge.response_time:.0f}"
    total = edge.rates.get("http", 0.0)
    if total <= 0:
        return data
    rates = {name: rate_text(2, edge.rates[name]) for name, _ in EDGE_RATES if edge.rates.get(name, 0) > 0}
    errors = sum(edge.rates.get(name, 0.0) for name, kind in EDGE_RATES if kind == "err")
    if errors > 0:
        rates["httpPercentErr"] = f"{errors / total * 100:.1f}"
    out = edge.source.rates.get("httpOut", 0.0)
    if out > 0:
        rates["httpPercentReq"] = f"{total / out * 100:.1f}"
    responses = {code: {"flags": {f: f"{v / total * 100:.1f}" for f, v in d["flags"].items()},
                        "hosts": {h: f"{v / total * 100:.1f}" for h, v in d["hosts"].items()}}
                 for code, d in edge.responses.items()}
    data["traffic"] = {"protocol": edge.protocol, "rates": rates, "responses": responses}
    return data


def box_by_app(nodes: list[dict[str, Any]]) -> None:
    """Kiali's app boxes: a compound ``box`` node around the nodes of one app, when it has more than one."""
    boxes: dict[str, list[dict[str, Any]]] = {}
    for wrapper in nodes:
        d = wrapper["data"]
        if d.get("app") and d["app"] != UNKNOWN:
            boxes.setdefault(f"box_{d['cluster']}_{d['namespace']}_{d['app']}", []).append(d)
    for key, members in boxes.items():
        if len(members) < 2:
            continue
        box_id = _hash(key)
        for member in members:
            member["parent"] = box_id
        first = members[0]
        nodes.append({"data": {"id": box_id, "nodeType": "box", "cluster": first["cluster"],
                               "namespace": first["namespace"], "app": first["app"], "healthData": None,
                               "isBox": "app"}})


class Kiali:
    """Builds Kiali's namespace graph from a Prometheus HTTP API (``/api/v1/query``), as Kiali does."""

    def __init__(self, prometheus_url: str, session: requests.Session | None = None) -> None:
        self.url = prometheus_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.trust_env = False

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        resp = self.session.get(f"{self.url}/api/v1/query", params={"query": expr, "time": f"{at:.3f}"},
                                timeout=30)
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {resp.status_code}: {body.get('error', body)}")
        return body["data"]["result"]

    def graph(self, namespaces: Iterable[str], duration: int = 60, graph_type: str = "versionedApp",
              virtual_services: Iterable[Mapping[str, Any]] = (), query_time: float | None = None,
              inject_service_nodes: bool = True, response_time: float | None = None) -> dict[str, Any]:
        """Kiali's ``/api/namespaces/graph?namespaces=...&duration=<d>s&graphType=...`` answer; with
        ``response_time`` (a quantile, Kiali's default 0.95) its responseTime appender too."""
        at = time.time() if query_time is None else query_time
        traffic = TrafficMap(graph_type, inject_service_nodes)
        for namespace in namespaces:
            for expr in queries(namespace, duration):
                for series in self.query(expr, at):
                    value = float(series["value"][1])
                    if not math.isnan(value):
                        traffic.add_series(series["metric"], value)
            if response_time is not None:
                times: dict[str, float] = {}
                for expr in response_time_queries(namespace, duration, response_time):
                    for series in self.query(expr, at):
                        traffic.add_response_time(series["metric"], float(series["value"][1]), times)
                traffic.apply_response_times(times)
        traffic.apply_virtual_services(virtual_services)
        return traffic.config(duration, int(at))
