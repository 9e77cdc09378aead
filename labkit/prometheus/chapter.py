"""Chapter 7's helpers on ``lab.prometheus``: the shop's scrape targets, waiting for them (or an alert) with a
deadline, live plots of PromQL queries while traffic runs, and the chapter's fault and its repair: a shop
Deployment whose pod template names the wrong ``prometheus.io/port``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError

if TYPE_CHECKING:
    import pandas as pd

    from .grafana import Grafana, Rendered

NAMESPACE = "shop"
PORT_ANNOTATION = "prometheus.io/port"
FAULT_DEPLOYMENT, FAULT_PORT = "catalog", "8081"  # the Diagnose fault: catalog's pods scraped on a port nobody serves
ERROR_ALERT = "ShopHighErrorRatio"  # manifests/prometheus/rules/shop.yml: more than 5 % 5xx over 1 minute
SCRAPE_SECONDS = 90.0  # how long a notebook waits for targets or alerts by default


def annotation_patch(port: str) -> str:
    """A strategic-merge patch setting the pod template's scrape port (what ``kubectl patch`` takes)."""
    import json

    return json.dumps({"spec": {"template": {"metadata": {"annotations": {PORT_ANNOTATION: port}}}}})


def manifest_ports(manifests: str | Path) -> dict[str, str]:
    """Each shop Deployment's ``prometheus.io/port`` as its manifest (manifests/apps) writes it."""
    import yaml

    ports = {}
    for path in sorted(Path(manifests).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment":
                annotations = doc["spec"]["template"]["metadata"].get("annotations") or {}
                if PORT_ANNOTATION in annotations:
                    ports[doc["metadata"]["name"]] = str(annotations[PORT_ANNOTATION])
    return ports


class ChapterHelpers:
    """Mixed into ``PrometheusView``: what notebook 07 and ``lab.chapter(7)`` do with Prometheus."""

    lab: Any
    grafana: Grafana
    targets: Callable[..., pd.DataFrame]
    alerts: Callable[[], pd.DataFrame]

    # -- the shop's targets --------------------------------------------------------------
    def shop_targets(self) -> pd.DataFrame:
        """The scrape targets of the shop's pods (label ``namespace="shop"``), with their pod and health."""
        frame = self.targets()
        keep = [(t.get("namespace") == NAMESPACE) for t in frame["labels"]]
        out = frame.loc[keep].copy()  # rows (``frame[[]]`` would pick no columns when there is no target yet)
        out.insert(2, "pod", [t.get("pod", "") for t in out["labels"]])
        return out.sort_values(["job", "pod"]).reset_index(drop=True)

    def wait_for(self, what: str, reached: Callable[[], bool], timeout: float = SCRAPE_SECONDS) -> None:
        """Poll ``reached`` until true; LabError naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not reached():
            if time.monotonic() > deadline:
                raise LabError(f"not reached within {timeout:.0f} s: {what}")
            time.sleep(1)

    def eventually(self, reached: Callable[[], bool], timeout: float = SCRAPE_SECONDS) -> bool:
        """Whether ``reached`` becomes true within ``timeout`` seconds (polled every second): for a check."""
        try:
            self.wait_for("", reached, timeout)
        except LabError:
            return False
        return True

    def error_alert(self) -> str:
        """The alerting rule on the shop's error ratio (manifests/prometheus/rules/shop.yml), as Prometheus has
        loaded it."""
        rules = self.rules()
        if rules[(rules["type"] == "alerting") & (rules["name"] == ERROR_ALERT)].empty:
            raise LabError(f"Prometheus has no alerting rule {ERROR_ALERT}: see lab.prometheus.rules() and "
                           "manifests/prometheus/rules/shop.yml")
        return ERROR_ALERT

    def shop_scraped(self) -> bool:
        """Every running shop pod is a target whose last scrape succeeded."""
        pods = {p.metadata.name for p in self.lab.kubernetes.core().list_namespaced_pod(NAMESPACE).items
                if p.status.phase == "Running" and p.metadata.deletion_timestamp is None}
        targets = self.shop_targets()
        up = set(targets[targets["health"] == "up"]["pod"])
        return bool(pods) and pods <= up and set(targets["pod"]) <= pods | up

    def wait_shop_scraped(self, timeout: float = SCRAPE_SECONDS) -> None:
        """Until every running shop pod is scraped successfully (a new pod appears within a scrape interval or
        two of the Kubernetes service discovery's update)."""
        self.wait_for("every running shop pod scraped and up (lab.prometheus.shop_targets())", self.shop_scraped,
                      timeout)

    def firing(self, name: str | None = None) -> pd.DataFrame:
        """The firing alerts (of rule ``name``)."""
        alerts = self.alerts()
        alerts = alerts[alerts["state"] == "firing"]
        return alerts if name is None else alerts[alerts["alertname"] == name]

    def wait_alert(self, name: str, firing: bool = True, timeout: float = 180.0) -> None:
        """Until alert ``name`` is firing (or, ``firing=False``, until it no longer is: resolved)."""
        self.wait_for(f"alert {name} {'firing' if firing else 'resolved'}",
                      lambda: self.firing(name).empty != firing, timeout)

    # -- live plots -------------------------------------------------------------------------
    def watch(self, queries: dict[str, str], seconds: float = 60, every: float = 5, live: bool = True,
              minutes: float = 5, unit: str = "", marks: dict[str, float] | None = None) -> Rendered:
        """Plot PromQL ``queries`` (title → expression) as time series panels over the last ``minutes``,
        refreshed in place every ``every`` seconds for ``seconds`` (once with ``live`` false); ``marks``: moments
        to draw (label → Unix time), such as when a replica was made slow."""
        width = 24 if len(queries) == 1 else 12
        panels = [{"type": "timeseries", "title": title, "fieldConfig": {"defaults": {"unit": unit}},
                   "gridPos": {"x": (i % 2) * 12 if width == 12 else 0, "y": (i // 2) * 8, "w": width, "h": 8},
                   "targets": [{"expr": expr, "refId": "A", "legendFormat": "__auto"}]}
                  for i, (title, expr) in enumerate(queries.items())]
        model = {"title": "PromQL", "time": {"from": f"now-{int(minutes * 60)}s", "to": "now"}, "panels": panels}
        return self.grafana.live(model, seconds, every, live, marks=marks)

    # -- the chapter's state and its fault -----------------------------------------------------
    def break_scrape_port(self) -> None:
        """The Diagnose fault: catalog's pod template says to scrape a port its pods do not serve."""
        self.lab.kubectl("patch", "deployment", FAULT_DEPLOYMENT, "-n", NAMESPACE, "-p",
                         annotation_patch(FAULT_PORT), check=True)

    def restore(self) -> list[str]:
        """Every shop Deployment scraped on the port its manifest names (the fault undone); what it changed."""
        from kubernetes.client import ApiException

        done = []
        apps = self.lab.kubernetes.apps()
        for name, port in manifest_ports(self.lab.shop.manifests).items():
            try:
                live = apps.read_namespaced_deployment(name, NAMESPACE)
            except ApiException as err:
                if err.status == 404:  # a shop not deployed yet has nothing to restore
                    continue
                raise
            annotations = live.spec.template.metadata.annotations or {}
            if annotations.get(PORT_ANNOTATION) != port:
                self.lab.kubectl("patch", "deployment", name, "-n", NAMESPACE, "-p", annotation_patch(port),
                                 check=True)
                done.append(f"deployment {name} scraped on port {port} again")
        return done

    def repair(self) -> list[str]:
        return self.restore()
