"""istiod's translation, read from the Envoy configuration it produces (no Envoy here: test_envoy.py proves the
same configuration against real Envoys)."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.mesh.identity import PEER_HEADER, ProxyIdentity, access_log_format, peer_metadata
from labkit.mesh.translate import Mesh, ProxyConfig, ProxyOptions, translate
from labkit.mesh.translate.naming import proto_duration
from labkit.mesh.translate.policies import RETRY_ON

HOST = "catalog.shop.svc.cluster.local"
ME = ProxyIdentity("frontend-1", "shop", "127.250.0.1", "frontend", "frontend", "v1",
                   labels={"app": "frontend", "version": "v1"})


def service(name: str, ns: str = "shop", ports: tuple[int, ...] = (8080,), ip: str = "10.96.0.9") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "clusterIP": ip,
                     "ports": [{"name": f"http-{p}", "port": p, "targetPort": "http"} for p in ports]}}


def pod(name: str, ip: str, labels: dict[str, str], meshed: bool = False, ready: bool = True,
        ns: str = "shop") -> dict[str, Any]:
    containers = [{"name": "app", "ports": [{"name": "http", "containerPort": 9000}]}]
    if meshed:
        containers.append({"name": "istio-proxy"})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": containers}, "status": {"podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def istio(kind: str, name: str, spec: dict[str, Any], ns: str = "shop", version: str = "v1",
          created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"apiVersion": f"networking.istio.io/{version}", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


SUBSETS = [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]
BASE = [service("catalog"), service("frontend"), service("orders", ns="billing", ports=(80, 8081), ip="10.96.0.7"),
        pod("catalog-a", "127.250.0.2", {"app": "catalog", "version": "v1"}, meshed=True),
        pod("catalog-b", "127.250.0.3", {"app": "catalog", "version": "v2"}),
        pod("catalog-c", "127.250.0.4", {"app": "catalog", "version": "v2"}, ready=False),
        pod("frontend-1", "127.250.0.1", {"app": "frontend", "version": "v1"}, meshed=True)]


def config(*objects: dict[str, Any], identity: ProxyIdentity = ME, **options: Any) -> ProxyConfig:
    return translate(Mesh.from_objects([*BASE, *objects]), identity, ProxyOptions(**options))


def vhost(cfg: ProxyConfig, name: str) -> dict[str, Any]:
    routes = cfg.route("virtualOutbound")
    assert routes
    return next(v for v in routes["virtual_hosts"] if v["name"] == name)


def action(cfg: ProxyConfig, name: str = f"{HOST}:8080", index: int = 0) -> dict[str, Any]:
    return vhost(cfg, name)["routes"][index]


def endpoints(cfg: ProxyConfig, cluster: str) -> list[str]:
    found = cfg.cluster(cluster)
    assert found, cluster
    return sorted(f"{e['endpoint']['address']['socket_address']['address']}:"
                  f"{e['endpoint']['address']['socket_address']['port_value']}"
                  for g in found["load_assignment"]["endpoints"] for e in g["lb_endpoints"])


def test_domains_are_every_name_a_pod_can_use_and_the_short_name_only_in_its_namespace() -> None:
    cfg = config()
    assert vhost(cfg, f"{HOST}:8080")["domains"] == [
        "catalog:8080", "catalog.shop:8080", "catalog.shop.svc:8080", f"{HOST}:8080", "10.96.0.9:8080",
        "catalog", "catalog.shop", "catalog.shop.svc", HOST, "10.96.0.9"]
    other = vhost(cfg, "orders.billing.svc.cluster.local:80")["domains"]
    assert "orders:80" not in other and "orders.billing:80" in other and "orders.billing" in other
    # an authority without a port is port 80's, never the service's other port's
    assert vhost(cfg, "orders.billing.svc.cluster.local:8081")["domains"] == [
        "orders.billing:8081", "orders.billing.svc:8081", "orders.billing.svc.cluster.local:8081", "10.96.0.7:8081"]
    assert vhost(cfg, "allow_any")["routes"][0]["route"] == {"cluster": "PassthroughCluster", "timeout": "0s"}
    assert cfg.cluster("PassthroughCluster")["cluster_type"]["name"] == "envoy.clusters.dynamic_forward_proxy"  # type: ignore
    closed = config(registry_only=True)
    assert vhost(closed, "block_all")["routes"][0]["direct_response"] == {"status": 502}
    assert closed.cluster("PassthroughCluster") is None


def test_clusters_per_port_and_subset_with_endpoints_of_ready_pods() -> None:
    cfg = config(istio("DestinationRule", "catalog", {"host": "catalog", "subsets": SUBSETS}))
    names = {c["name"] for c in cfg.clusters}
    assert {f"outbound|8080||{HOST}", f"outbound|8080|v1|{HOST}", f"outbound|8080|v2|{HOST}",
            "outbound|80||orders.billing.svc.cluster.local", "inbound|9000||"} <= names
    # a meshed pod by its sidecar's inbound port, the others on their (named) target port; not ready: left out
    assert endpoints(cfg, f"outbound|8080||{HOST}") == ["127.250.0.2:15006", "127.250.0.3:9000"]
    assert endpoints(cfg, f"outbound|8080|v2|{HOST}") == ["127.250.0.3:9000"]
    assert endpoints(cfg, "inbound|9000||") == ["127.250.0.1:9000"]
    assert cfg.cluster(f"outbound|8080||{HOST}")["lb_policy"] == "LEAST_REQUEST"  # type: ignore[index]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_api_version_spelling_translates_the_same(version: str) -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [
        {"route": [{"destination": {"host": "catalog", "subset": "v1"}, "weight": 90},
                   {"destination": {"host": "catalog", "subset": "v2"}, "weight": 10}]}]}, version=version))
    assert action(cfg)["route"]["weighted_clusters"] == {"clusters": [
        {"name": f"outbound|8080|v1|{HOST}", "weight": 90}, {"name": f"outbound|8080|v2|{HOST}", "weight": 10}]}


def test_an_unknown_api_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown API version networking\.istio\.io/v2"):
        Mesh.from_objects([istio("VirtualService", "x", {}, version="v2")])


def test_the_default_route_has_istios_default_retries_and_no_timeout() -> None:
    route = action(config())
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["cluster"] == f"outbound|8080||{HOST}"
    assert route["route"]["timeout"] == "0s"
    assert route["route"]["retry_policy"] == {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2, "retriable_status_codes": [503], "host_selection_retry_max_attempts": 5,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}]}


def test_retries_timeout_and_faults() -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog.shop.svc.cluster.local"], "http": [
        {"match": [{"uri": {"prefix": "/a"}}], "route": [{"destination": {"host": "catalog"}}],
         "retries": {"attempts": 3, "retryOn": "5xx,gateway-error,503", "perTryTimeout": "250ms"},
         "timeout": "1m30s",
         "fault": {"delay": {"fixedDelay": "2s", "percentage": {"value": 12.5}},
                   "abort": {"httpStatus": 503, "percentage": {"value": 20}}}},
        {"route": [{"destination": {"host": "catalog"}}], "retries": {"attempts": 0}}]}))
    first, second = action(cfg, index=0), action(cfg, index=1)
    retry = first["route"]["retry_policy"]
    assert (retry["num_retries"], retry["retry_on"], retry["retriable_status_codes"], retry["per_try_timeout"]) == (
        3, "5xx,gateway-error,retriable-status-codes", [503], "0.25s")
    assert first["route"]["timeout"] == "90s"
    assert first["typed_per_filter_config"]["envoy.filters.http.fault"] == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "delay": {"fixed_delay": "2s", "percentage": {"numerator": 125000, "denominator": "MILLION"}},
        "abort": {"http_status": 503, "percentage": {"numerator": 200000, "denominator": "MILLION"}}}
    assert "retry_policy" not in second["route"] and "typed_per_filter_config" not in second
    assert RETRY_ON in str(action(config())["route"]["retry_policy"])


def test_the_fault_filter_sits_before_the_forward_proxy_and_the_router_on_the_outbound_listener_only() -> None:
    cfg = config()
    chains = {lst["name"]: [f["name"] for f in lst["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]]
              for lst in cfg.listeners}
    assert chains == {"virtualOutbound": ["envoy.filters.http.fault", "envoy.filters.http.dynamic_forward_proxy",
                                          "envoy.filters.http.router"],
                      "virtualInbound": ["envoy.filters.http.router"]}


def test_matches_become_one_envoy_route_each_in_order() -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [
        {"match": [{"headers": {"x-user": {"exact": "qa"}}, "uri": {"exact": "/p"}},
                   {"uri": {"regex": "/p/[0-9]+"}, "withoutHeaders": {"x-beta": {}}},
                   {"uri": {"prefix": "/P"}, "ignoreUriCase": True, "method": {"exact": "GET"}}],
         "route": [{"destination": {"host": "catalog", "subset": "v2"}}]},
        {"route": [{"destination": {"host": "catalog", "subset": "v1"}}]}]}))
    routes = vhost(cfg, f"{HOST}:8080")["routes"]
    assert [r["match"] for r in routes] == [
        {"path": "/p", "headers": [{"name": "x-user", "string_match": {"exact": "qa"}, "invert_match": False}]},
        {"safe_regex": {"regex": "/p/[0-9]+"}, "headers": [
            {"name": "x-beta", "present_match": True, "invert_match": True}]},
        {"prefix": "/P", "case_sensitive": False, "headers": [
            {"name": ":method", "string_match": {"exact": "GET"}, "invert_match": False}]},
        {"prefix": "/"}]
    assert [r["route"]["cluster"].split("|")[2] for r in routes] == ["v2", "v2", "v2", "v1"]


def test_zero_weights_are_dropped_and_a_single_destination_is_a_plain_cluster() -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [{"route": [
        {"destination": {"host": "catalog", "subset": "v1"}, "weight": 100},
        {"destination": {"host": "catalog", "subset": "v2"}, "weight": 0}]}]}))
    assert action(cfg)["route"]["cluster"] == f"outbound|8080|v1|{HOST}"


def test_a_subset_without_a_destination_rule_names_a_cluster_that_is_not_built() -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [
        {"route": [{"destination": {"host": "catalog", "subset": "canary"}}]}]}))
    assert action(cfg)["route"]["cluster"] == f"outbound|8080|canary|{HOST}"
    assert cfg.cluster(f"outbound|8080|canary|{HOST}") is None


def test_traffic_policy_load_balancer_and_outlier_detection() -> None:
    cfg = config(istio("DestinationRule", "catalog", {"host": "catalog", "subsets": [
        {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
        {"name": "v2", "labels": {"version": "v2"}}],
        "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"},
                          "connectionPool": {"http": {"http1MaxPendingRequests": 7}},
                          "outlierDetection": {"consecutive5xxErrors": 3, "interval": "5s",
                                               "baseEjectionTime": "1m", "maxEjectionPercent": 50},
                          "portLevelSettings": [{"port": {"number": 8080},
                                                 "loadBalancer": {"simple": "LEAST_CONN"}}]}}))
    v1, v2 = cfg.cluster(f"outbound|8080|v1|{HOST}"), cfg.cluster(f"outbound|8080|v2|{HOST}")
    assert v1 and v2
    assert (v1["lb_policy"], v2["lb_policy"]) == ("RANDOM", "LEAST_REQUEST")  # subset, then port level
    assert v2["outlier_detection"] == {"consecutive_5xx": 3, "enforcing_consecutive_5xx": 100, "interval": "5s",
                                       "base_ejection_time": "60s", "max_ejection_percent": 50,
                                       "enforcing_success_rate": 0}
    assert v2["common_lb_config"] == {"healthy_panic_threshold": {"value": 0}}
    assert v2["circuit_breakers"]["thresholds"][0]["max_pending_requests"] == 7


def test_the_proxys_namespace_destination_rule_wins() -> None:
    theirs = istio("DestinationRule", "a", {"host": HOST, "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
                   ns="billing")
    mine = istio("DestinationRule", "b", {"host": "orders.billing.svc.cluster.local",
                                          "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}})
    owner = istio("DestinationRule", "c", {"host": "orders", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
                  ns="billing")
    cfg = config(theirs, mine, owner)
    assert cfg.cluster("outbound|80||orders.billing.svc.cluster.local")["lb_policy"] == "ROUND_ROBIN"  # type: ignore
    assert cfg.cluster(f"outbound|8080||{HOST}")["lb_policy"] == "LEAST_REQUEST"  # type: ignore[index]


def test_only_mesh_bound_virtual_services_and_matching_source_labels_apply() -> None:
    gateway_only = istio("VirtualService", "edge", {"hosts": ["catalog"], "gateways": ["shop-gateway"], "http": [
        {"route": [{"destination": {"host": "catalog", "subset": "v2"}}]}]}, created="2025-01-01T00:00:00Z")
    cfg = config(gateway_only)
    assert action(cfg)["route"]["cluster"] == f"outbound|8080||{HOST}"
    by_source = istio("VirtualService", "catalog", {"hosts": ["catalog"], "gateways": ["mesh", "shop-gateway"],
                                                    "http": [
        {"match": [{"sourceLabels": {"app": "reviews"}}], "route": [{"destination": {"host": "catalog",
                                                                                     "subset": "v2"}}]},
        {"route": [{"destination": {"host": "catalog", "subset": "v1"}}]}]})
    routes = vhost(config(gateway_only, by_source), f"{HOST}:8080")["routes"]
    assert [r["route"]["cluster"] for r in routes] == [f"outbound|8080|v1|{HOST}"]


def test_service_entries_are_clusters_of_their_endpoints_or_dns() -> None:
    static = istio("ServiceEntry", "payments", {"hosts": ["payments.example.com"], "location": "MESH_EXTERNAL",
                                                "ports": [{"number": 443, "name": "http", "protocol": "HTTP"}],
                                                "resolution": "STATIC", "endpoints": [{"address": "127.250.9.9"}]})
    dns = istio("ServiceEntry", "api", {"hosts": ["api.example.com"], "resolution": "DNS",
                                        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]})
    cfg = config(static, dns)
    assert endpoints(cfg, "outbound|443||payments.example.com") == ["127.250.9.9:443"]
    api = cfg.cluster("outbound|80||api.example.com")
    assert api and api["type"] == "STRICT_DNS"
    # connections leave from the pod's address only to loopback endpoints (not to DNS names or the passthrough)
    assert "upstream_bind_config" not in api and "upstream_bind_config" not in cfg.cluster("PassthroughCluster")  # type: ignore
    assert cfg.cluster(f"outbound|8080||{HOST}")["upstream_bind_config"] == {  # type: ignore[index]
        "source_address": {"address": ME.ip, "port_value": 0}}
    assert vhost(cfg, "payments.example.com:443")["domains"] == ["payments.example.com", "payments.example.com:443"]


def test_a_service_entry_shadowing_a_service_keeps_the_service() -> None:
    shadow = istio("ServiceEntry", "shadow", {"hosts": [HOST], "resolution": "STATIC", "endpoints": [
        {"address": "127.250.9.9"}], "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}]})
    cfg = config(shadow)
    assert [v["name"] for v in cfg.route("virtualOutbound")["virtual_hosts"]].count(f"{HOST}:8080") == 1  # type: ignore
    assert cfg.warnings == [f"{HOST}:8080: every name is another service's (ignored)"]
    names = [c["name"] for c in cfg.clusters]
    assert len(names) == len(set(names))  # Envoy refuses a CDS update naming a cluster twice
    assert endpoints(cfg, f"outbound|8080||{HOST}") == ["127.250.0.2:15006", "127.250.0.3:9000"]


def test_a_service_without_a_selector_routes_to_the_ready_addresses_of_its_endpoints() -> None:
    """What kube-controller-manager mirrors into EndpointSlices for istiod: the port the Service's port names."""
    collector = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "collector", "namespace": "tracing"},
                 "spec": {"ports": [{"name": "otlp-http", "port": 4318}, {"name": "query", "port": 16686}]}}
    addresses = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "collector", "namespace": "tracing"},
                 "subsets": [{"addresses": [{"ip": "127.250.8.8"}], "notReadyAddresses": [{"ip": "127.250.8.9"}],
                              "ports": [{"name": "query", "port": 40001}, {"name": "otlp-http", "port": 40002}]}]}
    host = "collector.tracing.svc.cluster.local"
    assert endpoints(config(collector, addresses), f"outbound|4318||{host}") == ["127.250.8.8:40002"]
    assert endpoints(config(collector, addresses), f"outbound|16686||{host}") == ["127.250.8.8:40001"]
    assert endpoints(config(collector), f"outbound|4318||{host}") == []  # no Endpoints object: none


def test_what_the_sim_does_not_translate_is_a_warning() -> None:
    cfg = config(istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [
        {"route": [{"destination": {"host": "catalog"}}], "mirror": {"host": "catalog"},
         "fault": {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 10}}}}]}),
        istio("DestinationRule", "catalog", {"host": "catalog", "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}}),
        istio("Sidecar", "default", {"egress": [{"hosts": ["./*"]}]}))
    assert cfg.warnings == [
        "DestinationRule shop/catalog: loadBalancer ['consistentHash'] is not supported by the labkit simulator; "
        "LEAST_REQUEST is used",
        "DestinationRule shop/catalog: trafficPolicy.tls is not supported by the labkit simulator (ignored)",
        "Sidecar shop/default is not supported by the labkit simulator (ignored)",
        "VirtualService shop/catalog http[0].mirror is not supported by the labkit simulator (ignored)",
        "VirtualService shop/catalog: fault.abort.grpcStatus is not supported by the labkit simulator (ignored)"]


def test_inbound_listener_routes_the_services_of_this_pod_to_the_app_and_answers_with_peer_metadata() -> None:
    me = ProxyIdentity("catalog-a", "shop", "127.250.0.2", "catalog", "catalog", "v1",
                       labels={"app": "catalog", "version": "v1"})
    cfg = config(identity=me, inbound_port=15106)
    inbound = cfg.route("virtualInbound")
    assert inbound
    first = inbound["virtual_hosts"][0]
    assert "catalog.shop.svc.cluster.local:8080" in first["domains"]
    assert first["routes"][0]["route"]["cluster"] == "inbound|9000||"
    assert {"header": {"key": PEER_HEADER, "value": peer_metadata(me)},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"} in inbound["response_headers_to_add"]
    listener = next(lst for lst in cfg.listeners if lst["name"] == "virtualInbound")
    assert listener["address"]["socket_address"] == {"address": "127.250.0.2", "port_value": 15106}


def test_access_log_and_tracer_on_both_listeners() -> None:
    cfg = config(access_log="/tmp/x/access.log", otlp_url="http://127.250.0.9:4318/v1/traces", sampling=25.0)
    for listener, reporter in zip(cfg.listeners, ("source", "destination"), strict=True):
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        log = hcm["access_log"][0]["typed_config"]
        assert (log["path"], log["log_format"]["json_format"]) == ("/tmp/x/access.log", access_log_format(reporter))
        assert hcm["tracing"]["random_sampling"] == {"value": 25.0}
        tracer = hcm["tracing"]["provider"]["typed_config"]
        assert tracer["service_name"] == "frontend.shop"
        assert tracer["http_service"]["http_uri"]["uri"] == "http://127.250.0.9:4318/v1/traces"
    collector = cfg.cluster("opentelemetry_collector")
    assert collector and endpoints(cfg, "opentelemetry_collector") == ["127.250.0.9:4318"]


@pytest.mark.parametrize(("istio_duration", "proto"), [("2s", "2s"), ("1m30s", "90s"), ("250ms", "0.25s"),
                                                      ("1h", "3600s"), ("1.5s", "1.5s")])
def test_istio_durations(istio_duration: str, proto: str) -> None:
    assert proto_duration(istio_duration) == proto


def test_a_bad_duration_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid duration '2 seconds'"):
        proto_duration("2 seconds")


def test_a_pods_identity_names_its_deployment_as_istio_does() -> None:
    from labkit.mesh.translate.workloads import proxy_identity
    deployed = pod("catalog-7d9f8b6c5-x2x9q", "127.250.0.5", {"app": "catalog", "version": "v2",
                                                              "pod-template-hash": "7d9f8b6c5"})
    deployed["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "catalog-7d9f8b6c5",
                                                "controller": True}]
    deployed["spec"]["serviceAccountName"] = "catalog"
    me = proxy_identity(deployed)
    assert (me.workload, me.app, me.version, me.service_account, me.ip) == (
        "catalog", "catalog", "v2", "catalog", "127.250.0.5")
    assert me.node_id == "sidecar~127.250.0.5~catalog-7d9f8b6c5-x2x9q.shop~shop.svc.cluster.local"
    alone = proxy_identity(pod("debug", "127.250.0.6", {"app.kubernetes.io/name": "tools"}))
    assert (alone.workload, alone.app, alone.version, alone.cluster) == ("debug", "tools", "", "tools.shop")


def test_a_gateway_routes_only_the_virtual_services_bound_to_it_and_404s_the_rest() -> None:
    from labkit.mesh.translate.gateways import translate_gateway
    gw_identity = ProxyIdentity("istio-ingressgateway-1", "istio-system", "127.250.0.9", "istio-ingressgateway",
                                labels={"istio": "ingressgateway"})
    gateway = istio("Gateway", "edge", {"selector": {"istio": "ingressgateway"}, "servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["shop/*.example.com"]},
        {"port": {"number": 8000, "name": "http-alt", "protocol": "HTTP"}, "hosts": ["*"]},
        {"port": {"number": 9000, "name": "http-admin", "protocol": "HTTP"}, "hosts": ["shop/admin.example.org"]}]})
    bound = istio("VirtualService", "web", {"hosts": ["www.example.com"], "gateways": ["shop/edge"], "http": [
        {"route": [{"destination": {"host": "catalog", "port": {"number": 8080}}}]}]})
    elsewhere = istio("VirtualService", "api", {"hosts": ["api.example.com"], "gateways": ["edge"], "http": [
        {"route": [{"destination": {"host": "catalog"}}]}]}, ns="other")
    unbound = istio("VirtualService", "mesh-only", {"hosts": ["catalog"], "http": [
        {"route": [{"destination": {"host": "catalog", "subset": "v2"}}]}]})
    cfg = translate_gateway(Mesh.from_objects([*BASE, gateway, bound, elsewhere, unbound]), gw_identity,
                            listen={80: 18080})
    assert [(lst["name"], lst["address"]["socket_address"]["port_value"]) for lst in cfg.listeners] == [
        ("0.0.0.0_80", 18080), ("0.0.0.0_8000", 8000), ("0.0.0.0_9000", 9000)]
    http80, http8000, http9000 = cfg.route("http.80"), cfg.route("http.8000"), cfg.route("http.9000")
    assert http80 and http8000 and http9000
    assert [(v["name"], v["domains"]) for v in http80["virtual_hosts"]] == [
        ("www.example.com:80", ["www.example.com", "www.example.com:*"])]
    assert http80["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == f"outbound|8080||{HOST}"
    # "edge" in namespace other is other/edge, not shop/edge: only www is bound, on every server admitting it
    assert [v["name"] for v in http8000["virtual_hosts"]] == ["www.example.com:8000"]
    assert [(v["name"], v["routes"][0]["direct_response"]) for v in http9000["virtual_hosts"]] == [
        ("blackhole:9000", {"status": 404})]
    assert translate_gateway(Mesh.from_objects([*BASE, gateway]), ME).listeners == []  # not selected
