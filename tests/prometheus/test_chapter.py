"""Chapter 7 on a running sim lab: the shop's pods are scrape targets that are up, the Diagnose fault (a wrong
``prometheus.io/port`` on catalog's pod template) takes catalog's targets down with the scraper's error, and the
chapter's repair (``lab.chapter(7)`` runs it first) brings them back; lab.grafana draws the shop dashboard from the
lab's own Prometheus."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labkit.chapters import chapter
from labkit.lab import Lab
from labkit.prometheus.chapter import FAULT_PORT, PORT_ANNOTATION, manifest_ports
from labkit.prometheus.grafana import PANEL_TYPES, load, panels
from labkit.prometheus.provisioning import DATASOURCE_UID, SIDECAR_LABEL, dashboard_configmaps, datasource_uids


@pytest.fixture(scope="module")
def lab(shared_lab: Lab) -> Iterator[Lab]:
    shared_lab.shop.deploy()
    shared_lab.prometheus.wait_shop_scraped(timeout=120)
    yield shared_lab
    shared_lab.prometheus.restore()


def test_the_shop_pods_are_targets_that_are_up(lab: Lab) -> None:
    targets = lab.prometheus.shop_targets()
    assert set(targets["health"]) == {"up"}
    assert {"gateway", "catalog", "orders"} <= {labels.get("app") for labels in targets["labels"]}
    assert all(labels["namespace"] == "shop" and labels["pod"] for labels in targets["labels"])
    assert manifest_ports(lab.shop.manifests) == {"gateway": "8080", "catalog": "8080", "orders": "8080"}


def test_the_fault_takes_catalog_down_and_the_repair_brings_it_back(lab: Lab) -> None:
    chapter(7).fault(lab)  # type: ignore[misc]
    annotations = lab.kubernetes.apps().read_namespaced_deployment("catalog", "shop").spec.template.metadata
    assert annotations.annotations[PORT_ANNOTATION] == FAULT_PORT

    def catalog_down() -> bool:
        targets = lab.prometheus.shop_targets()
        catalog = targets[[labels.get("app") == "catalog" for labels in targets["labels"]]]
        return not catalog.empty and (catalog["health"] == "down").all() and \
            catalog["instance"].str.endswith(f":{FAULT_PORT}").all()

    assert lab.prometheus.eventually(catalog_down, timeout=120), lab.prometheus.shop_targets()
    down = lab.prometheus.shop_targets()
    # the scraper's error names the URL it tried (its exact text: test_grafana.py)
    assert down[down["health"] == "down"]["last_error"].str.contains(f':{FAULT_PORT}/metrics"').all()
    assert not lab.prometheus.shop_scraped()

    assert lab.prometheus.repair() == ["deployment catalog scraped on port 8080 again"]
    assert lab.prometheus.repair() == []  # nothing left to undo
    assert lab.prometheus.eventually(lab.prometheus.shop_scraped, timeout=120), lab.prometheus.shop_targets()


def test_lab_grafana_draws_the_shop_dashboard_from_the_lab(lab: Lab) -> None:
    traffic = lab.traffic(rps=10, seconds=30, url=lab.url("haproxy").rstrip("/") + "/api/products")
    def serving() -> bool:  # both the gateway's and the catalog's pods scraped with requests (5 s apart at most)
        frame = lab.prometheus.query('sum by (pod) (rate(http_requests_total{namespace="shop"}[1m])) > 0')
        pods = set(frame["pod"]) if "pod" in frame else set()
        return any(p.startswith("gateway-") for p in pods) and any(p.startswith("catalog-") for p in pods)

    try:
        assert lab.prometheus.eventually(serving, timeout=60)
    finally:
        traffic.stop()
    rendered = lab.grafana.render("shop", start="now-5m")
    assert not [r.error for r in rendered.results if r.error]
    assert rendered.variables["namespace"] == ["shop"]
    pods = set(rendered.panel("Requests per second by pod").frame["legend"])
    assert any(p.startswith("gateway-") for p in pods) and any(p.startswith("catalog-") for p in pods)
    assert "[20s]" in rendered.panel("Request rate").queries[0]  # $__rate_interval: 4 x the lab's 5 s interval


def test_the_dashboards_provision_as_grafana_sidecar_configmaps(lab: Lab) -> None:
    """On kind, kube-prometheus-stack's Grafana loads ConfigMaps labelled grafana_dashboard=1; here the API server
    stores them as they are, and each holds a dashboard whose panels the renderer knows."""
    core = lab.kubernetes.core()
    maps = dashboard_configmaps("default")
    assert [m["metadata"]["name"] for m in maps] == ["labkit-dashboard-platform", "labkit-dashboard-shop"]
    for manifest in maps:
        created = core.create_namespaced_config_map("default", manifest)
        try:
            assert created.metadata.labels[SIDECAR_LABEL] == "1"
            (key, text), = created.data.items()
            assert key == manifest["metadata"]["name"].removeprefix("labkit-dashboard-") + ".json"
            model = json.loads(text)
            assert datasource_uids(model) == {DATASOURCE_UID}
            assert {p["type"] for p in panels(model)} <= set(PANEL_TYPES)
            assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in panels(model))
        finally:
            core.delete_namespaced_config_map(manifest["metadata"]["name"], "default")
    assert {"timeseries", "stat", "gauge", "table", "heatmap"} <= {p["type"] for p in panels(load("shop"))}
