"""Istio's standard metrics from a sidecar's access log.

Istio's stats filter counts every request inside Envoy; the lab's sidecar writes one JSON line per request instead
(``identity.access_log_format``) and the agent beside it turns those lines into the same series, with Istio's names,
labels (in Istio's order) and Envoy's default histogram buckets:

* ``istio_requests_total`` (counter),
* ``istio_request_duration_milliseconds`` (histogram, ``_bucket``/``_sum``/``_count``),
* ``istio_request_bytes`` and ``istio_response_bytes`` (histograms of the body sizes).

Where Istio writes ``unknown`` the lab does too: a peer without metadata (a caller outside the mesh, or no upstream
at all as with ``NR``) leaves its side ``unknown`` (its canonical revision ``latest``); principals are ``unknown``
(no mTLS in the sim); ``connection_security_policy`` is ``unknown`` for the source reporter and ``none`` for the
destination one. ``destination_service`` comes from the upstream cluster's name (``outbound|8080|v1|catalog.shop.
svc.cluster.local``) as Istio reads it from the cluster's metadata, else from the ``:authority`` (Istio's host header
fallback). On the inbound side the sim's ``inbound|<port>||`` cluster carries no service, so the authority's short
name is completed in the pod's namespace (``catalog:8080`` → ``catalog.shop.svc.cluster.local``), which is what
Istio's inbound cluster metadata says for a pod reached through its Service.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .identity import CLUSTER_ID, ProxyIdentity, read_peer_metadata

UNKNOWN = "unknown"
# Envoy's default histogram buckets (source/common/stats/histogram_impl.h), used for every istio_* histogram
ENVOY_BUCKETS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                                    300000, 600000, 1800000, 3600000)
# the labels of istio_requests_total and the request histograms, in the order Istio's stats filter writes them
LABELS: tuple[str, ...] = (
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
    "destination_version", "destination_service", "destination_canonical_service", "destination_canonical_revision",
    "destination_service_name", "destination_service_namespace", "destination_cluster", "request_protocol",
    "response_code", "grpc_response_status", "response_flags", "connection_security_policy")
HISTOGRAMS: dict[str, str] = {  # metric → the access log field it observes
    "istio_request_duration_milliseconds": "duration_ms",
    "istio_request_bytes": "request_bytes",  # body sizes, as Istio's (headers not counted)
    "istio_response_bytes": "response_bytes",
}
MESH_DOMAIN = "svc.cluster.local"
# the access log fields the labels are made of (request_labels reads no other)
LABEL_FIELDS = ("reporter", "peer", "authority", "upstream_cluster", "response_code", "response_flags")
MAX_KEYS = 10000  # combinations remembered


@dataclass(frozen=True)
class Workload:
    """One side of a request as the stats filter names it."""

    name: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = "latest"
    cluster: str = UNKNOWN

    @classmethod
    def of(cls, labels: Mapping[str, str], name: str, namespace: str, cluster: str) -> Workload:
        """From a workload's labels, as Istio derives ``app``, ``version`` and the canonical service/revision."""
        return cls(name=name, namespace=namespace,
                   app=labels.get("app") or labels.get("app.kubernetes.io/name") or UNKNOWN,
                   version=labels.get("version") or labels.get("app.kubernetes.io/version") or UNKNOWN,
                   canonical_service=labels.get("service.istio.io/canonical-name")
                   or labels.get("app.kubernetes.io/name") or labels.get("app") or name,
                   canonical_revision=labels.get("service.istio.io/canonical-revision")
                   or labels.get("app.kubernetes.io/version") or labels.get("version") or "latest",
                   cluster=cluster)

    @classmethod
    def of_identity(cls, identity: ProxyIdentity) -> Workload:
        labels = dict(identity.labels)
        if identity.app:
            labels.setdefault("app", identity.app)
        if identity.version:
            labels.setdefault("version", identity.version)
        return cls.of(labels, identity.workload, identity.namespace, CLUSTER_ID)

    @classmethod
    def of_peer(cls, peer: Mapping[str, Any]) -> Workload:
        """From ``x-envoy-peer-metadata``; all ``unknown`` when the peer sent none."""
        if not peer.get("WORKLOAD_NAME"):
            return cls()
        labels = peer.get("LABELS") if isinstance(peer.get("LABELS"), dict) else {}
        return cls.of(labels, str(peer["WORKLOAD_NAME"]), str(peer.get("NAMESPACE") or UNKNOWN),
                      str(peer.get("CLUSTER_ID") or UNKNOWN))

    def labels(self, side: str) -> dict[str, str]:
        return {f"{side}_workload": self.name, f"{side}_workload_namespace": self.namespace,
                f"{side}_app": self.app, f"{side}_version": self.version,
                f"{side}_canonical_service": self.canonical_service,
                f"{side}_canonical_revision": self.canonical_revision, f"{side}_cluster": self.cluster,
                f"{side}_principal": UNKNOWN}


def _text(value: Any) -> str:
    """An access log field as text; Envoy writes ``-`` (or JSON null) for a value it does not have."""
    return "" if value is None or value == "-" else str(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def outbound_service(cluster: str) -> str:
    """The service host of an ``outbound|<port>|<subset>|<host>`` cluster name, ``""`` for any other cluster."""
    parts = cluster.split("|")
    return parts[3] if len(parts) == 4 and parts[0] == "outbound" else ""


def qualify(authority: str, namespace: str) -> str:
    """An inbound request's ``:authority`` as the service's FQDN in the pod's namespace; an address stays as is."""
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    if not host or host.replace(".", "").isdigit():
        return authority
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{MESH_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.{MESH_DOMAIN}"
    return host


def service_labels(host: str, fallback: str, namespace: str) -> dict[str, str]:
    """``destination_service``/``_name``/``_namespace``: from a mesh host (``catalog.shop.svc.cluster.local``) or,
    without one, the host header fallback (the authority as it was, the destination workload's namespace)."""
    if host.endswith(f".{MESH_DOMAIN}"):
        name, ns = host.split(".")[:2]
        return {"destination_service": host, "destination_service_name": name, "destination_service_namespace": ns}
    service = host or fallback or UNKNOWN
    return {"destination_service": service, "destination_service_name": service,
            "destination_service_namespace": namespace}


def request_labels(entry: Mapping[str, Any], identity: ProxyIdentity) -> dict[str, str]:
    """The labels of one access log entry, as Istio's stats filter fills them for this sidecar."""
    reporter = _text(entry.get("reporter")) or "source"
    me, peer = Workload.of_identity(identity), Workload.of_peer(read_peer_metadata(_text(entry.get("peer"))))
    source, destination = (me, peer) if reporter == "source" else (peer, me)
    authority = _text(entry.get("authority"))
    if reporter == "source":
        host = outbound_service(_text(entry.get("upstream_cluster")))
    else:
        host = qualify(authority, identity.namespace)
    flags = _text(entry.get("response_flags")) or "-"
    labels = {"reporter": reporter, **source.labels("source"), **destination.labels("destination"),
              **service_labels(host, authority, destination.namespace),
              "request_protocol": "http",  # the shop speaks HTTP/1.1 (gRPC would need the content type)
              "response_code": _text(entry.get("response_code")) or "0", "grpc_response_status": "",
              "response_flags": flags,
              "connection_security_policy": UNKNOWN if reporter == "source" else "none"}
    return {name: labels[name] for name in LABELS}


@dataclass
class Histogram:
    """Counts per bucket (not cumulative: ``cumulative()`` is what Prometheus reads), sum and count."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(ENVOY_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(ENVOY_BUCKETS, value)] += 1  # the first bound >= value; last: +Inf
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[int]:
        """``le`` counts for each of ENVOY_BUCKETS, then +Inf."""
        return list(itertools.accumulate(self.buckets))


def _le(bound: float) -> str:
    return f"{bound:g}"  # as Envoy prints its bounds: 0.5, 1, 600000, 1.8e+06, 3.6e+06


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _series(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{body}}} {value:.17g}"


class IstioMetrics:
    """The istio_* series one sidecar reports, fed with its access log entries."""

    def __init__(self, identity: ProxyIdentity) -> None:
        self.identity = identity
        self.requests: dict[tuple[tuple[str, str], ...], int] = {}
        self.histograms: dict[str, dict[tuple[tuple[str, str], ...], Histogram]] = {m: {} for m in HISTOGRAMS}
        self.keys: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}  # the fields labels depend on → labels

    def observe(self, entry: Mapping[str, Any]) -> None:
        fields = tuple(entry.get(f) for f in LABEL_FIELDS)
        key = self.keys.get(fields)
        if key is None:  # a new combination: decode the peer's metadata once
            if len(self.keys) > MAX_KEYS:
                self.keys.clear()
            key = self.keys[fields] = tuple(request_labels(entry, self.identity).items())
        self.requests[key] = self.requests.get(key, 0) + 1
        for metric, source in HISTOGRAMS.items():
            self.histograms[metric].setdefault(key, Histogram()).observe(_number(entry.get(source)))

    def exposition(self) -> str:
        """The series in Prometheus' text format, as Envoy's ``/stats/prometheus`` writes its own."""
        lines = ["# TYPE istio_requests_total counter"]
        lines += [_series("istio_requests_total", key, n) for key, n in sorted(self.requests.items())]
        for metric in HISTOGRAMS:
            lines.append(f"# TYPE {metric} histogram")
            for key, hist in sorted(self.histograms[metric].items()):
                bounds = [*map(_le, ENVOY_BUCKETS), "+Inf"]
                for bound, n in zip(bounds, hist.cumulative(), strict=True):
                    lines.append(_series(f"{metric}_bucket", (*key, ("le", bound)), n))
                lines.append(_series(f"{metric}_sum", key, hist.sum))
                lines.append(_series(f"{metric}_count", key, hist.count))
        return "\n".join(lines) + "\n"


class AccessLogTail:
    """Follows a sidecar's JSON access log as ``tail -F`` does: the complete lines written since the last read (a
    partial last line waits for its end). The file is read through an open descriptor: when the path names a new
    file (the old one renamed away and Envoy's log reopened), the old file is read to its end first; a file
    truncated in place is read again from its beginning."""

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, b""
        self.file: BinaryIO | None = None

    def _parse(self, data: bytes) -> list[dict[str, Any]]:
        *lines, self.partial = (self.partial + data).split(b"\n")
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # not one of the sidecar's JSON lines
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def read(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self.file is not None:
            if os.fstat(self.file.fileno()).st_size < self.file.tell():
                self.file.seek(0)  # truncated in place
                self.partial = b""
            entries += self._parse(self.file.read())
            if current is not None and current != os.fstat(self.file.fileno()).st_ino:
                self.file.close()  # replaced: the old file is read to its end, now the new one
                self.file, self.partial = None, b""
        if self.file is None and current is not None:
            self.file = open(self.path, "rb")  # noqa: SIM115 - held open between reads
            entries += self._parse(self.file.read())
        return entries

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
