"""What istiod reads, from plain objects as the Kubernetes API server returns them: Services, Pods (IP, labels,
readiness, whether a sidecar sits in them), the Endpoints of Services without a selector (a real istiod reads the
EndpointSlices kube-controller-manager mirrors from such Endpoints) and Istio's networking resources in any of their
API versions (``networking.istio.io/v1``, ``v1beta1``, ``v1alpha3`` share one schema)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..identity import SIDECAR_CONTAINER
from .naming import fqdn

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
ISTIO_KINDS = ("VirtualService", "DestinationRule", "ServiceEntry", "Gateway", "Sidecar")


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target: int | str  # a number, or a container port's name
    protocol: str = "TCP"


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service (or a ServiceEntry host): ``host`` is its FQDN."""

    name: str
    namespace: str
    host: str
    ports: tuple[ServicePort, ...]
    selector: dict[str, str] | None
    cluster_ip: str | None = None
    entry: dict[str, Any] | None = None  # the ServiceEntry spec it comes from, if any


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    ip: str
    labels: dict[str, str]
    ready: bool
    meshed: bool
    container_ports: dict[str, int]  # port name -> number ("" keys for unnamed ports are left out)
    port_numbers: tuple[int, ...]

    def resolve(self, target: int | str) -> int | None:
        """A Service's targetPort on this pod (a named port looked up in its containers)."""
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        return self.container_ports.get(str(target))


@dataclass(frozen=True)
class IstioResource:
    kind: str
    name: str
    namespace: str
    spec: dict[str, Any]
    created: str = ""


@dataclass
class Mesh:
    """Everything istiod's translation reads, already parsed."""

    services: list[Service] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    resources: list[IstioResource] = field(default_factory=list)
    # (namespace, name) -> the ready addresses of an Endpoints object and its ports by name: what a Service without
    # a selector routes to
    endpoints: dict[tuple[str, str], list[tuple[str, dict[str, int]]]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[dict[str, Any]], meshed: set[tuple[str, str]] | None = None) -> Mesh:
        """Parse API objects (Services, Pods, Istio resources; anything else is ignored). A pod is meshed when it
        has an ``istio-proxy`` container, or when ``(namespace, name)`` is in ``meshed``."""
        mesh = cls()
        for obj in objects:
            kind, api = obj.get("kind"), str(obj.get("apiVersion", ""))
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") or "default"
            if kind == "Service" and api == "v1":
                mesh.services.append(_service(obj, ns))
            elif kind == "Pod" and api == "v1":
                pod = _pod(obj, ns, meshed or set())
                if pod is not None:
                    mesh.pods.append(pod)
            elif kind == "Endpoints" and api == "v1":
                mesh.endpoints[(ns, str(meta.get("name", "")))] = _addresses(obj)
            elif kind in ISTIO_KINDS and api.split("/")[0] == ISTIO_GROUP:
                if api.split("/")[-1] not in ISTIO_VERSIONS:
                    raise ValueError(f"{kind} {ns}/{meta.get('name')}: unknown API version {api}")
                mesh.resources.append(IstioResource(kind, meta.get("name", ""), ns, obj.get("spec") or {},
                                                    str(meta.get("creationTimestamp") or "")))
        for entry in mesh.of_kind("ServiceEntry"):
            mesh.services.extend(_entry_services(entry))
        return mesh

    def of_kind(self, kind: str) -> list[IstioResource]:
        """Resources of one kind, oldest first (istiod's order when two conflict), then by namespace/name."""
        return sorted((r for r in self.resources if r.kind == kind), key=lambda r: (r.created, r.namespace, r.name))

    def service(self, host: str) -> Service | None:
        return next((s for s in self.services if s.host == host), None)

    def pod(self, namespace: str, name: str) -> Pod | None:
        return next((p for p in self.pods if p.namespace == namespace and p.name == name), None)

    def selected(self, service: Service) -> list[Pod]:
        """The pods a Kubernetes Service selects (any readiness)."""
        if not service.selector:
            return []
        return [p for p in self.pods if p.namespace == service.namespace
                and all(p.labels.get(k) == v for k, v in service.selector.items())]


def _service(obj: dict[str, Any], ns: str) -> Service:
    spec = obj.get("spec") or {}
    name = obj["metadata"]["name"]
    ports = tuple(ServicePort(str(p.get("name", "")), int(p["port"]), p.get("targetPort", p["port"]),
                              str(p.get("protocol", "TCP"))) for p in spec.get("ports") or [])
    return Service(name, ns, fqdn(name, ns), ports, spec.get("selector"), spec.get("clusterIP"))


def _addresses(obj: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """An Endpoints object's ready addresses, each with its subset's ports by name (not-ready ones left out)."""
    return [(str(a["ip"]), {str(p.get("name", "")): int(p["port"]) for p in subset.get("ports") or []})
            for subset in obj.get("subsets") or [] for a in subset.get("addresses") or [] if a.get("ip")]


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _pod(obj: dict[str, Any], ns: str, meshed: set[tuple[str, str]]) -> Pod | None:
    status, spec, meta = obj.get("status") or {}, obj.get("spec") or {}, obj["metadata"]
    ip = status.get("podIP")
    if not ip or meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    containers = spec.get("containers") or []
    named: dict[str, int] = {}
    numbers: list[int] = []
    for c in containers:
        if c.get("name") == SIDECAR_CONTAINER:
            continue
        for p in c.get("ports") or []:
            numbers.append(int(p["containerPort"]))
            if p.get("name"):
                named[p["name"]] = int(p["containerPort"])
    sidecar = any(c.get("name") == SIDECAR_CONTAINER for c in containers)
    return Pod(meta["name"], ns, ip, dict(meta.get("labels") or {}), _ready(status),
               sidecar or (ns, meta["name"]) in meshed, named, tuple(numbers))


def _entry_services(entry: IstioResource) -> list[Service]:
    """A ServiceEntry's hosts as services of the registry (istiod's ``convertServices``)."""
    spec = entry.spec
    ports = tuple(ServicePort(str(p.get("name", "")), int(p["number"]), int(p.get("targetPort") or p["number"]),
                              str(p.get("protocol", "TCP"))) for p in spec.get("ports") or [])
    addresses = spec.get("addresses") or []
    return [Service(host, entry.namespace, host, ports, None, addresses[0] if addresses else None, spec)
            for host in spec.get("hosts") or []]
