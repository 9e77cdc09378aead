"""Kubernetes on the kind backend: a kind cluster of three control-plane nodes and two workers.

The nodes register as ``server-1..3`` and ``agent-1..2`` (the names an RKE2 cluster and the sim use);
their containers keep kind's names. The kubeconfig points at the lab's HAProxy, not at kind's own load
balancer. Stopping a node (or its API server) stops its container.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.addresses import AGENTS, NODES, SERVERS
from ..core.errors import LabError
from ..core.timings import timings
from ..endpoints import Endpoint, KubernetesEndpoint
from ..kubeclient import is_ready

READY_TIMEOUT = "300s"
HELM_TIMEOUT = "5m"


def cluster_nodes(lab: KindLab) -> list[dict[str, Any]]:
    """The nodes of the kind config, in kind's order; the gateway NodePort of agent-1 is published, Harbor's
    NodePort (the registry port, the same on the host and the node) on the node Harbor lives on, Argo CD's
    API server's NodePort on its node, Prometheus' and Grafana's on theirs, Elasticsearch's and Kibana's on theirs,
    Jaeger's query and OTLP/HTTP and Kiali's on theirs (labkit/mesh/kind.py),
    and on every node its own Fluent Bit's monitoring API (the collectors run in the node's network:
    labkit/logging/kind.py), each on the host port ``ports.fluentbit-<node>`` (absent in older labs)."""
    nodeport, harbor = int(lab.versions["shop"]["gateway_nodeport"]), lab.versions["charts"]["harbor"]["node"]
    registry, argocd = lab.ports["registry"], lab.versions["charts"]["argo-cd"]
    monitoring = lab.versions["charts"]["kube-prometheus-stack"]
    es, kibana, fluentbit = (lab.versions["charts"][c] for c in ("elasticsearch", "kibana", "fluent-bit"))
    jaeger, kiali = lab.versions["charts"]["jaeger"], lab.versions["charts"]["kiali-server"]

    def mappings(name: str) -> list[dict[str, int]]:
        return ([{"container": nodeport, "host": lab.ports["gateway"]}] if name == AGENTS[0] else []) + \
            ([{"container": registry, "host": registry}] if name == harbor else []) + \
            ([{"container": int(argocd["node_port"]), "host": lab.ports["argocd"]}]
             if name == argocd["node"] else []) + \
            ([{"container": int(monitoring["node_port"]), "host": lab.ports["prometheus"]},
              {"container": int(monitoring["grafana_node_port"]), "host": lab.ports["grafana"]}]
             if name == monitoring["node"] else []) + \
            ([{"container": int(jaeger["node_port"]), "host": lab.ports["jaeger"]},
              {"container": int(jaeger["otlp_node_port"]), "host": lab.ports["jaeger-otlp"]},
              {"container": int(kiali["node_port"]), "host": lab.ports["kiali"]}]
             if name == jaeger["node"] and "kiali" in lab.ports else []) + \
            ([{"container": int(es["node_port"]), "host": lab.ports["elasticsearch"]},
              {"container": int(kibana["node_port"]), "host": lab.ports["kibana"]}]
             if name == es["node"] and "kibana" in lab.ports else []) + \
            ([{"container": int(fluentbit["metrics_port"]), "host": lab.ports[f"fluentbit-{name}"]}]
             if f"fluentbit-{name}" in lab.ports else [])

    return [{"name": name, "role": "control-plane" if name in SERVERS else "worker",
             "kubeadm_kind": "InitConfiguration" if i == 0 else "JoinConfiguration", "port_mappings": mappings(name)}
            for i, name in enumerate(NODES)]


def node_port_range(lab: KindLab) -> str:
    """The API server's ``service-node-port-range``: the stock 30000-32767, widened down to the registry's port."""
    return f"{min(lab.ports['registry'], 30000)}-{max(lab.ports['registry'], 32767)}"


class KubernetesKind(KindPart):
    @staticmethod
    def config_file(lab: KindLab) -> Path:
        return lab.dir / "cluster.yaml"

    def files(self, lab: KindLab) -> dict[Path, str]:
        t = timings("kind")
        return {self.config_file(lab): lab.checkout.template("cluster.yaml.j2").render(
            cluster=lab.cluster, node_image=lab.versions["kind"]["node_image"], haproxy_host=lab.container("haproxy"),
            certs_dir=str(lab.certs_dir), nodes=cluster_nodes(lab), registry_port=lab.ports["registry"],
            node_port_range=node_port_range(lab),
            node_monitor_grace_period=int(t.not_ready_seconds), node_lease_seconds=int(t.heartbeat_seconds * 4))}

    def create(self, lab: KindLab, exists: bool) -> list[Command]:
        kc = lab.kubeconfig
        cmds = [] if exists else [
            Command(f"creating kind cluster {lab.cluster} (3 servers, 2 agents; a few minutes)",
                    ["kind", "create", "cluster", "--name", lab.cluster, "--config", str(self.config_file(lab)),
                     "--kubeconfig", kc])]
        return [*cmds,
                Command("writing the kubeconfig",
                        ["kind", "export", "kubeconfig", "--name", lab.cluster, "--kubeconfig", kc]),
                Command("pointing the kubeconfig at HAProxy",
                        lab.kubectl("config", "set-cluster", f"kind-{lab.cluster}",
                                    "--server", lab.host_url("api", "https")))]

    def ready(self, lab: KindLab) -> list[Command]:
        return [Command("waiting for the nodes to be Ready",
                        lab.kubectl("wait", "--for=condition=Ready", "nodes", "--all", f"--timeout={READY_TIMEOUT}"))]

    def configure(self, lab: KindLab) -> list[Command]:
        cmds = []
        for name in lab.versions["modules"]["kubernetes"].get("charts", []):
            chart = lab.versions["charts"][name]
            cmds.append(Command(f"installing {name} (helm)", [
                "helm", "upgrade", "--install", name, chart["chart"], "--repo", chart["repo"],
                "--version", str(chart["version"]), "--namespace", chart["namespace"],
                "--values", str(lab.checkout.root / chart["values"]), "--kubeconfig", lab.kubeconfig,
                "--wait", "--timeout", HELM_TIMEOUT]))
        return cmds

    def destroy(self, lab: KindLab, exists: bool) -> list[Command]:
        return [Command(f"deleting kind cluster {lab.cluster}",
                        ["kind", "delete", "cluster", "--name", lab.cluster, "--kubeconfig", lab.kubeconfig])
                ] if exists else []

    def endpoint(self, lab: KindLab) -> Endpoint:
        # the API servers themselves are reachable on the kind network only; from this machine through HAProxy
        return KubernetesEndpoint("Kubernetes API (3 servers behind HAProxy)", lab.host_url("api", "https"),
                                  [f"https://{c}:6443" for n, c in lab.node_containers.items()
                                   if n in SERVERS], lab.kubeconfig)

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        from kubernetes import client, config

        try:
            api = client.CoreV1Api(config.new_client_from_config(config_file=lab.kubeconfig))
            nodes = api.list_node(_request_timeout=5).items
        except Exception as err:  # any client error means unhealthy, in its own words
            return False, f"API not reachable: {str(err).splitlines()[0][:200]}"
        ready = sorted(n.metadata.name for n in nodes if is_ready(n))
        return bool(nodes) and len(ready) == len(nodes), f"{len(ready)}/{len(nodes)} nodes Ready ({', '.join(ready)})"

    def actions(self, lab: KindLab) -> dict[str, Callable[..., Any]]:
        containers = lab.node_containers

        def docker(verb: str, node: str, nodes: tuple[str, ...] = NODES) -> str:
            if node not in nodes:
                raise LabError(f"no node {node!r}: the nodes are {', '.join(nodes)}")
            lab.run(["docker", verb, containers[node]], timeout=120)
            return f"node {node} (container {containers[node]}) {'stopped' if verb == 'stop' else 'started'}"

        return {"node-stop": lambda name: docker("stop", name), "node-start": lambda name: docker("start", name),
                # an API server of kind's goes down with its node: the container stops
                "server-stop": lambda server: docker("stop", server, SERVERS),
                "server-start": lambda server: docker("start", server, SERVERS)}
