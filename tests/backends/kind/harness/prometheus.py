"""What ``helm upgrade --install`` of kube-prometheus-stack runs in the harness: the sim's Prometheus
(``python -m labkit.prometheus``) as the release's Prometheus, with the configuration the chart would give its
Prometheus (``prometheusSpec.scrapeInterval``/``evaluationInterval``/``externalLabels``,
``additionalScrapeConfigs``, ``additionalPrometheusRulesMap``), its Kubernetes discovery against the cluster helm
installs into, and the chart's Prometheus NodePort Service pointing at it. Grafana is not stood in for (the lab
renders dashboards itself): its values are checked, its Service is not published."""

from __future__ import annotations

import socket
import sys
from typing import Any

import yaml

from labkit.core.files import read_json

from . import nodeport
from .flags import Failure
from .harbor import _address
from .state import State, python_env

SERVICE_SUFFIX = "-prometheus"


def process_name(cluster: str, namespace: str, release: str) -> str:
    return f"prometheus-{cluster}-{namespace}-{release}"


def config_files(values: dict[str, Any]) -> dict[str, str]:
    """prometheus.yml and the rule files the chart's values give Prometheus, refused where the harness cannot
    honour them."""
    service = ((values.get("prometheus") or {}).get("service") or {})
    if service.get("type") != "NodePort" or not isinstance(service.get("nodePort"), int):
        raise Failure("the kind harness serves Prometheus as a NodePort only (prometheus.service.type: NodePort, "
                      "prometheus.service.nodePort)")
    spec = (values.get("prometheus") or {}).get("prometheusSpec") or {}
    config = {"global": {"scrape_interval": spec.get("scrapeInterval", "30s"),
                         "evaluation_interval": spec.get("evaluationInterval", "30s"),
                         "external_labels": spec.get("externalLabels") or {}},
              "rule_files": ["rules/*.yml"], "scrape_configs": spec.get("additionalScrapeConfigs") or []}
    files = {"prometheus.yml": yaml.safe_dump(config, sort_keys=False)}
    for name, rules in (values.get("additionalPrometheusRulesMap") or {}).items():
        files[f"rules/{name}.yml"] = yaml.safe_dump(rules, sort_keys=False)
    return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str,
            values: dict[str, Any]) -> None:
    """Start (or restart, with new values) the stand-in for this release and point its NodePort Service at it."""
    files = config_files(values)
    name = process_name(cluster, namespace, release)
    home = state.cluster_dir(cluster) / "prometheus" / f"{namespace}-{release}"
    folder = home / "config"
    if state.alive(name) is not None:
        state.stop(name, grace=5.0)
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    log = state.logs / f"{name}.log"
    log.unlink(missing_ok=True)
    state.spawn(name, [sys.executable, "-m", "labkit.prometheus", "--home", str(home), "--config-dir", str(folder),
                       "--kubeconfig", kubeconfig, "--listen", f"127.0.0.1:{_free_port()}"], env=python_env())
    host, listen = _address(log, lambda: state.alive(name) is not None)
    labels = {"app": "kube-prometheus-stack-prometheus", "release": release, "app.kubernetes.io/managed-by": "Helm"}
    port = int(values["prometheus"]["service"]["nodePort"])
    nodeport.publish(kube_run, namespace, f"{release}{SERVICE_SUFFIX}", labels, port, host, listen, port=9090,
                     target_port=9090)


def stop_all(state: State, cluster: str) -> None:
    """Stop every Prometheus stand-in of ``cluster`` (``kind delete cluster``)."""
    for entry in read_json(state.procs, []) or []:
        if entry["name"].startswith(f"prometheus-{cluster}-"):
            state.stop(entry["name"], grace=5.0)
