"""A Helm release's NodePort Service, stood in for: the chart's Service with an Endpoints object pointing at the
stand-in process the harness runs on this machine (where the release's pods would be)."""

from __future__ import annotations

import json
from typing import Any


def publish(kube_run: Any, namespace: str, service: str, labels: dict[str, str], node_port: int, host: str,
            listen: int, port: int = 80, target_port: int = 8080) -> None:
    """Apply ``service`` (type NodePort on ``node_port``) and its Endpoints at ``host:listen``."""
    meta = {"name": service, "namespace": namespace, "labels": labels}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta,
           "spec": {"type": "NodePort", "ports": [{"name": "http", "port": port, "targetPort": target_port,
                                                   "nodePort": node_port}]}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
                 "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "http", "port": listen}]}]}
    for obj in (svc, endpoints):
        kube_run("apply", "-f", "-", stdin=json.dumps(obj))
