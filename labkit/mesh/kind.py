"""The mesh on the kind backend: Istio 1.27's ``base``, ``istiod`` and ``gateway`` charts, Jaeger v2 (the
``jaeger`` chart, all-in-one with memory storage) and Kiali (the ``kiali-server`` chart), through Helm. Charts,
versions and NodePorts are ``charts.istio-base|istiod|istio-ingressgateway|jaeger|kiali-server`` in
``manifests/versions.yaml``; the values are rendered into ``<lab>/kind/mesh/``.

Tracing as the sim does it: the sidecars' legacy tracer is off (``global.proxy.tracer: none``,
``meshConfig.defaultConfig.tracing: {}``); ``meshConfig.extensionProviders`` has an ``opentelemetry`` provider
``jaeger`` sending OTLP/HTTP to Jaeger's collector (Service ``jaeger-collector.istio-system``, the name the sim's
istiod gives it), and a ``Telemetry`` resource in ``istio-system`` selects it for the whole mesh at 100 % sampling.
Envoy's access logs go to the sidecars' stdout as JSON.

From the laptop: Jaeger's query (16686) and OTLP/HTTP receiver (4318) on ``127.0.0.1:<ports.jaeger|jaeger-otlp>``,
Kiali on ``127.0.0.1:<ports.kiali>``. The jaeger chart lets a Service be a NodePort but not choose its nodePorts, so
the part pins those two by a strategic-merge patch of the chart's Service (helm keeps them: the chart never sets
them). istiod's monitoring port is not published (``MeshEndpoint.istiod`` is "")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import yaml

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..endpoints import Endpoint, MeshEndpoint

CHARTS = ("istio-base", "jaeger", "istiod", "istio-ingressgateway", "kiali-server")  # in install order
ISTIO_NAMESPACE = "istio-system"
JAEGER_SERVICE = "jaeger-collector"  # the jaeger chart's fullname (fullnameOverride): its one Service
QUERY_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT, HEALTH_PORT = 16686, 4317, 4318, 13133
TRACING_PROVIDER = "jaeger"  # meshConfig.extensionProviders[].name, selected by the Telemetry resource
MAX_TRACES = 20000  # Jaeger's memory store: a laptop's worth (the image's default keeps 100000)
SIDECAR_RESOURCES = {"requests": {"cpu": "10m", "memory": "40Mi"}, "limits": {"memory": "128Mi"}}


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def istiod_values(otlp_host: str) -> dict[str, Any]:
    """One istiod with laptop resources; tracing only through the ``jaeger`` OpenTelemetry provider (OTLP/HTTP to
    ``otlp_host``:4318); access logs on, as JSON; sidecars with one Envoy worker and small requests."""
    return {
        "autoscaleEnabled": False, "replicaCount": 1,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "global": {"defaultPodDisruptionBudget": {"enabled": False},  # one replica: a PDB would block node drains
                   "proxy": {"tracer": "none", "resources": SIDECAR_RESOURCES}},
        "meshConfig": {
            "enableTracing": True,
            "accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON",
            "defaultConfig": {"tracing": {}, "concurrency": 1},  # no legacy tracer; one worker, as the sim's Envoys
            "extensionProviders": [{"name": TRACING_PROVIDER, "opentelemetry": {
                "service": otlp_host, "port": OTLP_HTTP_PORT, "http": {"path": "/v1/traces", "timeout": "5s"}}}],
        },
    }


def telemetry(namespace: str = ISTIO_NAMESPACE) -> dict[str, Any]:
    """The mesh-wide ``Telemetry`` (in the root namespace): every request traced through ``jaeger``."""
    return {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
            "metadata": {"name": "mesh-default", "namespace": namespace},
            "spec": {"tracing": [{"providers": [{"name": TRACING_PROVIDER}], "randomSamplingPercentage": 100.0}]}}


def gateway_values(node_port: int) -> dict[str, Any]:
    """The ingress gateway: one replica, a NodePort Service (http2 on ``node_port``), laptop resources."""
    return {"replicaCount": 1, "autoscaling": {"enabled": False},
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "service": {"type": "NodePort", "ports": [
                {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": node_port}]}}


def jaeger_config(max_traces: int = MAX_TRACES) -> dict[str, Any]:
    """Jaeger v2's configuration (the chart's ``userconfig``): OTLP gRPC and HTTP receivers, a memory store of
    ``max_traces``, the query service and the health check the chart's probes ask (``/status`` on 13133)."""
    store = "memstore"
    return {
        "service": {"extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                             "exporters": ["jaeger_storage_exporter"]}}},
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}},
            "jaeger_query": {"storage": {"traces": store}, "http": {"endpoint": f"0.0.0.0:{QUERY_PORT}"}},
            "jaeger_storage": {"backends": {store: {"memory": {"max_traces": max_traces}}}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
                                             "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": store}},
    }


def jaeger_values() -> dict[str, Any]:
    """All-in-one Jaeger v2 named ``jaeger-collector``, its Service a NodePort, memory sized for a laptop."""
    return {"fullnameOverride": JAEGER_SERVICE, "userconfig": jaeger_config(),
            "jaeger": {"service": {"type": "NodePort"},
                       "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}}}


def jaeger_node_ports(query: int, otlp: int) -> dict[str, Any]:
    """The strategic-merge patch pinning the query's and OTLP/HTTP's nodePorts (ports merge by ``port``)."""
    return {"spec": {"ports": [{"port": QUERY_PORT, "nodePort": query}, {"port": OTLP_HTTP_PORT, "nodePort": otlp}]}}


def kiali_values(node_port: int, prometheus_url: str, jaeger_url: str, jaeger_external: str) -> dict[str, Any]:
    """Kiali for the lab: anonymous access, the graph from ``prometheus_url``, traces from Jaeger's query (HTTP),
    Grafana off (the lab renders its dashboards itself), its Service a NodePort."""
    return {
        "auth": {"strategy": "anonymous"},
        "deployment": {"service_type": "NodePort",
                       "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}},
        "server": {"node_port": node_port},
        "external_services": {
            "prometheus": {"url": prometheus_url},
            "tracing": {"enabled": True, "provider": "jaeger", "use_grpc": False, "internal_url": jaeger_url,
                        "external_url": jaeger_external},
            "grafana": {"enabled": False},
        },
    }


class MeshKind(KindPart):
    @staticmethod
    def folder(lab: KindLab) -> Path:
        return lab.dir / "mesh"

    @staticmethod
    def prometheus_url(lab: KindLab) -> str:
        """The lab's Prometheus Service (kube-prometheus-stack, its release named after its chart)."""
        chart = lab.versions["charts"]["kube-prometheus-stack"]
        return f"http://{service_host(chart['chart'] + '-prometheus', chart['namespace'])}:9090"

    def values(self, lab: KindLab) -> dict[str, dict[str, Any]]:
        """Each release's values, by release (the ``charts`` key)."""
        charts = lab.versions["charts"]
        jaeger = service_host(JAEGER_SERVICE, charts["jaeger"]["namespace"])
        return {"istio-base": {},
                "jaeger": jaeger_values(),
                "istiod": istiod_values(jaeger),
                "istio-ingressgateway": gateway_values(int(charts["istio-ingressgateway"]["node_port"])),
                "kiali-server": kiali_values(int(charts["kiali-server"]["node_port"]), self.prometheus_url(lab),
                                             f"http://{jaeger}:{QUERY_PORT}", lab.host_url("jaeger"))}

    def files(self, lab: KindLab) -> dict[Path, str]:
        header = "# the {} release's values, rendered by labkit/mesh/kind.py\n"
        out = {self.folder(lab) / f"{release}.yaml": header.format(release) + yaml.safe_dump(values, sort_keys=False)
               for release, values in self.values(lab).items()}
        out[self.folder(lab) / "telemetry.yaml"] = "# the mesh's tracing, rendered by labkit/mesh/kind.py\n" + \
            yaml.safe_dump(telemetry(lab.versions["charts"]["istiod"]["namespace"]), sort_keys=False)
        return out

    def helm(self, lab: KindLab, release: str, *extra: str) -> list[str]:
        c = lab.versions["charts"][release]
        return ["helm", "upgrade", "--install", release, c["chart"], "--repo", c["repo"],
                "--version", str(c["version"]), "--namespace", c["namespace"], "--create-namespace",
                "--values", str(self.folder(lab) / f"{release}.yaml"), "--kubeconfig", lab.kubeconfig, *extra]

    def configure(self, lab: KindLab) -> list[Command]:
        charts = lab.versions["charts"]
        wait = ["--wait", "--timeout", f"{charts['istio-base']['ready_seconds']}s"]
        istio, jaeger, kiali = charts["istiod"], charts["jaeger"], charts["kiali-server"]
        gateway = charts["istio-ingressgateway"]
        patch = json.dumps(jaeger_node_ports(int(jaeger["node_port"]), int(jaeger["otlp_node_port"])))
        return [
            Command(f"installing Istio {istio['app_version']}'s CRDs (helm chart base {istio['version']})",
                    self.helm(lab, "istio-base", *wait)),
            Command(f"installing Jaeger {jaeger['app_version']} (helm chart {jaeger['chart']} {jaeger['version']}, "
                    f"memory storage, query on 127.0.0.1:{lab.ports['jaeger']}, OTLP/HTTP on "
                    f"127.0.0.1:{lab.ports['jaeger-otlp']})", self.helm(lab, "jaeger", *wait)),
            Command("pinning Jaeger's query and OTLP/HTTP NodePorts", lab.kubectl(
                "patch", "service", JAEGER_SERVICE, "--namespace", jaeger["namespace"], "--type", "strategic",
                "--patch", patch)),
            Command(f"installing istiod {istio['app_version']} (helm chart istiod {istio['version']}, one replica, "
                    "tracing to Jaeger over OTLP)", self.helm(lab, "istiod", *wait)),
            Command(f"tracing every request of the mesh (Telemetry {telemetry()['metadata']['name']}, 100 %)",
                    lab.kubectl("apply", "--filename", str(self.folder(lab) / "telemetry.yaml"))),
            Command(f"installing the ingress gateway (helm chart gateway {gateway['version']}, NodePort "
                    f"{gateway['node_port']})", self.helm(lab, "istio-ingressgateway", *wait)),
            Command(f"installing Kiali {kiali['app_version']} (helm chart {kiali['chart']} {kiali['version']}, "
                    f"127.0.0.1:{lab.ports['kiali']})", self.helm(lab, "kiali-server", *wait)),
        ]

    def endpoint(self, lab: KindLab) -> Endpoint:
        return MeshEndpoint("Istio + Jaeger + Kiali", lab.host_url("jaeger"), otlp=lab.host_url("jaeger-otlp"),
                            istiod="", kiali=lab.host_url("kiali"))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        """Jaeger's query answers ``/api/services``."""
        try:
            res = requests.get(endpoint.url + "/api/services", timeout=5)
        except requests.RequestException as err:
            return False, f"Jaeger's query does not answer: {err}"
        return (True, "") if res.ok else (False, f"Jaeger's query answered {res.status_code}: {res.text[:200]}")
