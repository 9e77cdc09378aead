"""The sim lab's address plan: where each listener lives in the lab's loopback block ``127.A.0.0/16``.

======================  ==========================================================================
``127.A.0.1``           the daemon's control API (7070), the registry (5000; Harbor's metrics 8001),
                        JupyterLab (8888)
``127.A.0.3``           GitLab (8929): git smart HTTP and the REST API v4
``127.A.0.4``           Nexus (8081): its repositories and REST API
``127.A.0.5``           Argo CD (8080): its API server (``/api/v1``) and the Git webhook (``/api/webhook``);
                        the metrics of the controller (8082), the API server (8083), the repo server (8084)
``127.A.0.6``           Prometheus (9090): its HTTP API and the exporters' side (kube-state-metrics 8081)
``127.A.0.7``           Elasticsearch (9200)
``127.A.0.2``           the load balancer: HAProxy's API (6443), edge (8080) and stats (8404) frontends
``127.A.0.11``-``13``   the API servers of server-1..3 (6443)
``127.A.1.1``-``3``     the nodes server-1..3; ``127.A.1.11``-``12`` agent-1..2 (NodePorts; the node's service
                        proxy on 3128, its kubelet's metrics on 10250, its Fluent Bit's monitoring API on 2020)
``127.A.(20+i).2``-     the pod IPs of the i-th node (0-based, in ``NODES`` order)
======================  ==========================================================================

Where the OS has no per-address loopback (macOS), ``Network`` puts every listener on 127.0.0.1 with a
port of its own; either way the choice is kept in ``network.json`` so endpoints survive a restart.
The kind backend has the same nodes (``NODES``), as Docker containers.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVERS = ("server-1", "server-2", "server-3")  # RKE2 "server" nodes: the control plane
AGENTS = ("agent-1", "agent-2")  # RKE2 "agent" nodes: the workloads
NODES = SERVERS + AGENTS


@dataclass(frozen=True)
class Slot:
    """A listener of the plan: its name in ``network.json``, its address ``127.A.third.fourth`` and usual port."""

    name: str
    third: int
    fourth: int
    port: int


CONTROL = Slot("control", 0, 1, 7070)
REGISTRY = Slot("registry", 0, 1, 5000)
HARBOR_METRICS = Slot("harbor-metrics", 0, 1, 8001)  # Harbor's metrics (exporter; ?comp=core|registry)
JUPYTER = Slot("jupyterlab", 0, 1, 8888)
GITLAB = Slot("gitlab", 0, 3, 8929)  # GitLab: git smart HTTP and the REST API v4
NEXUS = Slot("nexus", 0, 4, 8081)  # Nexus Repository: /repository/<name>/..., /service/rest/v1
ARGOCD = Slot("argocd", 0, 5, 8080)  # Argo CD's API server: /api/v1, /api/webhook
ARGOCD_CONTROLLER_METRICS = Slot("argocd-controller-metrics", 0, 5, 8082)  # the controller's /metrics
ARGOCD_SERVER_METRICS = Slot("argocd-server-metrics", 0, 5, 8083)  # the API server's /metrics
ARGOCD_REPO_METRICS = Slot("argocd-repo-server-metrics", 0, 5, 8084)  # the repo server's /metrics
PROMETHEUS = Slot("prometheus", 0, 6, 9090)  # Prometheus' HTTP API /api/v1 and /metrics
KUBE_STATE_METRICS = Slot("kube-state-metrics", 0, 6, 8081)  # kube-state-metrics' /metrics
ELASTICSEARCH = Slot("elasticsearch", 0, 7, 9200)  # Elasticsearch's REST API
JAEGER = Slot("jaeger", 0, 8, 16686)  # Jaeger's query API (/api/traces, /api/v3)
JAEGER_OTLP = Slot("jaeger-otlp", 0, 8, 4318)  # Jaeger's OTLP/HTTP receiver (/v1/traces)
ISTIOD = Slot("istiod", 0, 8, 15014)  # the sim's istiod: /debug/*, and each sidecar's bootstrap for its agent
LB_API = Slot("haproxy-api", 0, 2, 6443)
LB_HTTP = Slot("haproxy-http", 0, 2, 8080)
LB_STATS = Slot("haproxy-stats", 0, 2, 8404)


def api_server(node: str) -> Slot:
    """The API server of a server node (``server-2``)."""
    return Slot(f"kube-apiserver-{SERVERS.index(node) + 1}", 0, 11 + SERVERS.index(node), 6443)


def node_address(node: str) -> tuple[int, int]:
    """(third, fourth) of a node's own address: NodePorts listen there."""
    return (1, 1 + SERVERS.index(node)) if node in SERVERS else (1, 11 + AGENTS.index(node))


def node_proxy(node: str) -> Slot:
    """The node's service proxy (pods reach Services by name through it)."""
    return Slot(f"proxy-{node}", *node_address(node), 3128)


def kubelet_metrics(node: str) -> Slot:
    """The node's kubelet metrics (``/metrics``, ``/metrics/cadvisor``, ``/metrics/resource``), as on port 10250."""
    return Slot(f"kubelet-{node}", *node_address(node), 10250)


def fluentbit(node: str) -> Slot:
    """The node's Fluent Bit monitoring API (``/api/v1/health``, ``/api/v1/metrics/prometheus``)."""
    return Slot(f"fluentbit-{node}", *node_address(node), 2020)


def pod_addresses(node: str) -> list[tuple[int, int]]:
    """(third, fourth) of every pod IP the node may hand out."""
    return [(20 + NODES.index(node), k) for k in range(2, 250)]
