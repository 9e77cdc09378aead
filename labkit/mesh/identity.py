"""What every part of the mesh agrees on: a sidecar's identity, its ports, the peer metadata it exchanges and the
access log it writes.

* The control plane (``translate``) builds each Envoy's configuration for a :class:`ProxyIdentity`; on every
  outbound request the sidecar adds ``x-envoy-peer-metadata`` (its own :func:`peer_metadata`), and on every inbound
  response too, as Istio's metadata exchange does, so both reporters know who is on the other side.
* Each sidecar writes one JSON line per request to its access log (``access_log_format(reporter)``); the agent
  beside it (``telemetry``) turns those lines into Istio's standard metrics (``istio_requests_total`` …).

Istio's real header holds a base64 protobuf ``Struct``; the lab's holds base64 JSON of the same keys
(``NAME``, ``NAMESPACE``, ``WORKLOAD_NAME``, ``LABELS``, ``CLUSTER_ID``, ``MESH_ID``, ``SERVICE_ACCOUNT``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

# the ports of an istio-proxy, as Istio numbers them
OUTBOUND_PORT = 15001  # the app's outbound traffic (in the sim: its HTTP proxy; in Istio: iptables' redirect)
INBOUND_PORT = 15006  # traffic to the app (in the sim the Endpoints of a meshed pod name this port)
ADMIN_PORT = 15000  # Envoy's admin API (/config_dump, /stats), loopback only
MERGED_METRICS_PORT = 15020  # the agent's /stats/prometheus: Envoy's stats and the istio_* metrics
ENVOY_PROMETHEUS_PORT = 15090  # Envoy's own /stats/prometheus

PEER_HEADER = "x-envoy-peer-metadata"
PEER_ID_HEADER = "x-envoy-peer-metadata-id"
CLUSTER_ID = "Kubernetes"
MESH_ID = "cluster.local"
SIDECAR_CONTAINER = "istio-proxy"


def has_sidecar(pod: dict[str, Any]) -> bool:
    """Whether ``pod`` runs an ``istio-proxy`` container (the injector added one). In the sim the kubelet and the
    node's service proxy then do what Istio's iptables rules do: the app's ``HTTP_PROXY`` is the sidecar's outbound
    listener (:data:`OUTBOUND_PORT`) and connections to the pod go to its inbound listener (:data:`INBOUND_PORT`)."""
    return any(c.get("name") == SIDECAR_CONTAINER for c in (pod.get("spec") or {}).get("containers") or [])


@dataclass(frozen=True)
class ProxyIdentity:
    """One sidecar: the pod it sits in and the workload that pod belongs to (``app``/``version`` labels as Istio
    reads them: ``app.kubernetes.io/name`` or ``app``, ``app.kubernetes.io/version`` or ``version``)."""

    pod: str
    namespace: str
    ip: str
    workload: str
    app: str = ""
    version: str = ""
    service_account: str = "default"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        """Envoy's node id, as istiod names a sidecar: ``sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local``."""
        return f"sidecar~{self.ip}~{self.pod}.{self.namespace}~{self.namespace}.svc.cluster.local"

    @property
    def cluster(self) -> str:
        """Envoy's ``--service-cluster``, and the service name its spans carry: ``<app>.<namespace>``."""
        return f"{self.app or self.workload}.{self.namespace}"


def peer_metadata(identity: ProxyIdentity) -> str:
    """The ``x-envoy-peer-metadata`` value this sidecar sends about itself."""
    doc = {"NAME": identity.pod, "NAMESPACE": identity.namespace, "WORKLOAD_NAME": identity.workload,
           "LABELS": dict(identity.labels), "CLUSTER_ID": CLUSTER_ID, "MESH_ID": MESH_ID,
           "SERVICE_ACCOUNT": identity.service_account}
    return base64.b64encode(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).decode()


def read_peer_metadata(value: str | None) -> dict[str, Any]:
    """The peer's metadata from a header value; ``{}`` when absent or unreadable (the peer is outside the mesh)."""
    if not value or value == "-":
        return {}
    try:
        doc = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def access_log_format(reporter: str) -> dict[str, str]:
    """Envoy's ``json_format`` for a listener's access log: ``reporter`` is ``source`` on the outbound listener
    and ``destination`` on the inbound one. ``peer`` is the other side's metadata: the response's header outbound,
    the request's inbound."""
    peer = f"%RESP({PEER_HEADER.upper()})%" if reporter == "source" else f"%REQ({PEER_HEADER.upper()})%"
    return {
        "reporter": reporter,
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "authority": "%REQ(:AUTHORITY)%",
        "protocol": "%PROTOCOL%",
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "duration_ms": "%DURATION%",
        "request_bytes": "%BYTES_RECEIVED%",
        "response_bytes": "%BYTES_SENT%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "upstream_host": "%UPSTREAM_HOST%",
        "downstream_remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "traceparent": "%REQ(TRACEPARENT)%",
        "peer": peer,
    }
