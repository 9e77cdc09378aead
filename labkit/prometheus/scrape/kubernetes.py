"""``kubernetes_sd_configs`` against the lab's API server (from its kubeconfig): the roles pod, endpoints, service
and node, each object turned into targets with Prometheus' ``__meta_kubernetes_*`` labels."""

from __future__ import annotations

import base64
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import yaml

INVALID = re.compile(r"[^a-zA-Z0-9_]")
Targets = list[dict[str, str]]


def sanitize(name: str) -> str:
    """Prometheus' strutil.SanitizeLabelName: every character outside ``[a-zA-Z0-9_]`` becomes ``_``."""
    return INVALID.sub("_", name)


def _meta_map(prefix: str, values: dict[str, str] | None, kind: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (values or {}).items():
        out[f"{prefix}_{kind}_{sanitize(k)}"] = v
        out[f"{prefix}_{kind}present_{sanitize(k)}"] = "true"
    return out


def _object_meta(prefix: str, meta: dict[str, Any]) -> dict[str, str]:
    return {**_meta_map(prefix, meta.get("labels"), "label"),
            **_meta_map(prefix, meta.get("annotations"), "annotation")}


class KubeLister:
    """Lists objects from the API server of a kubeconfig's current context (bearer token, the cluster's CA)."""

    def __init__(self, kubeconfig: str | Path) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text()) or {}
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg.get("current-context"))
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == context["user"])
        self.server = cluster["server"].rstrip("/")
        ca = cluster.get("certificate-authority-data")
        self.ssl = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
        self.headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        self.session: aiohttp.ClientSession | None = None

    async def list(self, resource: str, namespace: str = "", group: str = "/api/v1") -> list[dict[str, Any]]:
        """The items of a core (or ``group``'s) resource, in one namespace or all."""
        if self.session is None:
            self.session = aiohttp.ClientSession(headers=self.headers, trust_env=False,
                                                 timeout=aiohttp.ClientTimeout(total=20))
        path = f"{group}/namespaces/{namespace}/{resource}" if namespace else f"{group}/{resource}"
        async with self.session.get(self.server + path, ssl=self.ssl) as resp:
            resp.raise_for_status()
            return (await resp.json()).get("items") or []

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


async def discover(lister: KubeLister, role: str, namespaces: tuple[str, ...]) -> Targets:
    """The targets of one role now (every namespace when ``namespaces`` is empty)."""
    if role == "node":
        return [t for n in await lister.list("nodes") for t in node_targets(n)]
    objects: dict[str, list[dict[str, Any]]] = {}
    kinds = {"pod": ["pods"], "service": ["services"], "endpoints": ["endpoints", "services", "pods"]}[role]
    for kind in kinds:
        objects[kind] = []
        for ns in namespaces or ("",):
            objects[kind].extend(await lister.list(kind, ns))
    if role == "pod":
        return [t for p in objects["pods"] for t in pod_targets(p)]
    if role == "service":
        return [t for s in objects["services"] for t in service_targets(s)]
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in objects["services"]}
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in objects["pods"]}
    return [t for e in objects["endpoints"] for t in endpoints_targets(e, services, pods)]


def node_targets(node: dict[str, Any]) -> Targets:
    meta, status = node["metadata"], node.get("status") or {}
    addresses = {a["type"]: a["address"] for a in reversed(status.get("addresses") or [])}
    host = next((addresses[t] for t in ("InternalIP", "ExternalIP", "LegacyHostIP", "Hostname") if t in addresses),
                "")
    if not host:
        return []
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port", 10250)
    labels = {"__address__": f"{host}:{port}", "instance": meta["name"],
              "__meta_kubernetes_node_name": meta["name"],
              "__meta_kubernetes_node_provider_id": (node.get("spec") or {}).get("providerID", ""),
              **_object_meta("__meta_kubernetes_node", meta)}
    labels.update({f"__meta_kubernetes_node_address_{t}": a for t, a in addresses.items()})
    return [labels]


def _service_labels(svc: dict[str, Any]) -> dict[str, str]:
    meta, spec = svc["metadata"], svc.get("spec") or {}
    base = {"__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_service_name": meta["name"],
            "__meta_kubernetes_service_type": spec.get("type", "ClusterIP"),
            **_object_meta("__meta_kubernetes_service", meta)}
    if spec.get("type") == "ExternalName":
        base["__meta_kubernetes_service_external_name"] = spec.get("externalName", "")
    elif spec.get("clusterIP"):
        base["__meta_kubernetes_service_cluster_ip"] = spec["clusterIP"]
    return base


def service_targets(svc: dict[str, Any]) -> Targets:
    meta, spec = svc["metadata"], svc.get("spec") or {}
    base = _service_labels(svc)
    return [{**base, "__address__": f"{meta['name']}.{meta['namespace']}.svc:{p['port']}",
             "__meta_kubernetes_service_port_name": p.get("name", ""),
             "__meta_kubernetes_service_port_number": str(p["port"]),
             "__meta_kubernetes_service_port_protocol": p.get("protocol", "TCP")}
            for p in spec.get("ports") or []]


def _pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ready = next((c.get("status", "") for c in status.get("conditions") or [] if c.get("type") == "Ready"), "unknown")
    labels = {"__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_pod_name": meta["name"],
              "__meta_kubernetes_pod_ip": status.get("podIP", ""),
              "__meta_kubernetes_pod_ready": ready.lower() if ready else "unknown",
              "__meta_kubernetes_pod_phase": status.get("phase", ""),
              "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
              "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
              "__meta_kubernetes_pod_uid": meta.get("uid", ""),
              **_object_meta("__meta_kubernetes_pod", meta)}
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner:
        labels["__meta_kubernetes_pod_controller_kind"] = owner["kind"]
        labels["__meta_kubernetes_pod_controller_name"] = owner["name"]
    return labels


def _container_labels(pod: dict[str, Any], container: dict[str, Any], init: bool) -> dict[str, str]:
    statuses = (pod.get("status") or {}).get("initContainerStatuses" if init else "containerStatuses") or []
    cid = next((s.get("containerID", "") for s in statuses if s.get("name") == container["name"]), "")
    return {"__meta_kubernetes_pod_container_name": container["name"],
            "__meta_kubernetes_pod_container_image": container.get("image", ""),
            "__meta_kubernetes_pod_container_id": cid or "",
            "__meta_kubernetes_pod_container_init": "true" if init else "false"}


def _port_labels(port: dict[str, Any]) -> dict[str, str]:
    return {"__meta_kubernetes_pod_container_port_name": port.get("name", ""),
            "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
            "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP")}


def pod_targets(pod: dict[str, Any]) -> Targets:
    """One target per declared container port (``podIP:port``), and one per container without ports
    (``podIP`` alone, for relabeling to add the port), as Prometheus' pod role; none before the pod has an IP."""
    ip = (pod.get("status") or {}).get("podIP", "")
    if not ip:
        return []
    base = _pod_labels(pod)
    spec = pod.get("spec") or {}
    out: Targets = []
    for init, containers in ((False, spec.get("containers") or []), (True, spec.get("initContainers") or [])):
        for c in containers:
            clabels = {**base, **_container_labels(pod, c, init)}
            ports = c.get("ports") or []
            if not ports:
                out.append({**clabels, "__address__": ip})
            out.extend({**clabels, **_port_labels(p), "__address__": f"{ip}:{p['containerPort']}"} for p in ports)
    return out


def endpoints_targets(ep: dict[str, Any], services: dict[tuple[str, str], dict[str, Any]],
                      pods: dict[tuple[str, str], dict[str, Any]]) -> Targets:
    meta = ep["metadata"]
    base = {"__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_endpoints_name": meta["name"],
            **_object_meta("__meta_kubernetes_endpoints", meta)}
    svc = services.get((meta["namespace"], meta["name"]))
    if svc is not None:
        base.update(_service_labels(svc))
    out: Targets = []
    for subset in ep.get("subsets") or []:
        for ready, key in (("true", "addresses"), ("false", "notReadyAddresses")):
            for addr in subset.get(key) or []:
                for port in subset.get("ports") or []:
                    labels = {**base, "__address__": f"{addr['ip']}:{port['port']}",
                              "__meta_kubernetes_endpoint_ready": ready,
                              "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                              "__meta_kubernetes_endpoint_port_protocol": port.get("protocol", "TCP")}
                    if addr.get("hostname"):
                        labels["__meta_kubernetes_endpoint_hostname"] = addr["hostname"]
                    if addr.get("nodeName"):
                        labels["__meta_kubernetes_endpoint_node_name"] = addr["nodeName"]
                    ref = addr.get("targetRef") or {}
                    if ref:
                        labels["__meta_kubernetes_endpoint_address_target_kind"] = ref.get("kind", "")
                        labels["__meta_kubernetes_endpoint_address_target_name"] = ref.get("name", "")
                    pod = pods.get((ref.get("namespace", meta["namespace"]), ref.get("name", ""))) \
                        if ref.get("kind") == "Pod" else None
                    if pod is not None:
                        labels.update(_pod_labels(pod))
                        for c in (pod.get("spec") or {}).get("containers") or []:
                            for p in c.get("ports") or []:
                                if p["containerPort"] == port["port"]:
                                    labels.update({**_container_labels(pod, c, False), **_port_labels(p)})
                    out.append(labels)
    return out
