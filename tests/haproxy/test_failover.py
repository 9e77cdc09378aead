"""The real HAProxy in front of the three API servers and the workers' NodePorts."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from labkit import control
from labkit.lab import Lab

from ..conftest import kubectl


def test_haproxy_config_passes_haproxy_check_and_serves_stats(lab: Lab) -> None:
    ep = lab.haproxy.endpoint
    with urllib.request.urlopen(ep.stats + ";csv", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(ep.metrics, timeout=5) as r:
        assert b"haproxy_process_nbthread" in r.read()
    servers = lab.haproxy.stats()
    assert {"kube-apiserver", "kube-apiservers", "shop", "shop-gateway"} <= set(servers["proxy"])
    shop = lab.haproxy.config("backend shop-gateway")
    assert "http-reuse always" in shop and "retry-on conn-failure empty-response" in shop
    assert "option http-keep-alive" in lab.haproxy.config("frontend shop")


def test_kubectl_keeps_working_through_haproxy_when_an_api_server_stops(lab: Lab) -> None:
    lab.chapter(1)
    assert lab.haproxy.endpoint.api in Path(lab.kubeconfig).read_text()
    for _ in range(50):  # the health checks see all three up
        states = lab.haproxy.servers("kube-apiservers")["status"]
        if (states == "UP").all():
            break
        time.sleep(0.2)
    lab.kubernetes.api_server_stop("server-1")
    try:
        for _ in range(20):
            out = kubectl(lab, "get", "nodes", "-o", "name")
            assert len(out.stdout.split()) == 5
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if lab.haproxy.servers("kube-apiservers").loc["server-1", "status"] == "DOWN":
                break
            time.sleep(0.2)
        assert lab.haproxy.servers("kube-apiservers").loc["server-1", "status"] == "DOWN"
    finally:
        lab.kubernetes.api_server_start("server-1")


def test_drain_disable_enable_through_the_runtime_api(lab: Lab) -> None:
    lab.chapter(1)  # the shop deployed and its gateways UP: a drained server that is DOWN reports DOWN, not DRAIN
    lab.haproxy.drain("agent-1")
    assert lab.haproxy.servers().loc["agent-1", "status"].startswith("DRAIN")  # e.g. "DRAIN 1/2" while checking
    lab.haproxy.disable("agent-1")
    assert lab.haproxy.servers().loc["agent-1", "status"] == "MAINT"
    lab.haproxy.enable("agent-1")
    assert lab.haproxy.servers().loc["agent-1", "status"] != "MAINT"
    with pytest.raises(ValueError):
        lab.haproxy.set_state("agent-1", "sleeping")
    assert json.loads(json.dumps(lab.haproxy.reload())) == "reloaded"


def test_edge_balancing_and_worker_failover(lab: Lab) -> None:
    lab.chapter(1)  # the shop deployed, HAProxy sees both gateway servers UP
    assert lab.haproxy.servers()["status"].eq("UP").all()
    check = re.search(r"inter (\d+)s fall (\d+)", lab.haproxy.config("backend shop-gateway"))
    assert check, lab.haproxy.config("backend shop-gateway")
    inter, fall = int(check[1]), int(check[2])

    edge = urllib.parse.urlsplit(lab.url("haproxy"))  # the shop speaks HTTP/1.1: one connection, many requests
    conn = http.client.HTTPConnection(edge.netloc, timeout=5)
    for _ in range(4):
        conn.request("GET", "/api/products")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.version == 11 and resp.getheader("Connection") != "close"
        resp.read()
    sock = conn.sock
    conn.request("GET", "/")
    conn.getresponse().read()
    assert conn.sock is sock, "HAProxy closed the client's keep-alive connection"
    conn.close()

    run = lab.traffic(rps=40, seconds=3).result()
    assert len(run) == 120 and run["ok"].all() and run["pod"].nunique() == 2  # one gateway pod per agent
    lab.haproxy.set_balance("leastconn")
    assert "balance leastconn" in Path(lab.haproxy.endpoint.config).read_text()
    assert lab.traffic(rps=40, seconds=2).result()["ok"].all()
    lab.haproxy.set_balance("roundrobin")
    with pytest.raises(control.LabError, match="unknown balance algorithm"):
        lab.haproxy.set_balance("fastest")

    load = lab.traffic(rps=50, seconds=12)
    time.sleep(3)
    stopped = time.monotonic()
    lab.kubernetes.node_stop("agent-1")
    try:
        down_after = None
        while time.monotonic() - stopped < 10:
            if lab.haproxy.servers().loc["agent-1", "status"].startswith("DOWN"):
                down_after = time.monotonic() - stopped
                break
            time.sleep(0.1)
        result = load.result()
    finally:
        lab.kubernetes.node_start("agent-1")
    failed = (~result["ok"]).mean()
    print(f"failover: agent-1 DOWN after {down_after:.2f} s; {failed:.2%} of {len(result)} requests failed")
    assert down_after is not None and down_after <= fall * inter + 0.5, f"fall {fall} x inter {inter} s"
    assert failed <= 0.005, result[~result["ok"]]


def test_server_states_for_the_timeline() -> None:
    from labkit.haproxy.views import GOING_DOWN, GOING_UP, STATE_COLOURS, state_of

    assert [state_of(s) for s in ("UP", "UP 1/2", "DOWN", "DOWN 1/2", "MAINT (via b/s)", "DRAIN", "no check")] \
        == ["UP", GOING_DOWN, "DOWN", GOING_UP, "MAINT", "DRAIN", "no check"]
    assert {"UP", GOING_DOWN, "DOWN", GOING_UP, "DRAIN", "MAINT"} <= set(STATE_COLOURS)


def test_the_edge_routes_by_path_l7(lab: Lab) -> None:
    lab.chapter(1)
    lab.haproxy.wait_up("shop-catalog")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str) -> tuple[int, str, bytes]:
        try:
            with opener.open(lab.url("haproxy") + path, timeout=5) as r:
                return r.status, r.headers.get("X-Pod-Name", ""), r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("X-Pod-Name", ""), err.read()

    status, pod, body = get("/catalog/products")
    assert status == 200 and pod.startswith("catalog-") and json.loads(body)["products"]
    status, pod, _ = get("/api/products")
    assert status == 200 and pod.startswith("gateway-")
    status, pod, body = get("/admin")
    assert status == 403 and pod == "" and b"403 Forbidden" in body  # HAProxy's own answer, not the app's
    served = lab.haproxy.servers("shop-catalog")
    assert served["stot"].sum() >= 1
