"""Prometheus and Grafana on the kind backend: kube-prometheus-stack (``charts.kube-prometheus-stack`` in
``manifests/versions.yaml``) through Helm, with the chapter's scrape configs (``manifests/prometheus/prometheus.yml``,
so the pods' ``prometheus.io/*`` annotations work unchanged) as ``additionalScrapeConfigs``, its rule files as
``additionalPrometheusRulesMap``, node-exporter off (kind's nodes are containers), Prometheus and Grafana as NodePorts
published on ``127.0.0.1:<ports.prometheus|grafana>``, and the lab's dashboards as ConfigMaps for Grafana's sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.files import write_atomic
from ..core.secrets import Secrets
from ..endpoints import Endpoint, PrometheusEndpoint
from .config import load
from .provisioning import dashboard_configmaps, sidecar_values

CHART = "kube-prometheus-stack"
RELEASE = "kube-prometheus-stack"
GRAFANA_PASSWORD = "grafana-admin-password"


def chapter_config(lab: KindLab) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the chapter's prometheus.yml, its rule files by name), as the sim runs them."""
    folder = lab.checkout.root / "manifests" / "prometheus"
    config = load(folder / "prometheus.yml")  # checked as the sim checks it
    doc = yaml.safe_load(config.text)
    rules = {p.stem: yaml.safe_load(p.read_text()) for p in config.rule_paths()}
    return doc, rules


def values(lab: KindLab) -> dict[str, Any]:
    chart = lab.versions["charts"][CHART]
    doc, rules = chapter_config(lab)
    glob = doc.get("global") or {}
    out: dict[str, Any] = {
        "nodeExporter": {"enabled": False},
        "alertmanager": {"enabled": False},
        "prometheus": {
            "service": {"type": "NodePort", "nodePort": int(chart["node_port"])},
            "prometheusSpec": {
                "scrapeInterval": glob.get("scrape_interval", "30s"),
                "evaluationInterval": glob.get("evaluation_interval", "30s"),
                "externalLabels": glob.get("external_labels") or {},
                "additionalScrapeConfigs": doc.get("scrape_configs") or [],
                "retention": "7d",
            },
        },
        "additionalPrometheusRulesMap": rules,
        "grafana": {"adminPassword": Secrets(lab.paths.secrets).get(GRAFANA_PASSWORD, 18),
                    "service": {"type": "NodePort", "nodePort": int(chart["grafana_node_port"])}},
    }
    out["grafana"].update(sidecar_values()["grafana"])
    return out


class PrometheusKind(KindPart):
    @staticmethod
    def folder(lab: KindLab) -> Path:
        return lab.dir / "prometheus"

    def files(self, lab: KindLab) -> dict[Path, str]:
        folder = self.folder(lab)
        maps = dashboard_configmaps(lab.versions["charts"][CHART]["namespace"])
        return {folder / "values.yaml": "# kube-prometheus-stack's values, rendered by labkit/prometheus/kind.py\n"
                + yaml.safe_dump(values(lab), sort_keys=False),
                folder / "dashboards.yaml": yaml.safe_dump_all(maps, sort_keys=False, allow_unicode=True)}

    def configure(self, lab: KindLab) -> list[Command]:
        chart = lab.versions["charts"][CHART]
        folder = self.folder(lab)
        return [
            Command(f"installing Prometheus and Grafana (helm chart {chart['chart']} {chart['version']}, Prometheus "
                    f"on 127.0.0.1:{lab.ports['prometheus']}, Grafana on 127.0.0.1:{lab.ports['grafana']})", [
                        "helm", "upgrade", "--install", RELEASE, chart["chart"], "--repo", chart["repo"],
                        "--version", str(chart["version"]), "--namespace", chart["namespace"], "--create-namespace",
                        "--values", str(folder / "values.yaml"), "--kubeconfig", lab.kubeconfig, "--wait",
                        "--timeout", f"{chart['ready_seconds']}s"]),
            Command("provisioning the lab's Grafana dashboards (ConfigMaps for the dashboard sidecar)",
                    lab.kubectl("apply", "-f", str(folder / "dashboards.yaml"))),
        ]

    def endpoint(self, lab: KindLab) -> Endpoint:
        password = self.folder(lab) / "grafana-password"
        write_atomic(password, Secrets(lab.paths.secrets).get(GRAFANA_PASSWORD, 18), 0o600)
        return PrometheusEndpoint("Prometheus + Grafana", lab.host_url("prometheus"),
                                  config=str(self.folder(lab) / "values.yaml"), grafana=lab.host_url("grafana"),
                                  grafana_password_file=str(password))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/-/ready", timeout=5)
