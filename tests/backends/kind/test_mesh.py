"""The mesh on kind: ``MeshKind``'s values checked statically (the gateway chart's own schema, the Telemetry CRD, one
tracing path from the sidecars' provider to Jaeger's receiver), then its helm installs through the contract harness
(Istio's CRDs served, the sim's istiod and Jaeger as the releases' pods, the gateway's objects, Kiali's values checked
against the cluster): Jaeger answers on the published ports (a span posted with plain OTLP/HTTP is found through
``/api/traces``), and values the charts or the harness refuse are refused."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from labkit.backends.kind.lab import KindLab
from labkit.endpoints import MeshEndpoint
from labkit.mesh import crds
from labkit.mesh.kind import (
    CHARTS,
    JAEGER_SERVICE,
    OTLP_HTTP_PORT,
    QUERY_PORT,
    MeshKind,
    gateway_values,
    istiod_values,
    jaeger_values,
    telemetry,
)
from tests.waiting import until

from .conftest import install_part
from .harness import Harness
from .harness.flags import Failure
from .harness.mesh import TELEMETRY_CRD, check_gateway, check_kiali, jaeger_ports, tracing_provider

KIALI_CRD = Path(__file__).parent / "schemas" / "kiali-operator-2.12.0-kialis.kiali.io.yaml"


def _unknown_keys(value: object, schema: dict, path: str = "") -> list[str]:
    """Keys of ``value`` its structural schema does not declare (what ``--validate=strict`` reports)."""
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields") or \
            "additionalProperties" in schema or "properties" not in schema:
        return []
    props = schema["properties"]
    return [f"{path}.{k}" for k in value if k not in props] + \
        [u for k, v in value.items() if k in props for u in _unknown_keys(v, props[k], f"{path}.{k}")]


def _values(lab: KindLab) -> dict[str, dict]:
    return {path.stem: yaml.safe_load(text) for path, text in MeshKind().files(lab).items()}


def test_the_values_trace_every_request_to_jaegers_receiver(rendered: KindLab) -> None:
    charts = rendered.versions["charts"]
    assert {charts[c]["version"] for c in ("istio-base", "istiod", "istio-ingressgateway")} == {crds.ISTIO_VERSION}
    assert rendered.versions["modules"]["mesh"]["charts"] == list(CHARTS)
    values = _values(rendered)
    istiod = values["istiod"]
    assert istiod["replicaCount"] == 1 and istiod["autoscaleEnabled"] is False
    mesh = istiod["meshConfig"]
    assert mesh["enableTracing"] is True and mesh["defaultConfig"]["tracing"] == {}  # no legacy tracer
    assert istiod["global"]["proxy"]["tracer"] == "none" and mesh["accessLogFile"] == "/dev/stdout"
    [provider] = mesh["extensionProviders"]
    otel = provider["opentelemetry"]
    jaeger_ns = charts["jaeger"]["namespace"]
    # the provider names Jaeger's Service and the OTLP/HTTP port its receiver listens on
    assert otel["service"] == f"{values['jaeger']['fullnameOverride']}.{jaeger_ns}.svc.cluster.local"
    receiver = values["jaeger"]["userconfig"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert otel["port"] == OTLP_HTTP_PORT and receiver.endswith(f":{otel['port']}") and otel["http"]["path"] == \
        "/v1/traces"
    assert tracing_provider(istiod) == (otel["service"], OTLP_HTTP_PORT)  # what the harness's istiod runs with
    jaeger_ports(values["jaeger"])
    store = values["jaeger"]["userconfig"]["extensions"]["jaeger_storage"]["backends"]["memstore"]["memory"]
    assert 0 < store["max_traces"] <= 20000

    tel = values["telemetry"]  # the mesh-wide Telemetry selects that provider for every request
    assert tel["metadata"]["namespace"] == charts["istiod"]["namespace"]
    assert tel["spec"]["tracing"] == [{"providers": [{"name": provider["name"]}], "randomSamplingPercentage": 100.0}]
    crd = yaml.safe_load(TELEMETRY_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == tel["apiVersion"].split("/")[1])
    assert version["served"] and crd["spec"]["group"] == tel["apiVersion"].split("/")[0]
    jsonschema.validate(tel["spec"], version["schema"]["openAPIV3Schema"]["properties"]["spec"])

    check_gateway(values["istio-ingressgateway"])  # the gateway chart's own values schema
    assert values["istio-ingressgateway"]["service"]["type"] == "NodePort"
    kiali = values["kiali-server"]
    assert kiali["auth"]["strategy"] == "anonymous" and kiali["server"]["node_port"] == charts["kiali-server"][
        "node_port"]
    assert kiali["external_services"]["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.monitoring" \
        ".svc.cluster.local:9090"
    assert kiali["external_services"]["tracing"]["internal_url"] == f"http://{otel['service']}:{QUERY_PORT}"
    # the chart's values are the Kiali CR's spec (its ConfigMap): every key one the CRD declares, of its type
    spec = yaml.safe_load(KIALI_CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"]
    jsonschema.validate(kiali, spec)
    assert _unknown_keys(kiali, spec) == []
    assert _unknown_keys({"external_services": {"tracing": {"interal_url": "x"}}}, spec) == [
        ".external_services.tracing.interal_url"]  # a typo is found

    ep = MeshKind().endpoint(rendered)
    assert isinstance(ep, MeshEndpoint) and ep.istiod == ""
    assert (ep.url, ep.otlp, ep.kiali) == tuple(rendered.host_url(p) for p in ("jaeger", "jaeger-otlp", "kiali"))


@pytest.mark.parametrize(("values", "words"), [
    ({**gateway_values(30180), "service": {"type": 80}}, r"at '/service/type': 80 is not of type 'string'"),
    ({**gateway_values(30180), "replicas": 2}, r"Additional properties are not allowed \('replicas' was unexpected"),
])
def test_the_gateway_charts_schema_refuses_broken_values(values: dict, words: str) -> None:
    with pytest.raises(Failure, match=words):
        check_gateway(values)


def test_the_harness_refuses_tracing_it_cannot_honour() -> None:
    good = jaeger_values()
    badger = json.loads(json.dumps(good))
    badger["userconfig"]["extensions"]["jaeger_storage"]["backends"]["memstore"] = {"badger": {"ephemeral": True}}
    with pytest.raises(Failure, match="memory storage only"):
        jaeger_ports(badger)
    grpc = istiod_values("jaeger-collector.istio-system.svc.cluster.local")
    del grpc["meshConfig"]["extensionProviders"][0]["opentelemetry"]["http"]
    with pytest.raises(Failure, match="OTLP/HTTP only"):
        tracing_provider(grpc)
    with pytest.raises(Failure, match="one istiod"):
        tracing_provider({**istiod_values("x"), "replicaCount": 2})
    with pytest.raises(Failure, match="does not name a cluster Service"):  # Kiali reaches Prometheus in the cluster
        check_kiali(lambda *a, **k: None, {"external_services": {"prometheus": {"url": "http://localhost:9090"}}})


def _helm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["helm", *args], capture_output=True, text=True, env=env, timeout=120)


def test_mesh_charts_install_jaeger_answers_on_its_published_ports(harness: Harness, rendered: KindLab) -> None:
    part = MeshKind()
    assert install_part(harness, rendered, part) == \
        ["istio-base", "jaeger", "istiod", "istio-ingressgateway", "kiali-server"]
    charts = rendered.versions["charts"]

    def kubectl(*args: str) -> str:
        return rendered.run(rendered.kubectl(*args))

    crds_served = ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io",
                   "telemetries.telemetry.istio.io")
    assert kubectl("get", *(f"crd/{c}" for c in crds_served), "-o", "name").split() == \
        [f"customresourcedefinition.apiextensions.k8s.io/{c}" for c in crds_served]
    tel, jaeger, istiod = json.loads(kubectl("get", "-n", "istio-system", "telemetry/mesh-default",
                                             f"service/{JAEGER_SERVICE}", "endpoints/istiod", "-o", "json"))["items"]
    assert tel["spec"] == telemetry()["spec"]
    ports = {p["port"]: p for p in jaeger["spec"]["ports"]}
    assert (ports[QUERY_PORT]["nodePort"], ports[OTLP_HTTP_PORT]["nodePort"]) == (charts["jaeger"]["node_port"],
                                                                                 charts["jaeger"]["otlp_node_port"])
    # the sim's istiod serves its monitoring port behind the istiod Service it wrote
    address, port = istiod["subsets"][0]["addresses"][0]["ip"], istiod["subsets"][0]["ports"][0]["port"]
    assert requests.get(f"http://{address}:{port}/debug/syncz", timeout=10).ok
    gateway, deployment = json.loads(kubectl("get", "-n", "istio-ingress", "service/istio-ingressgateway",
                                             "deployment/istio-ingressgateway", "-o", "json"))["items"]
    assert gateway["spec"]["type"] == "NodePort" and charts["istio-ingressgateway"]["node_port"] in \
        [p.get("nodePort") for p in gateway["spec"]["ports"]]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["inject.istio.io/templates"] == "gateway"

    ep = part.endpoint(rendered)
    assert isinstance(ep, MeshEndpoint)
    # one span over plain OTLP/HTTP (JSON) to the published receiver, found through the published query
    trace_id, span_id, now = secrets.token_hex(16), secrets.token_hex(8), time.time_ns()
    service = f"harness-{secrets.token_hex(3)}"
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                             "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": span_id, "name": "GET /",
                                                          "kind": 2, "startTimeUnixNano": str(now - 5_000_000),
                                                          "endTimeUnixNano": str(now)}]}]}]}
    assert requests.post(ep.otlp + "/v1/traces", json=body, timeout=10).ok
    traces = until(f"{service}'s trace in Jaeger", lambda: requests.get(
        ep.url + "/api/traces", params={"service": service, "limit": 5}, timeout=10).json()["data"])
    assert traces[0]["traceID"] == trace_id and traces[0]["spans"][0]["operationName"] == "GET /"
    ok, detail = part.health(rendered, ep)
    assert ok, detail

    # a broken gateway value is refused by the chart's schema, as helm refuses it
    broken = part.folder(rendered) / "broken.yaml"
    broken.write_text(yaml.safe_dump({**gateway_values(30180), "service": {"type": "NodePort", "ports": "80"}}))
    gw = charts["istio-ingressgateway"]
    res = _helm({**os.environ, **harness.env}, "upgrade", "--install", "istio-ingressgateway", gw["chart"], "--repo",
                gw["repo"], "--version", gw["version"], "--namespace", gw["namespace"], "--values", str(broken),
                "--kubeconfig", rendered.kubeconfig)
    assert res.returncode == 1 and res.stderr.startswith("Error: UPGRADE FAILED: values don't meet the specifications")
    assert "at '/service/ports': '80' is not of type 'array'" in res.stderr, res.stderr
