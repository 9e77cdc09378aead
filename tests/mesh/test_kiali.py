"""Kiali's graph: its three PromQL queries, its node ids, its traffic map (a request reported by both sidecars
counted once, a service node injected in front of the destination app, Istio's ``unknown`` source), its JSON shape
and rate strings, its VirtualService badges; then the graph of real Envoys' traffic scraped by the sim's Prometheus,
and its drawing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit.mesh.identity import ProxyIdentity, peer_metadata
from labkit.mesh.kiali import Kiali, TrafficMap, node_id, queries, rate_text, response_time_queries
from labkit.mesh.kiali_view import draw_graph, edge_label
from labkit.mesh.telemetry import request_labels

from .telemetry_stack import CATALOG, MeshedShop

GATEWAY = ProxyIdentity("gateway-1", "shop", "127.250.0.2", "gateway", "gateway", "v1",
                        labels={"app": "gateway", "version": "v1"})
V1 = ProxyIdentity("catalog-v1-1", "shop", "127.250.0.3", "catalog-v1", "catalog", "v1",
                   labels={"app": "catalog", "version": "v1"})
V2 = ProxyIdentity("catalog-v2-1", "shop", "127.250.0.4", "catalog-v2", "catalog", "v2",
                   labels={"app": "catalog", "version": "v2"})
VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
      "metadata": {"name": "catalog", "namespace": "shop"},
      "spec": {"hosts": ["catalog"], "http": [
          {"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 20}}},
           "route": [{"destination": {"host": "catalog", "subset": "v1"}, "weight": 50},
                     {"destination": {"host": "catalog", "subset": "v2"}, "weight": 50}],
           "timeout": "2s"}]}}


def series(reporter: str, me: ProxyIdentity, peer: ProxyIdentity | None, code: int = 200, flags: str = "-",
           subset: str = "v1", authority: str = "catalog:8080") -> dict[str, str]:
    """The labels a sidecar reports for one kind of request, without the empty ones (Prometheus drops them)."""
    entry = {"reporter": reporter, "authority": authority, "response_code": code, "response_flags": flags,
             "upstream_cluster": f"outbound|8080|{subset}|{CATALOG}" if reporter == "source" else "inbound|8080||",
             "peer": peer_metadata(peer) if peer else None}
    return {k: v for k, v in request_labels(entry, me).items() if v}


def nodes_by_name(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for n in graph["elements"]["nodes"]:
        d = n["data"]
        name = {"service": d.get("service"), "box": f"box {d.get('app')}", "unknown": "unknown"}.get(
            d["nodeType"], f"{d.get('app') or d.get('workload')} {d.get('version', '')}".strip())
        out[name] = d
    return out


def edges_by_name(graph: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    names = {d["id"]: name for name, d in nodes_by_name(graph).items()}
    return {(names[e["data"]["source"]], names[e["data"]["target"]]): e["data"] for e in graph["elements"]["edges"]}


def test_queries_are_kialis() -> None:
    by = ("source_cluster,source_workload_namespace,source_workload,source_canonical_service,"
          "source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,"
          "destination_service_name,destination_workload_namespace,destination_workload,"
          "destination_canonical_service,destination_canonical_revision,request_protocol,response_code,"
          "grpc_response_status,response_flags")
    assert queries("shop", 60) == [
        'sum(rate(istio_requests_total{reporter="source",source_workload_namespace!="shop",destination_workload_'
        'namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\\\.shop\\\\..+$"} [60s])) '
        f"by ({by}) > 0",
        f'sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="shop"}} [60s])) '
        f"by ({by}) > 0",
        f'sum(rate(istio_requests_total{{reporter="source",source_workload_namespace="shop"}} [60s])) '
        f"by ({by}) > 0"]


def test_response_time_queries_and_edges() -> None:
    assert response_time_queries("shop", 60)[0] == (
        'histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",'
        'destination_service_namespace="shop"}[60s])) by (le,source_cluster,source_workload_namespace,'
        "source_workload,source_canonical_service,source_canonical_revision,destination_cluster,"
        "destination_service_namespace,destination_service,destination_service_name,"
        "destination_workload_namespace,destination_workload,destination_canonical_service,"
        "destination_canonical_revision,request_protocol)) > 0")
    assert 'reporter="source",source_workload_namespace="shop"' in response_time_queries("shop", 60)[1]
    traffic = TrafficMap()
    traffic.add_series(series("source", GATEWAY, V1), 1.0)
    traffic.add_series(series("source", GATEWAY, None, 503, "FI"), 0.5)
    times: dict[str, float] = {}
    traffic.add_response_time(series("destination", V1, GATEWAY), 12.4, times)  # first found wins, as in Kiali
    traffic.add_response_time(series("source", GATEWAY, V1), 2012.0, times)
    traffic.add_response_time(series("source", GATEWAY, None, 503, "FI"), 0.3, times)
    traffic.apply_response_times(times)
    edges = edges_by_name(traffic.config(60, 0))
    assert edges[("catalog", "catalog v1")]["responseTime"] == "12"  # the injected service's edge
    assert edges[("gateway v1", "catalog")]["responseTime"] == "0"  # the aborted requests went to the service
    assert edge_label(edges[("catalog", "catalog v1")]).endswith("\n12 ms")


def test_node_ids_as_kiali_names_them() -> None:
    assert node_id("K", "", "", "shop", "catalog-v1", "catalog", "v1", "versionedApp") == \
        ("vapp_K_shop_catalog-v1", "app")
    assert node_id("K", "shop", "catalog", "", "", "", "", "versionedApp") == ("svc_K_shop_catalog", "service")
    assert node_id("K", "", "", "shop", "catalog-v1", "catalog", "v1", "app") == ("app_K_shop_catalog", "app")
    assert node_id("K", "", "", "shop", "catalog-v1", "catalog", "v1", "workload") == \
        ("wl_K_shop_catalog-v1", "workload")
    assert node_id("K", "unknown", "", "unknown", "unknown", "unknown", "latest", "versionedApp") == \
        ("K_unknown_source", "unknown")
    with pytest.raises(ValueError, match="failed ID gen1"):
        node_id("K", "shop", "", "shop", "", "", "", "versionedApp")
    with pytest.raises(ValueError, match="Invalid graphType"):
        TrafficMap("tree")
    with pytest.raises(ValueError, match="not supported by the labkit simulator"):
        TrafficMap("service")
    assert [rate_text(2, v) for v in (2.25, 0.1, 0.0012, 12.0)] == ["2.25", "0.10", "0.001", "12.00"]


def test_traffic_map_from_both_reporters() -> None:
    traffic = TrafficMap()
    for reporter_pair, rate in (((GATEWAY, V1), 1.0), ((GATEWAY, V2), 0.5)):
        me, peer = reporter_pair
        traffic.add_series(series("source", me, peer, subset=peer.version), rate)
        traffic.add_series(series("destination", peer, me), rate)  # the same requests, counted once
    traffic.add_series(series("source", GATEWAY, V2, 500, subset="v2"), 0.5)
    traffic.add_series(series("destination", V2, GATEWAY, 500), 0.5)
    traffic.add_series(series("source", GATEWAY, None, 503, "FI"), 0.25)  # aborted by the gateway's sidecar
    traffic.add_series(series("destination", V1, None), 0.1)  # a caller outside the mesh
    traffic.apply_virtual_services([VS])
    graph = traffic.config(60, 1700000000)
    assert (graph["timestamp"], graph["duration"], graph["graphType"]) == (1700000000, 60, "versionedApp")
    nodes, edges = nodes_by_name(graph), edges_by_name(graph)
    assert set(nodes) == {"gateway v1", "catalog", "catalog v1", "catalog v2", "box catalog", "unknown"}
    svc = nodes["catalog"]
    assert svc["nodeType"] == "service" and svc["namespace"] == "shop" and svc["isInjected"] is True
    assert svc["hasTrafficShifting"] and svc["hasFaultInjection"] and svc["hasRequestTimeout"]
    assert svc["hasRequestRouting"] and svc["hasVS"] == {"hostnames": ["catalog"]} and "hasMirroring" not in svc
    assert svc["traffic"] == [{"protocol": "http", "rates": {"httpIn": "2.35", "httpIn5xx": "0.75",
                                                              "httpOut": "2.10"}}]
    v1 = nodes["catalog v1"]
    assert (v1["nodeType"], v1["workload"], v1["version"]) == ("app", "catalog-v1", "v1")
    assert v1["parent"] == nodes["box catalog"]["id"] == nodes["catalog v2"]["parent"]
    assert v1["destServices"] == [{"cluster": "Kubernetes", "namespace": "shop", "name": "catalog"}]
    assert nodes["box catalog"]["isBox"] == "app" and "parent" not in nodes["gateway v1"]
    assert nodes["unknown"]["id"] == edges[("unknown", "catalog")]["source"]
    out = edges[("gateway v1", "catalog")]["traffic"]
    assert out["protocol"] == "http"
    assert out["rates"] == {"http": "2.25", "http5xx": "0.75", "httpPercentErr": "33.3", "httpPercentReq": "100.0"}
    assert out["responses"] == {
        "200": {"flags": {"-": "66.7"}, "hosts": {CATALOG: "66.7"}},
        "500": {"flags": {"-": "22.2"}, "hosts": {CATALOG: "22.2"}},
        "503": {"flags": {"FI": "11.1"}, "hosts": {CATALOG: "11.1"}}}
    assert edges[("catalog", "catalog v1")]["traffic"]["rates"] == {"http": "1.10", "httpPercentReq": "52.4"}
    assert edges[("catalog", "catalog v2")]["traffic"]["rates"]["httpPercentErr"] == "50.0"
    assert len({e["data"]["id"] for e in graph["elements"]["edges"]}) == len(edges) == 4


def test_workload_and_service_graphs() -> None:
    for graph_type, expect in (("workload", {"gateway", "catalog", "catalog-v1"}), ("app", {"gateway", "catalog"})):
        traffic = TrafficMap(graph_type)
        traffic.add_series(series("source", GATEWAY, V1), 1.0)
        graph = traffic.config(60, 0)
        names = {d["data"].get("workload") or d["data"].get("app") or d["data"].get("service")
                 for d in graph["elements"]["nodes"]}
        assert names == expect, graph_type


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshedShop]:
    with MeshedShop(tmp_path_factory.mktemp("kiali"), weights=(50, 50)) as running:
        for wave in (1, 2):  # two scrapes apart: a rate needs two samples of each series
            running.call("/products", 20)  # 50/50 at random: 10 calls left v1 without any 1 time in 1,024
            running.call("/fault", 2)
            running.call("/v3", 1)
            running.wait_for('sum(istio_requests_total{reporter="source"})', 23 * wave)
        yield running


def test_graph_of_real_envoys_traffic(shop: MeshedShop) -> None:
    graph = Kiali(shop.prometheus_url).graph(["shop"], duration=60, virtual_services=[shop.virtual_service])
    nodes, edges = nodes_by_name(graph), edges_by_name(graph)
    # the request to subset v3 (no DestinationRule defines it) had no cluster: Kiali draws its host header
    assert set(nodes) == {"gateway v1", "catalog", "catalog v1", "catalog v2", "box catalog", "catalog:8080"}
    svc = nodes["catalog"]
    assert svc["hasTrafficShifting"] and svc["hasFaultInjection"] and svc["hasRequestTimeout"]
    assert nodes["catalog:8080"]["nodeType"] == "service" and nodes["catalog:8080"]["namespace"] == "unknown"
    assert set(edges) == {("gateway v1", "catalog"), ("catalog", "catalog v1"), ("catalog", "catalog v2"),
                          ("gateway v1", "catalog:8080")}
    out = edges[("gateway v1", "catalog")]["traffic"]
    assert set(out["responses"]) == {"200", "503"} and set(out["responses"]["503"]["flags"]) == {"FI"}
    # the only errors on this edge are the aborts (2 of every 22 requests; rates extrapolate each series' samples)
    assert out["responses"]["503"]["flags"]["FI"] == out["rates"]["httpPercentErr"]
    assert 5 < float(out["rates"]["httpPercentErr"]) < 50
    assert float(out["rates"]["http5xx"]) > 0
    assert edges[("gateway v1", "catalog:8080")]["traffic"]["responses"]["503"]["flags"] == {"NC": "100.0"}
    assert all("responseTime" not in e for e in edges.values())  # Kiali's appender only when asked for
    timed = edges_by_name(Kiali(shop.prometheus_url).graph(["shop"], duration=60, response_time=0.95))
    assert float(timed[("catalog", "catalog v1")]["responseTime"]) >= 0
    assert timed[("gateway v1", "catalog:8080")]["responseTime"] == "0"  # 503 NC, answered by Envoy at once
    # to the service node itself only the aborted requests (the others' times are on the service's edges)
    assert timed[("gateway v1", "catalog")]["responseTime"] == "0"
    split = [float(edges[("catalog", f"catalog v{v}")]["traffic"]["rates"]["httpPercentReq"]) for v in (1, 2)]
    assert sum(split) == pytest.approx(100, abs=0.2)
    assert "error" not in edges[("catalog", "catalog v1")]["traffic"]["rates"]


def test_drawing(shop: MeshedShop) -> None:
    graph = Kiali(shop.prometheus_url).graph(["shop"], duration=60, virtual_services=[shop.virtual_service])
    fig = draw_graph(graph)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    edges = edges_by_name(graph)
    assert edge_label(edges[("gateway v1", "catalog")]) in texts
    assert any("% err" in t and "rps" in t for t in texts)
    assert "catalog\n[split, fault, timeout, routing]" in texts
    assert len(ax.collections) == len(graph["elements"]["nodes"]) - 1  # a marker per node, none for the box


def test_prometheus_errors_are_raised(shop: MeshedShop) -> None:
    with pytest.raises(RuntimeError, match="400"):
        Kiali(shop.prometheus_url).query("sum(rate(", 0)
