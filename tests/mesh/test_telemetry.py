"""Istio's standard metrics from the sidecars' access logs: lines written by hand give Istio's labels (as istio/proxy's
own test data spells them, ``unknown`` where Istio writes it) and Envoy's default buckets; then real Envoys write
the lines, their agents serve them on ``/stats/prometheus`` beside Envoy's own stats, and the sim's Prometheus scrapes
them into its TSDB, read back with PromQL."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from labkit.mesh.identity import ProxyIdentity, peer_metadata
from labkit.mesh.telemetry import ENVOY_BUCKETS, LABELS, AccessLogTail, IstioMetrics, request_labels
from labkit.mesh.translate import Mesh, ProxyOptions, translate
from labkit.mesh.xds import AdminAddress, FileDelivery, bootstrap

from ..waiting import until
from .telemetry_stack import CATALOG, MeshedShop, Ports, access_entries, pod

GATEWAY = ProxyIdentity("gateway-7d9f-x1", "shop", "127.250.0.2", "gateway", "gateway", "v1",
                        labels={"app": "gateway", "version": "v1"})
CATALOG_V2 = ProxyIdentity("catalog-v2-5c4-q2", "shop", "127.250.0.3", "catalog-v2", "catalog", "v2",
                           labels={"app": "catalog", "version": "v2"})


def line(reporter: str, peer: ProxyIdentity | None, **fields: Any) -> dict[str, Any]:
    entry = {"reporter": reporter, "method": "GET", "path": "/products", "authority": "catalog:8080",
             "protocol": "HTTP/1.1", "response_code": 200, "response_flags": "-", "duration_ms": 7,
             "request_bytes": 0, "response_bytes": 120, "upstream_cluster": f"outbound|8080|v2|{CATALOG}",
             "peer": peer_metadata(peer) if peer else None}
    return entry | fields


def test_source_reporter_labels_in_istios_order() -> None:
    labels = request_labels(line("source", CATALOG_V2), GATEWAY)
    assert tuple(labels) == LABELS
    assert labels == {
        "reporter": "source", "source_workload": "gateway", "source_canonical_service": "gateway",
        "source_canonical_revision": "v1", "source_workload_namespace": "shop", "source_principal": "unknown",
        "source_app": "gateway", "source_version": "v1", "source_cluster": "Kubernetes",
        "destination_workload": "catalog-v2", "destination_workload_namespace": "shop",
        "destination_principal": "unknown", "destination_app": "catalog", "destination_version": "v2",
        "destination_service": CATALOG, "destination_canonical_service": "catalog",
        "destination_canonical_revision": "v2", "destination_service_name": "catalog",
        "destination_service_namespace": "shop", "destination_cluster": "Kubernetes", "request_protocol": "http",
        "response_code": "200", "grpc_response_status": "", "response_flags": "-",
        "connection_security_policy": "unknown"}


def test_destination_reporter_without_a_meshed_caller() -> None:
    labels = request_labels(line("destination", None, upstream_cluster="inbound|8080||"), CATALOG_V2)
    assert {k: v for k, v in labels.items() if k.startswith("source_")} == {
        "source_workload": "unknown", "source_canonical_service": "unknown", "source_canonical_revision": "latest",
        "source_workload_namespace": "unknown", "source_principal": "unknown", "source_app": "unknown",
        "source_version": "unknown", "source_cluster": "unknown"}
    assert labels["destination_workload"] == "catalog-v2" and labels["destination_service"] == CATALOG
    assert labels["destination_service_name"] == "catalog" and labels["connection_security_policy"] == "none"


def test_no_route_falls_back_to_the_host_header() -> None:
    labels = request_labels(line("source", None, upstream_cluster=None, authority="nowhere:8080",
                                 response_code=404, response_flags="NR"), GATEWAY)
    assert labels["destination_service"] == labels["destination_service_name"] == "nowhere:8080"
    assert labels["destination_service_namespace"] == labels["destination_workload"] == "unknown"
    assert (labels["response_code"], labels["response_flags"]) == ("404", "NR")
    no_response = request_labels(line("source", None, response_code=0, response_flags="UF,URX"), GATEWAY)
    assert (no_response["response_code"], no_response["response_flags"]) == ("0", "UF,URX")


def test_histograms_use_envoys_default_buckets_and_parse_as_prometheus_text() -> None:
    metrics = IstioMetrics(GATEWAY)
    for ms in (0.3, 7, 7, 7000):
        metrics.observe(line("source", CATALOG_V2, duration_ms=ms))
    metrics.observe(line("source", CATALOG_V2, response_code=503, response_flags="URX"))
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition())}
    assert families["istio_requests"].type == "counter"
    assert sorted(s.value for s in families["istio_requests"].samples) == [1, 4]
    duration = families["istio_request_duration_milliseconds"]
    assert duration.type == "histogram"
    ok = {s.labels["le"]: s.value for s in duration.samples
          if s.name.endswith("_bucket") and s.labels["response_code"] == "200"}
    assert list(ok) == [f"{b:g}" for b in ENVOY_BUCKETS] + ["+Inf"]
    assert "3.6e+06" in ok and ok["0.5"] == 1 and ok["5"] == 1 and ok["10"] == 3 and ok["5000"] == 3
    assert ok["10000"] == ok["+Inf"] == 4
    sums = {s.labels["response_code"]: s.value for s in duration.samples if s.name.endswith("_sum")}
    assert sums["200"] == pytest.approx(7014.3)
    response = {s.labels["response_code"]: s.value for s in families["istio_response_bytes"].samples
                if s.name.endswith("_sum")}
    assert response == {"200": 480, "503": 120}
    assert "istio_request_bytes" in families


def test_access_log_tail_waits_for_whole_lines_and_starts_over_after_truncation(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    tail = AccessLogTail(path)
    assert tail.read() == []
    first, second = json.dumps(line("source", None)), json.dumps(line("source", None, response_code=500))
    path.write_text(first + "\n" + second[:20])
    assert [e["response_code"] for e in tail.read()] == [200]
    with path.open("a") as f:
        f.write(second[20:] + "\nnot json\n")
    assert [e["response_code"] for e in tail.read()] == [500]
    path.write_text(first + "\n")  # truncated (rotated in place)
    assert len(tail.read()) == 1
    old = path.rename(tmp_path / "access.log.1")  # rotated: Envoy still writes to the old file until it reopens
    with old.open("a") as f:
        f.write(second + "\n")
    assert [e["response_code"] for e in tail.read()] == [500]
    with old.open("a") as f:
        f.write(second + "\n")
    path.write_text(first + "\n")  # reopened
    assert [e["response_code"] for e in tail.read()] == [500, 200]
    assert tail.read() == []


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshedShop]:
    with MeshedShop(tmp_path_factory.mktemp("telemetry"), weights=(50, 50)) as running:
        codes = running.call("/products", 20) + running.call("/fault", 3) + running.call("/fail", 2) \
            + running.call("/v3", 1)
        assert sorted(set(codes)) == [200, 500, 503]
        running.wait_for('sum(istio_requests_total{reporter="source"})', 26)
        running.wait_for('sum(istio_requests_total{reporter="destination"})', 22)
        yield running


def by(shop: MeshedShop, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in shop.query(expr)}


def test_agent_serves_envoys_stats_and_the_istio_series(shop: MeshedShop) -> None:
    agent = shop.agents[0]  # the gateway's
    resp = requests.get(f"{agent.url}/stats/prometheus", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(resp.text)}
    assert "envoy_cluster_manager_active_clusters" in names and "envoy_server_live" in names
    assert {"istio_requests", "istio_request_duration_milliseconds", "istio_request_bytes",
            "istio_response_bytes"} <= names
    assert requests.get(f"{agent.url}/healthz/ready", timeout=10).status_code == 200


def test_codes_and_flags_as_the_source_reports_them(shop: MeshedShop) -> None:
    assert by(shop, 'sum by (response_code, response_flags) (istio_requests_total{reporter="source"})',
              "response_code", "response_flags") == {
        ("200", "-"): 20, ("503", "FI"): 3, ("500", "-"): 2, ("503", "NC"): 1}
    # no cluster for subset v3: no upstream, so the destination is the host header (Istio's fallback)
    nc = shop.query('istio_requests_total{response_flags="NC"}')[0]["metric"]
    assert nc["destination_service"] == nc["destination_service_name"] == "catalog:8080"
    assert nc["destination_workload"] == nc["destination_service_namespace"] == "unknown"
    fault = shop.query('istio_requests_total{response_flags="FI"}')[0]["metric"]
    assert fault["destination_service"] == CATALOG and fault["destination_workload"] == "unknown"


def test_both_reporters_agree_on_who_served_what(shop: MeshedShop) -> None:
    served = by(shop, 'sum by (destination_workload, destination_version) '
                      '(istio_requests_total{reporter="destination"})', "destination_workload", "destination_version")
    sent = by(shop, 'sum by (destination_workload, destination_version) '
                    '(istio_requests_total{reporter="source", destination_workload!="unknown"})',
              "destination_workload", "destination_version")
    assert served == sent and set(served) == {("catalog-v1", "v1"), ("catalog-v2", "v2")}
    assert sum(served.values()) == 22
    callers = by(shop, 'sum by (source_workload, source_app, source_version, connection_security_policy) '
                       '(istio_requests_total{reporter="destination"})',
                 "source_workload", "source_app", "source_version", "connection_security_policy")
    assert callers == {("gateway", "gateway", "v1", "none"): 22}
    series = shop.query('istio_requests_total{reporter="destination"}')[0]["metric"]
    # an empty label is no label to Prometheus: grpc_response_status="" is not stored (as with Istio's own)
    assert set(series) == {"__name__", "job", "instance", *LABELS} - {"grpc_response_status"}


def test_agents_merge_the_apps_own_metrics(shop: MeshedShop) -> None:
    handled = by(shop, "catalog_requests_total", "instance")
    assert set(handled) == {(a.url.removeprefix("http://"),) for a in shop.agents[1:]}  # the catalogs' agents
    assert sum(handled.values()) == 22
    assert by(shop, 'sum(istio_requests_total{reporter="destination"})') == {(): 22}


def test_histograms_match_the_access_logs(shop: MeshedShop) -> None:
    gateway = access_entries(shop.agents[0])
    assert by(shop, 'sum(istio_request_duration_milliseconds_count{reporter="source"})') == {(): 26}
    assert by(shop, 'sum(istio_response_bytes_sum{reporter="source"})') == {
        (): float(sum(e["response_bytes"] for e in gateway))}
    assert by(shop, 'sum(istio_request_duration_milliseconds_bucket{reporter="source", le="+Inf"})') == {(): 26}
    below = by(shop, 'sum(istio_request_duration_milliseconds_bucket{reporter="source", le="1"})')[()]
    assert below == sum(1 for e in gateway if e["duration_ms"] <= 1)
    quantile = shop.query('histogram_quantile(0.5, sum by (le) '
                          '(istio_request_duration_milliseconds_bucket{reporter="source"}))')
    assert 0 <= float(quantile[0]["value"][1]) <= 5000


@pytest.mark.parametrize("ending", ["sigterm", "envoy-killed"])
def test_agent_as_a_process(ending: str, tmp_path: Path) -> None:
    """``python -m labkit.mesh.agent``: SIGTERM drains, then stops it and its Envoy (exit 0): through the drain the
    inbound listener still answers, with ``Connection: close``; Envoy dying ends it (exit 1, so the kubelet
    restarts the container, as with pilot-agent)."""
    port = Ports()
    ident = dataclasses.replace(GATEWAY, ip=f"127.{random.randint(250, 254)}.{random.randint(0, 255)}.9")
    delivery = FileDelivery(tmp_path / "xds")
    options = ProxyOptions(access_log=str(tmp_path / "access.log"), outbound_port=port(ident.ip),
                           inbound_port=port(ident.ip))
    delivery.push(translate(Mesh.from_objects([pod(ident, 8080)]), ident, options))
    (tmp_path / "bootstrap.json").write_text(json.dumps(bootstrap(ident, delivery, AdminAddress(ident.ip,
                                                                                                port(ident.ip)))))
    listen = f"{ident.ip}:{port(ident.ip)}"
    proc = subprocess.Popen([sys.executable, "-m", "labkit.mesh.agent", "--identity",
                             json.dumps(dataclasses.asdict(ident)), "--bootstrap", str(tmp_path / "bootstrap.json"),
                             "--access-log", str(tmp_path / "access.log"), "--envoy-log",
                             str(tmp_path / "envoy.log"), "--listen", listen], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TERMINATION_DRAIN_DURATION_SECONDS": "3"})
    try:
        assert proc.stdout is not None
        status = json.loads(proc.stdout.readline())
        assert status["url"] == f"http://{listen}" and status["pod"] == ident.pod
        envoy = psutil.Process(status["envoy"])
        assert requests.get(f"http://{listen}/healthz/ready", timeout=10).status_code == 200
        assert "envoy_server_live" in requests.get(f"http://{listen}/stats/prometheus", timeout=10).text
        if ending == "sigterm":
            proc.terminate()
            time.sleep(2)  # past Envoy's own default drain time (1 s: it would have closed the listener)
            inbound = requests.get(f"http://{ident.ip}:{options.inbound_port}/", timeout=10)
            assert inbound.headers.get("connection") == "close", inbound.headers
            assert proc.wait(30) == 0
            assert not envoy.is_running() or envoy.status() == psutil.STATUS_ZOMBIE
        else:
            envoy.kill()
            assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_rotating_the_access_log_loses_no_request(shop: MeshedShop) -> None:
    """Last in this module: it moves the gateway's access log aside (Envoy reopens it) and sends 5 more."""
    agent = shop.agents[0]
    old = agent.access_log.with_name(agent.access_log.name + ".1")
    agent.max_log_bytes = 1
    until("the gateway's access log to be rotated", old.exists, timeout=10, every=0.05)
    agent.max_log_bytes = 1 << 30
    assert shop.call("/products", 5) == [200] * 5
    shop.wait_for('sum(istio_requests_total{reporter="source"})', 31)
    until("Envoy's new access log", lambda: len(access_entries(agent)) == 5, timeout=10, every=0.05)
    assert len([json.loads(line) for line in old.read_text().splitlines()]) == 26
