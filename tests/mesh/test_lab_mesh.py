"""The mesh wired into a sim lab, driven with the real kubectl: a labelled namespace's pods get the injected
istio-proxy (2/2), which runs pilot-agent and a real Envoy configured by the lab's istiod; the app's calls leave
through its sidecar (a VirtualService routes them), calls into a meshed pod arrive through its inbound listener,
``pilot-agent request`` reads Envoy's admin API, the agent's merged metrics count the requests, the spans reach
Jaeger, and a route to a subset no DestinationRule defines answers 503 NC."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import yaml

from labkit.lab import Lab

from ..conftest import kubectl
from ..waiting import until

NS = "meshed"
IMAGE = "localhost:5001/test/web"


def k(lab: Lab, *args: str, **kw: object) -> str:
    return kubectl(lab, "-n", NS, *args, **kw).stdout  # type: ignore[arg-type]


def deployment(name: str, tag: str, version: str) -> dict[str, object]:
    labels = {"app": "web", "version": version}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "web", "image": f"{IMAGE}:{tag}", "ports": [{"containerPort": 8080}],
                                         "env": [{"name": "HOST", "value": "0.0.0.0"}],
                                         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}


RULES = [
    {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "web"},
     "spec": {"host": "web", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                         {"name": "v2", "labels": {"version": "v2"}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "web"},
     "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web", "subset": "v2"}}]}]}},
]


@pytest.fixture(scope="module")
def meshed(runtime_lab: Lab) -> Iterator[Lab]:
    kubectl(runtime_lab, "create", "namespace", NS)
    kubectl(runtime_lab, "label", "namespace", NS, "istio-injection=enabled")
    manifests = [deployment("web", "1", "v1"), deployment("web-v2", "2", "v2"),
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                  "spec": {"selector": {"app": "web"}, "type": "NodePort",
                           "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}]
    k(runtime_lab, "apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    for name in ("web", "web-v2"):
        k(runtime_lab, "rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200)
    yield runtime_lab
    kubectl(runtime_lab, "delete", "namespace", NS, "--wait=false")


def pods(lab: Lab) -> list[dict[str, object]]:
    return list(json.loads(k(lab, "get", "pods", "-o", "json"))["items"])


def call_from(lab: Lab, pod: str, url: str, n: int = 1) -> list[tuple[int, str]]:
    """``n`` GETs of ``url`` from inside ``pod``'s app container (its environment: HTTP_PROXY is the sidecar)."""
    script = ("import json, urllib.request, urllib.error\n"
              f"out = []\nfor _ in range({n}):\n"
              f"    try:\n        r = urllib.request.urlopen({url!r}, timeout=10)\n"
              "        out.append([r.status, json.loads(r.read()).get('version', '')])\n"
              "    except urllib.error.HTTPError as e:\n"
              "        out.append([e.code, e.headers.get('x-envoy-response-flags') or e.read().decode()[:60]])\n"
              "print(json.dumps(out))\n")
    return [tuple(x) for x in json.loads(k(lab, "exec", pod, "-c", "web", "--", "python", "-c", script))]


def test_sidecars_route_count_and_trace(meshed: Lab) -> None:
    items = pods(meshed)
    assert len(items) == 2 and all([c["name"] for c in p["spec"]["containers"]] == ["web", "istio-proxy"]
                                   for p in items)
    assert all(all(s["ready"] for s in p["status"]["containerStatuses"]) for p in items)
    table = k(meshed, "get", "pods")
    assert table.count("2/2") == 2, table
    v1 = next(p for p in items if p["metadata"]["labels"]["version"] == "v1")
    name, ip = v1["metadata"]["name"], v1["status"]["podIP"]

    # pilot-agent request: Envoy's admin API, as istioctl reads it
    info = json.loads(k(meshed, "exec", name, "-c", "istio-proxy", "--", "pilot-agent", "request", "GET",
                        "server_info"))
    assert info["state"] == "LIVE" and info["command_line_options"]["concurrency"] == 1

    # the app's call to http://web:8080 leaves through its sidecar: the VirtualService sends it to v2
    kubectl(meshed, "-n", NS, "apply", "-f", "-", input=yaml.safe_dump_all(RULES))
    until("the route to v2 in every sidecar",
          lambda: {v for _, v in call_from(meshed, name, "http://web:8080/", 4)} == {"2"}, timeout=30, every=0.5)
    answers = call_from(meshed, name, "http://web:8080/", 10)
    assert answers == [(200, "2")] * 10

    # into a meshed pod through its inbound listener (the node's NodePort, as from HAProxy)
    node_port = json.loads(k(meshed, "get", "service", "web", "-o", "json"))["spec"]["ports"][0]["nodePort"]
    node = meshed.kubernetes.core().read_node(v1["spec"]["nodeName"]).status.addresses[0].address
    response = requests.get(f"http://{node}:{node_port}/", timeout=10, proxies={"http": "", "https": ""})
    assert response.status_code == 200 and response.headers["server"] == "envoy"

    # the agent's merged metrics count the source side of those calls, with Istio's labels
    metrics = requests.get(f"http://{ip}:15020/stats/prometheus", timeout=10,
                           proxies={"http": "", "https": ""}).text
    counted = [line for line in metrics.splitlines() if line.startswith("istio_requests_total{")
               and 'reporter="source"' in line and 'destination_version="v2"' in line
               and 'response_code="200"' in line]
    assert counted and sum(float(line.rsplit(" ", 1)[1]) for line in counted) >= 10, counted

    # the sidecars' spans reach the lab's Jaeger
    jaeger = meshed.mesh.endpoint.url
    until("the sidecars' spans in Jaeger", lambda: "web.meshed" in requests.get(
        f"{jaeger}/api/services", timeout=10, proxies={"http": "", "https": ""}).json()["data"], timeout=20)

    # a subset no DestinationRule defines: Envoy has no such cluster and answers 503 NC
    broken = {**RULES[1], "spec": {"hosts": ["web"], "http": [{"route": [
        {"destination": {"host": "web", "subset": "v3"}}]}]}}
    kubectl(meshed, "-n", NS, "apply", "-f", "-", input=yaml.safe_dump(broken))
    until("503 NC for the missing subset", lambda: call_from(meshed, name, "http://web:8080/", 1)[0][0] == 503,
          timeout=30, every=0.5)
    dump = meshed.mesh.config_dump(name, NS)
    assert "outbound|8080|v3|web.meshed.svc.cluster.local" in dump.missing
