"""The lab's Prometheus (sim): the chapter's ``prometheus.yml`` and rule files (``manifests/prometheus``) with a
static job for each lab component that serves metrics, scraped into the on-disk storage under the lab home,
rules evaluated, the HTTP API v1 on the ``PROMETHEUS`` slot."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ..core.addresses import KUBE_STATE_METRICS, PROMETHEUS
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.files import write_atomic
from ..core.http import Listeners, api_app
from ..endpoints import (
    ArgoCDEndpoint,
    GitLabEndpoint,
    HAProxyEndpoint,
    KubernetesEndpoint,
    NexusEndpoint,
    PrometheusEndpoint,
    RegistryEndpoint,
)
from .api import PrometheusApi, render
from .config import Config, load
from .exporters.kube_state import KubeStateMetrics
from .promql import Engine
from .rules import RuleManager, load_rules
from .scrape.manager import ScrapeManager
from .tsdb import Storage

RETENTION_SECONDS = 7 * 86400
LOOKBACK_SECONDS = 300
ARGOCD_COMPONENTS = ("application-controller", "repo-server", "server")  # ArgoCDEndpoint.metrics' order


def lab_jobs(endpoints: dict[str, Any], kube_state: str = "", ca_file: str = "",
             token_file: str = "") -> list[dict[str, Any]]:
    """Scrape jobs for the lab's own components that serve Prometheus metrics (by their endpoints), for
    kube-state-metrics (``host:port``) when it runs, and for the kubelets' cAdvisor metrics (the node role)."""
    jobs: list[dict[str, Any]] = []
    if kube_state:
        jobs.append({"job_name": "kube-state-metrics", "honor_labels": True,
                     "static_configs": [{"targets": [kube_state]}]})
    kube = endpoints.get("kubernetes")
    if isinstance(kube, KubernetesEndpoint) and ca_file and token_file:  # the API servers, with the lab's token
        jobs.append({"job_name": "apiserver", "scheme": "https", "bearer_token_file": token_file,
                     "tls_config": {"ca_file": ca_file},
                     "static_configs": [{"targets": [s.split("://", 1)[1] for s in kube.servers]}]})
    if isinstance(endpoints.get("kubernetes"), KubernetesEndpoint):  # each node's kubelet, as cAdvisor
        jobs.append({"job_name": "kubelet", "metrics_path": "/metrics/cadvisor",
                     "kubernetes_sd_configs": [{"role": "node"}],
                     "relabel_configs": [{"target_label": "metrics_path", "replacement": "/metrics/cadvisor"},
                                         {"action": "labelmap", "regex": "__meta_kubernetes_node_label_(.+)"}]})
    haproxy = endpoints.get("haproxy")
    if isinstance(haproxy, HAProxyEndpoint) and haproxy.metrics:
        jobs.append(url_job("haproxy", haproxy.metrics))
    return jobs + product_jobs(endpoints)


def url_job(name: str, url: str, groups: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A static job scraping ``url`` (scheme, host and path from it); ``groups``: its static groups' labels (one
    target each, on the same host), for a listener that serves several components."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return {"job_name": name, "scheme": scheme, "metrics_path": f"/{path.partition('?')[0]}", **extra,
            "static_configs": [{"targets": [host], **({"labels": g} if g else {})} for g in groups or [{}]]}


def product_jobs(endpoints: dict[str, Any]) -> list[dict[str, Any]]:
    """The lab's products that serve Prometheus metrics, each where (and as) the real one serves them: Nexus with
    the administrator's credentials (a password file: the rendered configuration holds no secret), Harbor's exporter,
    core and registry (``?comp=``), Argo CD's controller and repo server, GitLab's ``/-/metrics``."""
    jobs: list[dict[str, Any]] = []
    nexus = endpoints.get("nexus")
    if isinstance(nexus, NexusEndpoint) and nexus.password_file:
        jobs.append(url_job("nexus", f"{nexus.url.rstrip('/')}/service/metrics/prometheus",
                            basic_auth={"username": nexus.user, "password_file": nexus.password_file}))
    registry = endpoints.get("registry")
    if isinstance(registry, RegistryEndpoint) and registry.metrics:
        jobs.append(url_job("harbor", registry.metrics, [
            {"component": "exporter"}, {"component": "core", "__param_comp": "core"},
            {"component": "registry", "__param_comp": "registry"}]))
    argocd = endpoints.get("argocd")
    if isinstance(argocd, ArgoCDEndpoint) and argocd.metrics:
        job = url_job("argocd", argocd.metrics[0])
        job["static_configs"] = [{"targets": [url.split("://", 1)[1].partition("/")[0]],
                                  "labels": {"component": component}}
                                 for url, component in zip(argocd.metrics, ARGOCD_COMPONENTS, strict=False)]
        jobs.append(job)
    gitlab = endpoints.get("gitlab")
    if isinstance(gitlab, GitLabEndpoint) and gitlab.url:
        jobs.append(url_job("gitlab", f"{gitlab.url.rstrip('/')}/-/metrics"))
    return jobs


def render_config(source: Path, folder: Path, jobs: list[dict[str, Any]]) -> Path:
    """Copy the chapter's configuration folder (``prometheus.yml`` and its rule files) into ``folder`` and add
    the lab's static jobs to its ``prometheus.yml``; the path of the file Prometheus runs."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder)
    path = folder / "prometheus.yml"
    doc = yaml.safe_load(path.read_text()) or {}
    names = {j["job_name"] for j in doc.get("scrape_configs") or []}
    extra = [j for j in jobs if j["job_name"] not in names]
    if extra:
        doc["scrape_configs"] = [*(doc.get("scrape_configs") or []), *extra]
        path.write_text("# rendered by labkit from manifests/prometheus/prometheus.yml (+ the lab's own "
                        "components)\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


class Prometheus(Component):
    """Scraping, storage, rules and the HTTP API of one Prometheus server."""

    def __init__(self, config_dir: Path | None = None, kubeconfig: str | None = None,
                 listen: tuple[str, int] | None = None) -> None:
        self.config_dir, self.kubeconfig, self.listen = config_dir, kubeconfig, listen

    async def start(self, ctx: Context) -> None:
        state = ctx.state_dir(self.name)
        source = self.config_dir or Checkout.find().root / "manifests" / "prometheus"
        kube = ctx.endpoints.get("kubernetes")
        kubeconfig = self.kubeconfig or (kube.kubeconfig if isinstance(kube, KubernetesEndpoint) else None)
        self.exporters: list[Listeners] = []
        self.kube_state = KubeStateMetrics(kubeconfig) if kubeconfig and self.listen is None else None
        kube_state = ""
        if self.kube_state is not None:  # in the lab (not for a stand-alone server on a chosen port)
            host, port = ctx.network.slot(KUBE_STATE_METRICS)
            self.exporters.append(Listeners(self.kube_state.app(), [(host, port)]))
            kube_state = f"{host}:{port}"
        ca_file = state / "lab-ca.crt"  # the lab CA, which signs the API servers' certificates
        write_atomic(ca_file, ctx.ca.pem)
        token_file = state / "apiserver-token"  # a file, so /api/v1/status/config shows no secret
        if kubeconfig:
            users = (yaml.safe_load(Path(kubeconfig).read_text()) or {}).get("users") or [{}]
            write_atomic(token_file, str(users[0].get("user", {}).get("token", "")), 0o600)
        jobs = lab_jobs(ctx.endpoints, kube_state, str(ca_file), str(token_file) if kubeconfig else "")
        self.config_path = render_config(source, state / "config", jobs)
        self.config: Config = load(self.config_path)
        self.storage = Storage(state / "data", RETENTION_SECONDS)
        self.engine = Engine(self.storage, lookback=LOOKBACK_SECONDS)
        groups = [g for p in self.config.rule_paths() for g in load_rules(p, self.config.evaluation_interval)]
        self.scrape = ScrapeManager(self.config, self.storage, kubeconfig)
        self.rules = RuleManager(groups, self.engine, self.storage, self.config.external_labels)
        app = api_app(self.name or "prometheus", render_error=render, logger=ctx.logger(self.name or "prometheus"))
        PrometheusApi(self.engine, self.storage, self.config, self.scrape, self.rules).install(app)
        self.address = self.listen or ctx.network.slot(PROMETHEUS)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()
        for exporter in self.exporters:
            await exporter.start()
        await self.scrape.start()
        self.rules.start()

    async def stop(self) -> None:
        await self.rules.stop()
        await self.scrape.stop()
        await self.listeners.stop()
        for exporter in self.exporters:
            await exporter.stop()
        if self.kube_state is not None:
            await self.kube_state.close()
        self.storage.close()

    def endpoint(self) -> PrometheusEndpoint:
        return PrometheusEndpoint(self.title, self.listeners.urls()[0], config=str(self.config_path))

    async def health(self) -> Health:
        targets = self.scrape.targets()
        up = sum(t.health == "up" for t in targets)
        return Health(True, f"{up}/{len(targets)} targets up")
