"""A small meshed shop for the telemetry and Kiali tests: a ``gateway`` sidecar calling two ``catalog`` replicas
(v1 and v2, each behind its own sidecar's inbound listener), every sidecar a real Envoy configured by the mesh's
translation (istiod's, ``labkit.mesh.translate``) through file-based xDS and run by its agent
(``labkit.mesh.agent``), and the sim's Prometheus scraping the agents' ``/stats/prometheus`` every 2 s.

The shop's VirtualService (``VIRTUAL_SERVICE``) splits ``catalog`` between v1 and v2, aborts ``/fault`` with 503
(``FI``) and routes ``/v3`` to a subset no DestinationRule defines (503 ``NC``)."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path
from typing import Any

import requests
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest

from labkit.core.network import free_port, port_free
from labkit.mesh.agent import Agent
from labkit.mesh.identity import ProxyIdentity
from labkit.mesh.translate import Mesh, ProxyOptions, translate
from labkit.mesh.xds import AdminAddress, FileDelivery, bootstrap
from labkit.prometheus.component import Prometheus

from ..components import ComponentLoop
from ..waiting import until
from .servers import LoopServers

NAMESPACE = "shop"
CATALOG = "catalog.shop.svc.cluster.local"


def to(subset: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": "catalog", "subset": subset}, "weight": weight}


def virtual_service(weights: tuple[int, int]) -> dict[str, Any]:
    split = [to("v1", weights[0]), to("v2", weights[1])]
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "catalog", "namespace": NAMESPACE}, "spec": {"hosts": ["catalog"], "http": [
                {"match": [{"uri": {"prefix": "/fault"}}], "route": split,
                 "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}}},
                {"match": [{"uri": {"prefix": "/v3"}}], "route": [to("v3", 100)]},
                {"route": split, "timeout": "5s"}]}}


DESTINATION_RULE = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": "catalog", "namespace": NAMESPACE},
                    "spec": {"host": "catalog", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                           {"name": "v2", "labels": {"version": "v2"}}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "catalog", "namespace": NAMESPACE},
           "spec": {"selector": {"app": "catalog"}, "clusterIP": "10.96.7.8",
                    "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}}


def pod(ident: ProxyIdentity, port: int) -> dict[str, Any]:
    """The pod as the API server returns it, with its injected ``istio-proxy``."""
    containers = [{"name": "app", "ports": [{"name": "http", "containerPort": port}]},
                  {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.3"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": ident.pod, "namespace": NAMESPACE, "labels": dict(ident.labels)},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "podIP": ident.ip, "conditions": [{"type": "Ready", "status": "True"}]}}


class Ports:
    """Free ports, never the same one twice on an address (``free_port`` alone can hand one out again)."""

    def __init__(self) -> None:
        self.taken: set[tuple[str, int]] = set()

    def __call__(self, ip: str) -> int:
        while True:
            with socket.socket() as s:
                s.bind((ip, 0))
                port = s.getsockname()[1]
            if (ip, port) not in self.taken:
                self.taken.add((ip, port))
                return port

    def common(self, ips: list[str]) -> int:
        """A port free on every one of ``ips`` (the inbound port all meshed pods' Endpoints name)."""
        while True:
            port = self(ips[0])
            if all(port_free(ip, port) and (ip, port) not in self.taken for ip in ips[1:]):
                self.taken.update((ip, port) for ip in ips[1:])
                return port


def identity(ip: str, workload: str, app: str, version: str) -> ProxyIdentity:
    labels = {"app": app, "version": version}
    return ProxyIdentity(f"{workload}-7d9f-x1", NAMESPACE, ip, workload, app, version, labels=labels)


class App(LoopServers):
    """aiohttp replicas on a loop thread; ``/fail`` answers 500."""

    def __init__(self) -> None:
        super().__init__("telemetry-apps")

    def serve(self, name: str, ip: str, port: int) -> None:
        registry = CollectorRegistry()
        handled = Counter("catalog_requests", "Requests the replica answered", registry=registry)

        async def handle(request: web.Request) -> web.Response:
            if request.path == "/metrics":  # the app's own metrics, which its agent merges
                return web.Response(body=generate_latest(registry), content_type="text/plain")
            handled.inc()
            body = {"replica": name, "pad": "x" * 100}
            return web.json_response(body, status=500 if request.path == "/fail" else 200)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._serve(app, ip, port)


class MeshedShop(ComponentLoop):
    """gateway → catalog v1/v2 through real Envoys, their agents, and Prometheus scraping the agents; the agents
    in start order: the gateway's, catalog-v1's, catalog-v2's."""

    def __init__(self, home: Path, weights: tuple[int, int] = (50, 50)) -> None:
        super().__init__(home, "telemetry")
        block = f"127.{random.randint(250, 254)}.{random.randint(0, 255)}."
        self.gateway = identity(block + "2", "gateway", "gateway", "v1")
        self.catalogs = [identity(block + "3", "catalog-v1", "catalog", "v1"),
                         identity(block + "4", "catalog-v2", "catalog", "v2")]
        self.apps, self.port = App(), Ports()
        self.agents: list[Agent] = []
        self.outbound = self.port(self.gateway.ip)
        try:
            self._mesh(home, weights)
            self.prometheus = self._prometheus(home)
        except BaseException:
            self.close()
            raise

    def _mesh(self, home: Path, weights: tuple[int, int]) -> None:
        idents = [self.gateway, *self.catalogs]
        inbound = self.port.common([i.ip for i in idents])
        objects = [SERVICE, DESTINATION_RULE, virtual_service(weights), pod(self.gateway, 8080)]
        scrape: dict[str, dict[str, str]] = {}  # the app's prometheus.io settings, as the injector passes them
        for ident in self.catalogs:
            app_port = self.port(ident.ip)
            self.apps.serve(ident.workload, ident.ip, app_port)
            objects.append(pod(ident, app_port))
            scrape[ident.pod] = {"scrape": "true", "port": str(app_port), "path": "/metrics"}
        self.virtual_service = objects[2]
        mesh = Mesh.from_objects(objects)
        for ident in idents:
            folder = home / ident.pod
            delivery = FileDelivery(folder / "xds")
            options = ProxyOptions(access_log=str(folder / "access.log"), inbound_port=inbound,
                                   outbound_port=self.outbound if ident is self.gateway else self.port(ident.ip))
            delivery.push(translate(mesh, ident, options))
            path = folder / "bootstrap.json"
            path.write_text(json.dumps(bootstrap(ident, delivery, AdminAddress(ident.ip, self.port(ident.ip)))))
            agent = Agent(ident, path, folder / "access.log", folder / "envoy.log",
                          listen=(ident.ip, self.port(ident.ip)), app_scrape=scrape.get(ident.pod))
            self.agents.append(agent)
            self.run(agent.start())
            until(f"{ident.pod}'s agent to be ready",
                  lambda a=agent: requests.get(f"{a.url}/healthz/ready", timeout=5).status_code == 200, timeout=60)

    def _prometheus(self, home: Path) -> Prometheus:
        config = home / "prometheus"
        config.mkdir()
        targets = [a.url.removeprefix("http://") for a in self.agents]
        (config / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},  # room for a busy machine
            "scrape_configs": [{"job_name": "envoy-stats", "metrics_path": "/stats/prometheus",
                                "static_configs": [{"targets": targets}],
                                # Envoy's own ~1,300 series per sidecar are not what these tests read
                                "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": "envoy_.*",
                                                            "action": "drop"}]}]}))
        return self.start(Prometheus(config, None, ("127.0.0.1", free_port())), "prometheus")

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.endpoint().url

    def call(self, path: str, n: int, authority: str = "catalog:8080") -> list[int]:
        """``n`` requests from the gateway's app through its sidecar; their status codes."""
        with requests.Session() as s:
            s.trust_env = False
            s.proxies = {"http": f"http://{self.gateway.ip}:{self.outbound}"}
            return [s.get(f"http://{authority}{path}", timeout=10).status_code for _ in range(n)]

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=60).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, expr: str, value: float) -> list[dict[str, Any]]:
        """The answer to ``expr`` once Prometheus has scraped enough for its first value to be ``value``."""
        return until(f"{expr} == {value}", lambda: (r := self.query(expr)) and float(r[0]["value"][1]) == value
                     and r, timeout=30)

    def stop_components(self) -> None:
        """Stop everything, each even when stopping another failed; then raise the first failure."""
        steps = [self.prometheus.stop] if hasattr(self, "prometheus") else []
        errors = []
        for step in [*steps, *(a.stop for a in self.agents)]:
            try:
                self.run(step())
            except Exception as exc:  # reported once everything is stopped
                errors.append(exc)
        self.apps.close()
        if errors:
            raise errors[0]


def access_entries(agent: Agent) -> list[dict[str, Any]]:
    return [json.loads(line) for line in agent.access_log.read_text().splitlines()]
