"""Endpoints (Envoy's ``ClusterLoadAssignment``) of a service port, or of one subset of it.

A pod with a sidecar is reached on its sidecar's inbound listener (pod IP:15006) — the sim's one deviation from
Istio, whose endpoints name the app's port and whose iptables redirect it to 15006; a pod without one is reached
directly on the app's port. Pods that are not ready are left out, as istiod leaves them out by default. A Service
without a selector has the addresses of its Endpoints object (as istiod reads their mirrored EndpointSlices), the
port named as the Service's port.
"""

from __future__ import annotations

from typing import Any

from .inputs import Mesh, Pod, Service, ServicePort


def socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def lb_endpoint(address: str, port: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One endpoint; its labels go to ``filter_metadata.istio`` (what ``config_dump`` summaries show)."""
    out: dict[str, Any] = {"endpoint": {"address": socket_address(address, port)}, "health_status": "HEALTHY"}
    if labels:
        out["metadata"] = {"filter_metadata": {"istio": {"labels": dict(labels)}}}
    return out


def _matches(labels: dict[str, str], subset: dict[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (subset or {}).items())


def pod_endpoint(pod: Pod, port: ServicePort, inbound_port: int) -> dict[str, Any] | None:
    if pod.meshed:
        return lb_endpoint(pod.ip, inbound_port, pod.labels)
    target = pod.resolve(port.target)
    return lb_endpoint(pod.ip, target, pod.labels) if target else None


def load_assignment(cluster: str, mesh: Mesh, service: Service, port: ServicePort,
                    subset: dict[str, str] | None, inbound_port: int) -> dict[str, Any]:
    """The endpoints of ``cluster``: the service's ready pods matching the subset's labels, or a ServiceEntry's
    endpoints (its ``address`` and the port's number in its ``ports`` map)."""
    found: list[dict[str, Any]] = []
    if service.entry is None and not service.selector:
        for ip, ports in mesh.endpoints.get((service.namespace, service.name), []):
            number = ports.get(port.name) or (next(iter(ports.values())) if len(ports) == 1 else None)
            if number and not subset:  # an address has no labels for a subset to match
                found.append(lb_endpoint(ip, number))
    elif service.entry is None:
        for pod in mesh.selected(service):
            if pod.ready and _matches(pod.labels, subset):
                ep = pod_endpoint(pod, port, inbound_port)
                if ep:
                    found.append(ep)
    else:
        entries = service.entry.get("endpoints") or []
        for ep in entries:
            labels = ep.get("labels") or {}
            if _matches(labels, subset):
                number = int((ep.get("ports") or {}).get(port.name) or port.target)
                found.append(lb_endpoint(str(ep["address"]), number, labels))
        if not entries and service.entry.get("resolution") == "DNS":
            found.append(lb_endpoint(service.host, int(port.target)))
    return {"cluster_name": cluster, "endpoints": [{"lb_endpoints": found}] if found else []}
