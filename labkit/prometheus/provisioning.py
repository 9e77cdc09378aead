"""The lab's Grafana dashboards (manifests/dashboards) provisioned into kube-prometheus-stack's Grafana on kind:
one ConfigMap per dashboard labelled ``grafana_dashboard: "1"``, which the chart's dashboard sidecar
(``grafana.sidecar.dashboards``: label ``grafana_dashboard``, value ``"1"``) loads into Grafana. The dashboards
name the chart's default Prometheus data source by its uid, ``prometheus``, so they work there unchanged."""

from __future__ import annotations

import json
from typing import Any

from .grafana import DASHBOARDS

SIDECAR_LABEL, SIDECAR_VALUE = "grafana_dashboard", "1"
DATASOURCE_UID = "prometheus"  # kube-prometheus-stack's default Prometheus data source


def sidecar_values() -> dict[str, Any]:
    """kube-prometheus-stack values that make its Grafana load these ConfigMaps (P2's values file carries them):
    the dashboard sidecar on, watching every namespace for the label."""
    return {"grafana": {"sidecar": {"dashboards": {"enabled": True, "label": SIDECAR_LABEL,
                                                   "labelValue": SIDECAR_VALUE, "searchNamespace": "ALL"}}}}


def dashboard_configmaps(namespace: str = "monitoring") -> list[dict[str, Any]]:
    """One ConfigMap per dashboard file, its JSON model under ``<name>.json``, as ``kubectl apply`` takes it."""
    maps = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text())
        maps.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": f"labkit-dashboard-{path.stem}", "namespace": namespace,
                                  "labels": {SIDECAR_LABEL: SIDECAR_VALUE, "app.kubernetes.io/part-of": "msa-lab"}},
                     "data": {path.name: json.dumps(model, indent=2, ensure_ascii=False)}})
    return maps


def datasource_uids(model: dict[str, Any]) -> set[str]:
    """The data source uids a dashboard's panels, targets and variables name."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict) and source.get("uid"):
                found.add(str(source["uid"]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(model)
    return found
