"""``lab.mesh``: the service mesh from a notebook, the same on every backend — the sidecars through kubectl (their
Envoy's ``/config_dump`` with ``pilot-agent request``, as ``istioctl`` reads it), Istio's resources through the
Kubernetes API, traces from the Jaeger query service, Istio's metrics from Prometheus, and Kiali's graph (Kiali's own
API where the lab runs Kiali, else built from Prometheus with Kiali's queries). The drawings are in ``views.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import yaml

from ..core.errors import LabError
from ..core.view import ProductView
from ..endpoints import MeshEndpoint
from .config_dump import ConfigSummary, summarise
from .identity import SIDECAR_CONTAINER
from .translate.naming import OUTBOUND_ROUTE

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .jaeger.client import JaegerClient

INJECTION_LABEL = "istio-injection"
OTLP_IN_CLUSTER = "http://jaeger-collector.istio-system.svc.cluster.local:4318"  # what meshed apps export spans to


class MeshView(ProductView):
    _jaeger: JaegerClient | None = None

    @property
    def endpoint(self) -> MeshEndpoint:
        return self.lab.endpoints.get(MeshEndpoint)

    @property
    def jaeger(self) -> JaegerClient:
        """A client of the Jaeger query service (``/api/v3``, ``/api/traces/{id}``)."""
        from .jaeger.client import JaegerClient

        if self._jaeger is None:
            self._jaeger = JaegerClient(self.endpoint.url)
        return self._jaeger

    # -- the sidecars ----------------------------------------------------------------------------------------
    def pods(self, namespace: str = "shop") -> pd.DataFrame:
        """The namespace's pods: ready containers (``2/2`` with a sidecar), whether an ``istio-proxy`` runs, phase."""
        import pandas as pd

        items = json.loads(self.lab.kubectl("get", "pods", "-n", namespace, "-o", "json", check=True).stdout)["items"]
        rows = []
        for pod in items:
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            rows.append({"pod": pod["metadata"]["name"], "app": (pod["metadata"].get("labels") or {}).get("app", ""),
                         "version": (pod["metadata"].get("labels") or {}).get("version", ""),
                         "ready": f"{sum(bool(s.get('ready')) for s in statuses)}/{len(pod['spec']['containers'])}",
                         "sidecar": any(c["name"] == SIDECAR_CONTAINER for c in pod["spec"]["containers"]),
                         "phase": (pod.get("status") or {}).get("phase", ""),
                         "terminating": bool(pod["metadata"].get("deletionTimestamp"))})
        return pd.DataFrame(rows, columns=["pod", "app", "version", "ready", "sidecar", "phase", "terminating"])

    def enable(self, namespace: str = "shop", timeout: float = 240,
               progress: Callable[[str], None] | None = print, wait: bool = True) -> pd.DataFrame:
        """Label the namespace ``istio-injection=enabled`` and restart its Deployments, as Istio's docs do, then
        (``wait``) wait until every pod runs with its sidecar, ready (``2/2``); the pods."""
        self.lab.kubectl("label", "namespace", namespace, f"{INJECTION_LABEL}=enabled", "--overwrite", check=True)
        self._restart(namespace, {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_IN_CLUSTER})
        if not wait:
            return self.pods(namespace)
        return self.wait_pods(namespace, lambda f: bool(len(f)) and bool(f["sidecar"].all()), timeout, progress,
                              "every pod with its sidecar")

    def disable(self, namespace: str = "shop", timeout: float = 240,
                progress: Callable[[str], None] | None = print) -> pd.DataFrame:
        """Remove the label and restart the Deployments: the pods come back without sidecars."""
        self.lab.kubectl("label", "namespace", namespace, f"{INJECTION_LABEL}-", check=True)
        self._restart(namespace, {"OTEL_EXPORTER_OTLP_ENDPOINT": None})
        return self.wait_pods(namespace, lambda f: bool(len(f)) and not f["sidecar"].any(), timeout, progress,
                              "every pod without a sidecar")

    def _restart(self, namespace: str, env: dict[str, str | None]) -> None:
        """Restart every Deployment of the namespace (``kubectl rollout restart``'s annotation) with ``env`` set on
        its app containers (None: removed) in the same change: one rollout. Meshed, the shop exports its own spans
        to Jaeger's collector Service through its sidecars."""
        from datetime import UTC, datetime

        names = self.lab.kubectl("get", "deployments", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}",
                                 check=True).stdout.split()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name in names:
            deployment = json.loads(self.lab.kubectl("get", "deployment", name, "-n", namespace, "-o", "json",
                                                     check=True).stdout)
            containers = [{"name": c["name"], "env": [
                {"name": k, "value": v} if v is not None else {"name": k, "$patch": "delete"} for k, v in env.items()]}
                for c in deployment["spec"]["template"]["spec"]["containers"]]
            patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}},
                                           "spec": {"containers": containers}}}}
            self.lab.kubectl("patch", "deployment", name, "-n", namespace, "--type", "strategic", "-p",
                             json.dumps(patch), check=True)

    def wait_pods(self, namespace: str, done: Callable[[pd.DataFrame], bool], timeout: float,
                  progress: Callable[[str], None] | None, what: str) -> pd.DataFrame:
        """Poll the pods until ``done(pods)`` holds for the running, all-ready, non-terminating ones (and no others
        are left); progress as the count changes."""
        deadline, shown = time.monotonic() + timeout, ""
        while True:
            frame = self.pods(namespace)
            live = frame[~frame["terminating"]]
            ready = sum(r.split("/")[0] == r.split("/")[1] for r in live["ready"])
            if len(live) == len(frame) == ready and done(live):
                return live.reset_index(drop=True)
            line = f"{what}: {int(live['sidecar'].sum())} of {len(live)} pods with a sidecar, {ready} ready"
            if progress is not None and line != shown:
                progress(line)
                shown = line
            if time.monotonic() > deadline:
                raise LabError(f"timed out waiting for {what} in {namespace}: {line}; "
                               f"`kubectl get pods -n {namespace}` and `kubectl describe pod` say why")
            time.sleep(1)

    def request(self, pod: str, path: str, namespace: str = "shop", method: str = "GET") -> str:
        """``pilot-agent request <method> <path>`` in the pod's sidecar: its Envoy's admin API answer."""
        res = self.lab.kubectl("exec", "-n", namespace, pod, "-c", SIDECAR_CONTAINER, "--", "pilot-agent",
                               "request", method, path, timeout=60)
        if res.returncode != 0:
            raise LabError(f"pilot-agent request {method} {path} in {namespace}/{pod}: "
                           f"{res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    def config_dump(self, pod: str, namespace: str = "shop") -> ConfigSummary:
        """What the pod's Envoy really has: listeners, routes (with their weighted clusters, faults, retries),
        clusters (with endpoints, their health, outlier detection) and the clusters routes name that Envoy lacks
        (``missing``: requests to them get 503 ``NC``)."""
        dump = json.loads(self.request(pod, "config_dump", namespace))
        live = json.loads(self.request(pod, "clusters?format=json", namespace))
        return summarise(dump, live)

    def routes(self, pod: str, authority: str, namespace: str = "shop") -> pd.DataFrame:
        """The routes the pod's sidecar applies to requests for ``authority`` (``catalog:8080``), as a table."""
        import pandas as pd

        rows = self.config_dump(pod, namespace).route_for(authority, OUTBOUND_ROUTE)
        return pd.DataFrame(rows)

    # -- Istio's resources -----------------------------------------------------------------------------------
    def apply(self, manifest: str | dict[str, Any] | list[dict[str, Any]], namespace: str = "shop") -> str:
        """``kubectl apply`` Istio resources (YAML text or objects); Istio's validation message when refused."""
        text = manifest if isinstance(manifest, str) else yaml.safe_dump_all(
            manifest if isinstance(manifest, list) else [manifest], sort_keys=False)
        res = self.lab.kubectl("apply", "-n", namespace, "-f", "-", input=text)
        if res.returncode != 0:
            raise LabError(res.stderr.strip() or res.stdout.strip())
        return res.stdout

    def virtual_services(self, namespace: str = "shop") -> list[dict[str, Any]]:
        out = self.lab.kubectl("get", "virtualservices.networking.istio.io", "-n", namespace, "-o", "json",
                               check=True).stdout
        return list(json.loads(out)["items"])

    def deploy_version(self, service: str = "catalog", version: str = "0.2.0", replicas: int = 1,
                       namespace: str = "shop", timeout: float = 180) -> dict[str, Any]:
        """A second Deployment of ``service`` (``<service>-v2``: the same pods, labelled ``version: <version>``,
        ``APP_VERSION`` set), behind the same Service; waits until its pods are ready; the Deployment applied."""
        base = json.loads(self.lab.kubectl("get", "deployment", service, "-n", namespace, "-o", "json",
                                           check=True).stdout)
        name = f"{service}-v{version.split('.')[1] if version.startswith('0.') else version.split('.')[0]}"
        template = base["spec"]["template"]
        template["metadata"]["labels"]["version"] = version
        template["metadata"].get("annotations", {}).pop("kubectl.kubernetes.io/restartedAt", None)
        for c in template["spec"]["containers"]:
            if c["name"] == service:
                c["env"] = [e for e in c.get("env") or [] if e["name"] != "APP_VERSION"] + [
                    {"name": "APP_VERSION", "value": version}]
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": name, "namespace": namespace,
                                   "labels": {**base["metadata"].get("labels", {}), "version": version}},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": service, "version": version}},
                               "template": template}}
        self.apply(deployment, namespace)
        self.lab.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, f"--timeout={int(timeout)}s",
                         check=True, timeout=timeout + 10)
        return deployment

    def restore(self, namespace: str = "shop") -> list[str]:
        """Undo what chapter 09 leaves (its VirtualServices, DestinationRules and the canary Deployment, the shop's
        knobs); what it undid."""
        done = []
        for kind in ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io"):
            out = self.lab.kubectl("delete", kind, "--all", "-n", namespace, "--ignore-not-found").stdout.strip()
            done += out.splitlines()
        out = self.lab.kubectl("delete", "deployment", "-n", namespace, "-l", "version=0.2.0",
                               "--ignore-not-found").stdout.strip()
        done += out.splitlines()
        return [line for line in done if line and not line.startswith("No resources found")]

    def break_routing(self, namespace: str = "shop") -> None:
        """Chapter 09's fault: the catalog's VirtualService sends everything to a subset no DestinationRule has."""
        self.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": {"name": "catalog", "namespace": namespace},
                    "spec": {"hosts": ["catalog"], "http": [{"route": [
                        {"destination": {"host": "catalog", "subset": "stable"}}]}]}}, namespace)

    # -- metrics ---------------------------------------------------------------------------------------------
    def split(self, service: str = "catalog", namespace: str = "shop", window: str = "30s") -> pd.DataFrame:
        """Requests per second to ``service`` by destination version, and their share, over the last ``window``
        (``istio_requests_total`` as the client sidecars report it)."""
        import pandas as pd

        expr = (f'sum by (destination_version) (rate(istio_requests_total{{reporter="source",'
                f'destination_service_name="{service}",destination_service_namespace="{namespace}"}}[{window}]))')
        frame = self.lab.prometheus.query(expr)
        if frame.empty:
            return pd.DataFrame(columns=["version", "rps", "share"])
        out = pd.DataFrame({"version": frame["destination_version"], "rps": frame["value"].astype(float)})
        total = out["rps"].sum()
        out["share"] = out["rps"] / total if total else 0.0
        return out.sort_values("version").reset_index(drop=True)

    def error_ratio(self, service: str = "catalog", namespace: str = "shop", window: str = "30s",
                    reporter: str = "source") -> float:
        """The share of requests to ``service`` answered 5xx over ``window``, as ``reporter`` saw them."""
        sel = (f'reporter="{reporter}",destination_service_name="{service}",'
               f'destination_service_namespace="{namespace}"')
        expr = (f'sum(rate(istio_requests_total{{{sel},response_code=~"5.."}}[{window}])) / '
                f'sum(rate(istio_requests_total{{{sel}}}[{window}]))')
        frame = self.lab.prometheus.query(expr)
        return float(frame["value"].iloc[0]) if not frame.empty else 0.0

    def graph(self, namespace: str = "shop", duration: int = 60) -> dict[str, Any]:
        """Kiali's versioned-app graph of the namespace (``elements.nodes``/``edges`` with each edge's request
        rate and error share): Kiali's own answer where the lab runs Kiali, else built from Prometheus with
        Kiali's queries and flagged from the VirtualServices."""
        import requests

        if self.endpoint.kiali:
            r = requests.get(f"{self.endpoint.kiali.rstrip('/')}/api/namespaces/graph", timeout=30, params={
                "namespaces": namespace, "duration": f"{duration}s", "graphType": "versionedApp",
                "injectServiceNodes": "true"})
            r.raise_for_status()
            return dict(r.json())
        from .kiali import Kiali

        kiali = Kiali(self.lab.prometheus.url, self.lab.prometheus.session())
        return kiali.graph([namespace], duration, virtual_services=self.virtual_services(namespace))

    # -- traces ----------------------------------------------------------------------------------------------
    def traces(self, service: str, operation: str = "", limit: int = 20, lookback: float = 600,
               min_duration: str = "", tags: dict[str, str] | None = None) -> list[str]:
        """The ids of the latest traces through ``service`` (Jaeger's service name, ``gateway.shop`` for a
        sidecar's spans, ``gateway`` for the app's own), newest first."""
        return self.jaeger.find_trace_ids(service, operation, timedelta(seconds=lookback), limit, min_duration,
                                          tags)

    def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace as Jaeger's UI shows it (``spans``, ``processes``)."""
        return self.jaeger.trace(trace_id)

    def spans(self, trace_id: str) -> pd.DataFrame:
        return self.jaeger.spans(trace_id)

    def waterfall(self, trace_id: str, title: str | None = None) -> Figure:
        """The trace's spans as Jaeger's timeline draws them."""
        import matplotlib.pyplot as plt

        from .jaeger.views import plot_waterfall

        figure = plot_waterfall(self.trace(trace_id), title=title)
        plt.close(figure)  # shown once, where the notebook puts it
        return figure

    def draw_graph(self, graph: dict[str, Any], title: str = "") -> Figure:
        """Kiali's graph: request rate and error share on each edge, flags for traffic shifting and faults."""
        import matplotlib.pyplot as plt

        from .kiali_view import draw_graph

        figure = draw_graph(graph, title=title)
        plt.close(figure)
        return figure
