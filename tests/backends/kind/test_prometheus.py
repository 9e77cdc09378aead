"""kube-prometheus-stack on kind, through the contract harness: the rendered values carry the chapter's scrape
configs and rules (node-exporter and Alertmanager off, NodePorts for Prometheus and Grafana, the dashboard sidecar);
``helm upgrade --install`` of the chart runs (the harness stands in with the sim's Prometheus over the cluster), the
dashboards' ConfigMaps are applied, and the Prometheus API answers on the published port with the chapter's
configuration and rules."""

from __future__ import annotations

import json
from pathlib import Path

import requests
import yaml

from labkit.backends.kind.backend import render
from labkit.backends.kind.lab import KindLab
from labkit.kube.kind import KubernetesKind
from labkit.prometheus.kind import PrometheusKind

from ...waiting import until
from .harness import Harness


def test_kube_prometheus_stack_values_install_and_api(harness: Harness, rendered: KindLab) -> None:
    part = PrometheusKind()
    render(rendered)
    chart = rendered.versions["charts"]["kube-prometheus-stack"]
    values = yaml.safe_load((part.folder(rendered) / "values.yaml").read_text())
    assert values["nodeExporter"] == {"enabled": False} and values["alertmanager"] == {"enabled": False}
    assert values["prometheus"]["service"] == {"type": "NodePort", "nodePort": chart["node_port"]}
    jobs = [j["job_name"] for j in values["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]]
    assert jobs == ["kubernetes-pods"]
    assert [r.get("alert") for r in values["additionalPrometheusRulesMap"]["shop"]["groups"][0]["rules"]][-1] == \
        "ShopHighErrorRatio"
    assert values["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    for cmd in KubernetesKind().create(rendered, False):
        rendered.run(cmd.argv)
    rendered.run(rendered.compose("up", "--detach", "--wait", "haproxy"))  # the API servers' load balancer
    for cmd in part.configure(rendered):
        rendered.run(cmd.argv)
    calls = [c for c in harness.calls() if Path(c[0]).name == "helm" and "kube-prometheus-stack" in c]
    assert calls and calls[-1][calls[-1].index("--version") + 1] == str(chart["version"])
    maps = json.loads(rendered.run(rendered.kubectl("-n", chart["namespace"], "get", "configmaps", "-l",
                                                    "grafana_dashboard=1", "-o", "json")))["items"]
    assert {m["metadata"]["name"] for m in maps} >= {"labkit-dashboard-shop", "labkit-dashboard-platform"}
    ep = part.endpoint(rendered)
    assert ep.url == f"http://127.0.0.1:{rendered.ports['prometheus']}"
    until("Prometheus ready behind its NodePort (as `labkit up` waits for it)", lambda: part.health(rendered, ep)[0])
    assert Path(ep.grafana_password_file).stat().st_mode & 0o777 == 0o600
    config = requests.get(f"{ep.url}/api/v1/status/config", timeout=30).json()["data"]["yaml"]
    assert "job_name: kubernetes-pods" in config
    groups = requests.get(f"{ep.url}/api/v1/rules", timeout=30).json()["data"]["groups"]
    assert [g["name"] for g in groups] == ["shop"]
    up = requests.get(f"{ep.url}/api/v1/query", params={"query": "1 + 1"}, timeout=30).json()
    assert up["data"]["result"][1] == "2"
