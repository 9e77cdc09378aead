"""istiod's translation driven through real Envoys: a client sidecar (frontend) sends to the catalog's replicas
(v1a with a sidecar of its own, v1b and v2 without), every case proven by real responses, the access logs and
Envoy's admin stats and config_dump. One world per module; each test applies the Istio resources it needs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.core.network import free_port, port_free
from labkit.mesh.config_dump import config_dump
from labkit.mesh.identity import PEER_HEADER, ProxyIdentity
from labkit.mesh.translate import Mesh, ProxyOptions
from labkit.mesh.translate.gateways import translate_gateway

from ..waiting import until
from .sidecars import Backends, Sidecar, address_block, replicas, send, wait_applied

HOST = "catalog.shop.svc.cluster.local"
URL = "http://catalog:8080/products"
V1, V2 = f"outbound|8080|v1|{HOST}", f"outbound|8080|v2|{HOST}"
CLUSTER_IP = "10.96.7.7"


def pod(name: str, ip: str, port: int, labels: dict[str, str], meshed: bool, ready: bool = True) -> dict[str, Any]:
    containers = [{"name": "app", "ports": [{"name": "http", "containerPort": port}]}]
    if meshed:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.3"})
    labels = {**labels, "replica": name}  # a subset of one replica (the benchmark's hop through two sidecars)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def vs(http: list[dict[str, Any]], version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": f"networking.istio.io/{version}", "kind": "VirtualService",
            "metadata": {"name": "catalog", "namespace": "shop"}, "spec": {"hosts": ["catalog"], "http": http}}


def dr(policy: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": "catalog", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                         {"name": "v2", "labels": {"version": "v2"}}]}
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "catalog", "namespace": "shop"}, "spec": spec}


def to(subset: str, weight: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"destination": {"host": "catalog", "subset": subset}}
    if weight is not None:
        out["weight"] = weight
    return out


class World:
    def __init__(self, home: Path) -> None:
        block = address_block()
        self.ips = {name: f"{block}{i + 1}" for i, name in enumerate(("frontend", "v1a", "v1b", "v2", "otlp"))}
        self.backends = Backends()
        for name in ("v1a", "v1b", "v2"):
            self.backends.replica(name, self.ips[name])
        self.otlp = self.backends.otlp_sink(self.ips["otlp"])
        inbound = free_port(self.ips["v1a"])
        while not port_free(self.ips["frontend"], inbound):
            inbound = free_port(self.ips["v1a"])
        self.sidecars: dict[str, Sidecar] = {}
        self.not_ready: set[str] = set()
        for name, app, labels in (("frontend", "frontend", {"app": "frontend", "version": "v1"}),
                                  ("v1a", "catalog", {"app": "catalog", "version": "v1"})):
            ip = self.ips[name]
            identity = ProxyIdentity(f"{app}-{name}", "shop", ip, app, app, "v1", labels=labels)
            options = ProxyOptions(access_log=str(home / f"{name}-access.log"), otlp_url=self.otlp,
                                   outbound_port=free_port(ip), inbound_port=inbound)
            self.sidecars[name] = Sidecar(identity, home / name, options)
        self.apply()
        self.prometheus_port = free_port(self.ips["frontend"])
        try:
            for sidecar in self.sidecars.values():
                sidecar.start(self.prometheus_port if sidecar is self.frontend else None)
        except BaseException:
            self.close()
            raise

    @property
    def frontend(self) -> Sidecar:
        return self.sidecars["frontend"]

    def objects(self) -> list[dict[str, Any]]:
        reps = self.backends.replicas
        return [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "catalog", "namespace": "shop"},
             "spec": {"selector": {"app": "catalog"}, "clusterIP": CLUSTER_IP,
                      "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}},
            pod("frontend-frontend", self.ips["frontend"], 8080, {"app": "frontend", "version": "v1"}, True),
            pod("catalog-v1a", self.ips["v1a"], reps["v1a"].port, {"app": "catalog", "version": "v1"}, True),
            pod("catalog-v1b", self.ips["v1b"], reps["v1b"].port, {"app": "catalog", "version": "v1"}, False,
                ready="catalog-v1b" not in self.not_ready),
            pod("catalog-v2", self.ips["v2"], reps["v2"].port, {"app": "catalog", "version": "v2"}, False),
        ]

    def apply(self, *istio: dict[str, Any]) -> float:
        """Translate and push to every sidecar; once started, wait until all have it (seconds)."""
        self.backends.reset()
        mesh = Mesh.from_objects([*self.objects(), *istio])
        for sidecar in self.sidecars.values():
            sidecar.push(mesh)
        if all(s.envoy for s in self.sidecars.values()):
            return wait_applied(*self.sidecars.values())
        return 0.0

    def stat(self, name: str) -> int:
        assert self.frontend.envoy
        return self.frontend.envoy.stats().get(name, 0)

    def close(self) -> None:
        for sidecar in self.sidecars.values():
            sidecar.stop()
        self.backends.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("mesh"))
    try:
        yield w
    finally:
        w.close()


def test_without_a_virtual_service_every_name_of_the_service_reaches_its_ready_replicas(world: World) -> None:
    world.apply()
    for url in (URL, "http://catalog.shop:8080/p", f"http://{HOST}:8080/p", f"http://{CLUSTER_IP}:8080/p"):
        assert {r.status_code for r in send(world.frontend, url, 3)} == {200}, url
    sent = send(world.frontend, URL, 30)
    assert set(replicas(sent)) == {"v1a", "v1b", "v2"}
    line = world.frontend.logged(sent)[-1]
    assert line["reporter"] == "source" and line["upstream_cluster"] == f"outbound|8080||{HOST}"
    assert line["response_code"] == 200 and line["authority"] == "catalog:8080"
    # an address outside the registry: istiod's allow_any virtual host, passed through
    v2 = world.backends.replicas["v2"]
    direct = send(world.frontend, f"http://{v2.ip}:{v2.port}/direct")
    assert replicas(direct) == {"v2": 1}
    assert world.frontend.logged(direct)[0]["upstream_cluster"] == "PassthroughCluster"
    unknown = send(world.frontend, "http://nowhere.invalid:8080/")
    assert unknown[0].status_code == 503
    assert world.frontend.logged(unknown)[0]["response_flags"] == "DF"  # DNS resolution failed


def test_envoys_own_prometheus_listener_serves_its_stats(world: World) -> None:
    send(world.frontend, URL, 2)
    body = requests.get(f"http://{world.ips['frontend']}:{world.prometheus_port}/stats/prometheus", timeout=10).text
    assert "# TYPE envoy_cluster_upstream_rq_total counter" in body
    # Istio's tags: the whole cluster name, though it has dots
    assert f'envoy_cluster_upstream_rq_total{{cluster_name="outbound|8080||{HOST}"}}' in body
    assert f'envoy_cluster_upstream_rq{{response_code="200",cluster_name="outbound|8080||{HOST}"}}' in body


def test_a_meshed_replica_is_reached_through_its_sidecar_and_peers_exchange_metadata(world: World) -> None:
    world.apply(vs([{"route": [to("v1")]}]), dr())
    until("a request to reach v1a through its sidecar",
          lambda: "v1a" in replicas(send(world.frontend, URL, 4)))
    rep = world.backends.replicas["v1a"]
    peer = json.loads(base64.b64decode(rep.last_headers[PEER_HEADER]))
    assert peer["WORKLOAD_NAME"] == "frontend" and peer["NAMESPACE"] == "shop"
    assert rep.last_headers.get("traceparent", "").startswith("00-")
    inbound = until("the inbound access log", lambda: [
        line for line in world.sidecars["v1a"].access_log() if line["reporter"] == "destination"])
    assert inbound[-1]["upstream_cluster"] == f"inbound|{rep.port}||"
    assert inbound[-1]["downstream_remote"].startswith(f"{world.ips['frontend']}:")  # from the frontend pod's IP
    assert inbound[-1]["peer"] is not None
    assert json.loads(base64.b64decode(inbound[-1]["peer"]))["WORKLOAD_NAME"] == "frontend"
    outbound = until("the outbound access log with the destination's metadata", lambda: [
        line for line in world.frontend.access_log() if line["upstream_host"] == f"{world.ips['v1a']}:"
        f"{world.sidecars['v1a'].options.inbound_port}" and line["peer"]])
    assert json.loads(base64.b64decode(outbound[-1]["peer"]))["WORKLOAD_NAME"] == "catalog"


def test_weighted_destinations_split_the_traffic(world: World) -> None:
    world.apply(vs([{"route": [to("v1", 75), to("v2", 25)]}]), dr())
    before = world.stat(f"cluster.{V2}.upstream_rq_total")
    seen = replicas(send(world.frontend, URL, 200))
    share = seen["v2"] / 200
    assert 0.12 < share < 0.38, seen
    assert world.stat(f"cluster.{V2}.upstream_rq_total") - before == seen["v2"]
    world.apply(vs([{"route": [to("v1", 0), to("v2", 100)]}]), dr())
    assert replicas(send(world.frontend, URL, 20)) == {"v2": 20}


def test_header_and_uri_matches_route_before_the_catch_all(world: World) -> None:
    world.apply(vs([
        {"match": [{"headers": {"x-user": {"exact": "tester"}}}, {"uri": {"regex": "/beta/[0-9]+"}}],
         "route": [to("v2")]},
        {"match": [{"uri": {"prefix": "/admin"}}], "directResponse": {"status": 403, "body": {"string": "no"}}},
        {"route": [to("v1")]}]), dr())
    assert replicas(send(world.frontend, URL, 10, headers={"x-user": "tester"})) == {"v2": 10}
    assert replicas(send(world.frontend, "http://catalog:8080/beta/42", 5)) == {"v2": 5}
    assert set(replicas(send(world.frontend, "http://catalog:8080/beta/x", 10))) <= {"v1a", "v1b"}
    assert set(replicas(send(world.frontend, URL, 10, headers={"x-user": "other"}))) <= {"v1a", "v1b"}
    denied = send(world.frontend, "http://catalog:8080/admin/users")[0]
    assert denied.status_code == 403 and denied.text == "no"


def test_a_virtual_service_without_a_catch_all_answers_404_NR(world: World) -> None:
    world.apply(vs([{"match": [{"uri": {"prefix": "/only"}}], "route": [to("v1")]}]), dr())
    sent = send(world.frontend, URL)
    assert sent[0].status_code == 404
    assert world.frontend.logged(sent)[0]["response_flags"] == "NR"


def test_fault_abort_and_delay_are_injected_before_the_router(world: World) -> None:
    prefix = f"http.outbound_0.0.0.0_{world.frontend.options.outbound_port}.fault"
    world.apply(vs([{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}}, "route": [to("v1")]}]),
                dr())
    aborted = world.stat(f"{prefix}.aborts_injected")
    sent = send(world.frontend, URL, 5)
    assert {r.status_code for r in sent} == {503}
    assert world.stat(f"{prefix}.aborts_injected") - aborted == 5
    assert {line["response_flags"] for line in world.frontend.logged(sent)} == {"FI"}
    assert sum(r.seen for r in world.backends.replicas.values()) == 0  # the app never saw them

    world.apply(vs([{"fault": {"abort": {"httpStatus": 500, "percentage": {"value": 30}}}, "route": [to("v1")]}]),
                dr())
    codes = [r.status_code for r in send(world.frontend, URL, 200)]
    assert 0.15 < codes.count(500) / 200 < 0.45, codes.count(500)

    world.apply(vs([{"fault": {"delay": {"fixedDelay": "300ms", "percentage": {"value": 100.0}}},
                     "route": [to("v1")]}]), dr())
    delayed = world.stat(f"{prefix}.delays_injected")
    start = time.monotonic()
    sent = send(world.frontend, URL, 2)
    assert {r.status_code for r in sent} == {200}
    assert time.monotonic() - start >= 0.6
    assert world.stat(f"{prefix}.delays_injected") - delayed == 2
    assert {line["response_flags"] for line in world.frontend.logged(sent)} == {"DI"}


def test_istios_default_retries_hide_a_flaky_replica_and_attempts_zero_shows_it(world: World) -> None:
    world.apply(vs([{"route": [to("v2")]}]), dr())
    world.backends.replicas["v2"].fail_every = 2
    retried = world.stat(f"cluster.{V2}.upstream_rq_retry")
    sent = send(world.frontend, URL, 10)
    assert {r.status_code for r in sent} == {200}
    assert world.stat(f"cluster.{V2}.upstream_rq_retry") - retried >= 4
    assert max(int(line["attempts"]) for line in world.frontend.logged(sent)) == 2

    world.apply(vs([{"route": [to("v2")], "retries": {"attempts": 0}}]), dr())
    world.backends.replicas["v2"].fail_every = 2
    sent = send(world.frontend, URL, 10)
    assert [r.status_code for r in sent].count(503) == 5
    assert {line["attempts"] for line in world.frontend.logged(sent)} == {1}

    world.apply(vs([{"route": [to("v2")], "retries": {"attempts": 1, "retryOn": "500"}}]), dr())
    world.backends.replicas["v2"].status = 500
    sent = send(world.frontend, URL)
    assert sent[0].status_code == 500
    last = world.frontend.logged(sent)[0]
    assert last["attempts"] == 2 and last["response_flags"] == "URX"


def test_a_route_timeout_answers_504_UT(world: World) -> None:
    world.apply(vs([{"route": [to("v2")], "timeout": "0.2s", "retries": {"attempts": 0}}]), dr())
    world.backends.replicas["v2"].delay = 1.0
    sent = send(world.frontend, URL)
    assert sent[0].status_code == 504
    assert world.frontend.logged(sent)[0]["response_flags"] == "UT"
    assert world.stat(f"cluster.{V2}.upstream_rq_timeout") >= 1


def test_outlier_detection_ejects_the_failing_replica(world: World) -> None:
    policy = {"loadBalancer": {"simple": "ROUND_ROBIN"},
              "outlierDetection": {"consecutive5xxErrors": 2, "interval": "1s", "baseEjectionTime": "30s",
                                   "maxEjectionPercent": 100}}
    world.apply(vs([{"route": [to("v1")], "retries": {"attempts": 0}}]), dr(policy))
    world.backends.replicas["v1b"].status = 500
    ejected = f"cluster.{V1}.outlier_detection.ejections_enforced_consecutive_5xx"
    before = world.stat(ejected)
    codes = [r.status_code for r in send(world.frontend, URL, 4)]
    assert codes.count(500) >= 2  # round robin: every other request, until the second in a row ejects it
    # the worker reports to the main thread, which ejects the host and tells the worker: not in the same instant
    until("the failing replica to be ejected", lambda: world.stat(ejected) == before + 1, timeout=10, every=0.05)
    seen = world.backends.replicas["v1b"].seen
    assert [r.status_code for r in send(world.frontend, URL, 10)] == [200] * 10
    assert world.backends.replicas["v1b"].seen == seen
    summary = config_dump(world.frontend.envoy)  # type: ignore[arg-type]
    hosts = {e["address"]: e["health"] for e in summary.cluster(V1)["endpoints"]}  # type: ignore[index]
    assert hosts[f"{world.ips['v1b']}:{world.backends.replicas['v1b'].port}"] == "failed_outlier_check"
    assert summary.cluster(V1)["lb_policy"] == "ROUND_ROBIN"  # type: ignore[index]


def test_a_subset_no_destination_rule_defines_is_a_missing_cluster_503_NC(world: World) -> None:
    world.apply(vs([{"route": [to("canary")]}]), dr())
    sent = send(world.frontend, URL)
    assert sent[0].status_code == 503
    assert world.frontend.logged(sent)[0]["response_flags"] == "NC"
    summary = config_dump(world.frontend.envoy)  # type: ignore[arg-type]
    assert summary.missing == [f"outbound|8080|canary|{HOST}"]
    row = summary.route_for("catalog:8080")[0]
    assert row["clusters"] == {f"outbound|8080|canary|{HOST}": 100}


def test_an_endpoint_change_reaches_envoy_by_eds_and_leaves_the_cluster_be(world: World) -> None:
    world.apply(vs([{"route": [to("v1")]}]), dr())
    assert world.frontend.delivery.file("eds", V1).exists()
    added = world.stat("cluster_manager.cluster_added")
    world.not_ready.add("catalog-v1b")
    try:
        mesh = Mesh.from_objects([*world.objects(), vs([{"route": [to("v1")]}]), dr()])
        assert set(world.frontend.push(mesh)) == {world.frontend.delivery.file("eds", V1).name,
                                                  world.frontend.delivery.file("eds", f"outbound|8080||{HOST}").name}
        until("v1b to leave the v1 subset", lambda: set(replicas(send(world.frontend, URL, 6))) == {"v1a"},
              every=0.05)
        summary = config_dump(world.frontend.envoy)  # type: ignore[arg-type]
        assert [e["address"].split(":")[0] for e in summary.cluster(V1)["endpoints"]] == [  # type: ignore[index]
            world.ips["v1a"]]
        assert world.stat("cluster_manager.cluster_added") == added  # no cluster was replaced
    finally:
        world.not_ready.clear()
        world.apply(vs([{"route": [to("v1")]}]), dr())


def test_envoy_traces_to_the_otlp_collector(world: World) -> None:
    world.apply()
    sent = len(world.backends.otlp_bodies)
    send(world.frontend, URL, 3)
    until("spans from both sidecars at the OTLP receiver", lambda: len(world.backends.otlp_bodies) > sent,
          timeout=30)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    names = set()
    for content_type, body in world.backends.otlp_bodies:
        assert content_type == "application/x-protobuf"
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            names.update(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
    assert "frontend.shop" in names


def test_a_change_reaches_running_envoys(world: World, record_property: Any) -> None:
    world.apply(vs([{"route": [to("v1")]}]), dr())
    start = time.monotonic()
    world.apply(vs([{"route": [to("v2")]}]), dr())
    until("requests to follow the new route", lambda: replicas(send(world.frontend, URL)) == {"v2": 1},
          timeout=10, every=0.01)
    record_property("config_change_seconds", round(time.monotonic() - start, 3))


def test_envoy_accepts_every_feature_the_translation_writes(world: World) -> None:
    """Everything translated at once (ServiceEntries, connection pool, port-level settings, redirects, rewrites,
    header operations, query and method matches...) is accepted by Envoy: a rejected file would never apply."""
    def rejected() -> dict[str, int]:
        return {k: v for k, v in world.frontend.envoy.stats("update_rejected").items() if v}  # type: ignore[union-attr]
    before = rejected()
    rule = dr({"loadBalancer": {"simple": "RANDOM"},
               "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "2s"},
                                  "http": {"http1MaxPendingRequests": 5, "http2MaxRequests": 20, "maxRetries": 3,
                                           "maxRequestsPerConnection": 100, "idleTimeout": "30s"}},
               "outlierDetection": {"consecutiveGatewayErrors": 2, "consecutive5xxErrors": 4, "interval": "2s",
                                    "baseEjectionTime": "10s", "maxEjectionPercent": 30, "minHealthPercent": 50,
                                    "splitExternalLocalOriginErrors": True, "consecutiveLocalOriginFailures": 3},
               "portLevelSettings": [{"port": {"number": 8080}, "loadBalancer": {"simple": "LEAST_REQUEST"}}]})
    entries = [{"apiVersion": "networking.istio.io/v1alpha3", "kind": "ServiceEntry",
                "metadata": {"name": name, "namespace": "shop"}, "spec": spec} for name, spec in (
        ("static", {"hosts": ["payments.example.com"], "resolution": "STATIC",
                    "ports": [{"number": 443, "name": "http", "protocol": "HTTP"}],
                    "endpoints": [{"address": world.ips["v2"], "ports": {"http": world.backends.replicas["v2"].port},
                                   "labels": {"version": "v2"}}]}),
        ("dns", {"hosts": ["api.example.com"], "resolution": "DNS",
                 "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}))]
    world.apply(vs([
        {"name": "moved", "match": [{"uri": {"exact": "/old"}, "method": {"exact": "GET"}}],
         "redirect": {"uri": "/new", "authority": "catalog:8080", "redirectCode": 302}},
        {"match": [{"queryParams": {"beta": {"exact": "1"}}, "headers": {"x-id": {"prefix": "a"}},
                    "ignoreUriCase": True, "uri": {"prefix": "/API"}}],
         "rewrite": {"uri": "/v2", "authority": "catalog.internal"},
         "headers": {"request": {"set": {"x-canary": "yes"}, "remove": ["x-debug"]},
                     "response": {"add": {"x-served-by": "mesh"}}},
         "route": [to("v2")], "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "gateway-error"},
         "timeout": "5s"},
        {"route": [to("v1", 50), to("v2", 50)],
         "fault": {"delay": {"fixedDelay": "1ms", "percentage": {"value": 0.1}}}}]), rule, *entries)
    assert world.frontend.config and world.frontend.config.warnings == []
    assert rejected() == before
    moved = send(world.frontend, "http://catalog:8080/old")[0]
    assert [(r.status_code, r.headers["location"]) for r in moved.history] == [(302, "http://catalog:8080/new")]
    rewritten = send(world.frontend, "http://catalog:8080/api/items?beta=1", headers={"x-id": "abc"})[0]
    assert rewritten.json() == {"replica": "v2", "path": "/v2/items?beta=1"}
    assert rewritten.headers["x-served-by"] == "mesh"
    v2 = world.backends.replicas["v2"]
    assert v2.last_headers["x-canary"] == "yes" and v2.last_headers["Host"] == "catalog.internal"
    paid = send(world.frontend, "http://payments.example.com:443/pay")
    assert replicas(paid) == {"v2": 1}
    assert world.frontend.logged(paid)[0]["upstream_cluster"] == "outbound|443||payments.example.com"


def test_a_configuration_envoy_rejects_leaves_the_last_one_in_force_and_says_why(world: World) -> None:
    world.apply(vs([{"route": [to("v2")]}]), dr())
    bad = vs([{"match": [{"uri": {"regex": "/(unclosed"}}], "route": [to("v1")]}, {"route": [to("v1")]}])
    mesh = Mesh.from_objects([*world.objects(), bad, dr()])
    world.frontend.push(mesh)
    summary = until("Envoy to reject the route configuration", lambda: (
        s if (s := config_dump(world.frontend.envoy)).rejected else None))  # type: ignore[arg-type]
    assert list(summary.rejected) == [
        f"http.outbound_0.0.0.0_{world.frontend.options.outbound_port}.rds.virtualOutbound.update_rejected"]
    assert summary.last_rejection.endswith("rejected: missing ): /(unclosed")  # RE2's words
    assert replicas(send(world.frontend, URL, 5)) == {"v2": 5}  # still the previous routes


def test_an_ingress_gateway_routes_the_virtual_services_bound_to_its_gateway(world: World, tmp_path: Path) -> None:
    ip = world.ips["otlp"]
    edge = free_port(ip)
    identity = ProxyIdentity("istio-ingressgateway-1", "istio-system", ip, "istio-ingressgateway",
                             "istio-ingressgateway", labels={"istio": "ingressgateway", "app": "istio-ingressgateway"})
    gateway = Sidecar(identity, tmp_path, ProxyOptions(access_log=str(tmp_path / "access.log")),
                      lambda mesh, who, options: translate_gateway(mesh, who, options, listen={80: edge}))
    gw = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
          "metadata": {"name": "shop-gateway", "namespace": "shop"},
          "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
              {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
              {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
               "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"}}]}}
    edge_vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "edge", "namespace": "shop"},
               "spec": {"hosts": ["shop.example.com"], "gateways": ["shop-gateway"], "http": [
                   {"match": [{"uri": {"prefix": "/catalog/"}}], "rewrite": {"uri": "/"},
                    "route": [{"destination": {"host": "catalog", "port": {"number": 8080}, "subset": "v2"}}]}]}}
    gateway.push(Mesh.from_objects([*world.objects(), gw, edge_vs, dr()]))
    assert gateway.config and gateway.config.warnings == [
        "Gateway shop/shop-gateway: HTTPS server on port 443 is not supported by the labkit simulator (ignored)"]
    gateway.start()
    try:
        with requests.Session() as s:
            s.trust_env = False
            ok = s.get(f"http://{ip}:{edge}/catalog/products", headers={"Host": "shop.example.com"}, timeout=10)
            assert ok.json() == {"replica": "v2", "path": "/products"}
            assert s.get(f"http://{ip}:{edge}/catalog/p", headers={"Host": "other.example.com"},
                         timeout=10).status_code == 404
        line = until("the gateway's access log", lambda: gateway.access_log())[0]
        assert line["upstream_cluster"] == f"outbound|8080|v2|{HOST}" and line["reporter"] == "source"
    finally:
        gateway.stop()
