"""A Helm release's NodePort Service, stood in for: the chart's Service with an Endpoints object pointing at the
stand-in process the harness runs on this machine (where the release's pods would be)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def publish(kube_run: Any, namespace: str, service: str, labels: dict[str, str], node_port: int, host: str,
            listen: int, port: int = 80, target_port: int = 8080) -> None:
    """Apply ``service`` (type NodePort on ``node_port``) and its Endpoints at ``host:listen``."""
    publish_ports(kube_run, namespace, service, labels, host, [Port("http", port, target_port, node_port, listen)])


@dataclass(frozen=True)
class Port:
    """One port of a stood-in Service: its name, port and targetPort, its nodePort (None: the API server picks one)
    and where the stand-in serves it."""

    name: str
    port: int
    target_port: int
    node_port: int | None
    listen: int


def publish_ports(kube_run: Any, namespace: str, service: str, labels: dict[str, str], host: str, ports: list[Port],
                  kind: str = "NodePort") -> None:
    """Apply ``service`` of type ``kind`` with ``ports`` and its Endpoints at ``host``, each port's ``listen``."""
    meta = {"name": service, "namespace": namespace, "labels": labels}
    specs = [{"name": p.name, "port": p.port, "targetPort": p.target_port,
              **({"nodePort": p.node_port} if p.node_port is not None and kind != "ClusterIP" else {})} for p in ports]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"type": kind, "ports": specs}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
                 "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": p.name, "port": p.listen}
                                                                     for p in ports]}]}
    kube_run("apply", "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in (svc, endpoints)))  # one kubectl call
