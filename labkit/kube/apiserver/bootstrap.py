"""What a cluster has from its start: the ``default/kubernetes`` Service and its endpoints, and the default
StorageClass.

As the real endpoint reconciler does, the Service gets the first address of
the service CIDR and its Endpoints/EndpointSlice list the API servers. As k3s
and RKE2 ship it, ``local-path`` (rancher.io/local-path; kind ships the same
provisioner as ``standard``) is the default StorageClass; it is created on the
cluster's first start only, so an admin who deletes it keeps it deleted.
"""

from __future__ import annotations

import copy
from typing import Any

from .objects import Objects, WriteOptions

Obj = dict[str, Any]
SERVICE_IP = "10.43.0.1"  # the first address of the service CIDR (10.43.0.0/16, as RKE2)
LABELS = {"component": "apiserver", "provider": "kubernetes"}


def _put(objects: Objects, plural: str, group: str, version: str, body: Obj) -> None:
    """Create ``body`` in namespace default, or update it when what it holds differs."""
    rt = objects.registry.find(group, version, plural)
    assert rt is not None
    name = body["metadata"]["name"]
    current = objects.store.get(rt.key, "default", name)
    if current is None:
        objects.create(rt, "default", body, WriteOptions())
        return
    keep = ("metadata", "status")
    if any(current.get(k) != v for k, v in body.items() if k not in keep):
        merged = {**current, **{k: v for k, v in body.items() if k != "metadata"}}
        objects.update(rt, "default", name, merged, WriteOptions())


def ensure_kubernetes_service(objects: Objects, servers: list[tuple[str, int]]) -> None:
    """The ``kubernetes`` Service (443 -> the API servers) with Endpoints and an EndpointSlice."""
    port = servers[0][1]
    meta = {"name": "kubernetes", "namespace": "default", "labels": LABELS}
    if objects.store.get("/services", "default", "kubernetes") is None:
        objects.create(objects.registry.find("", "v1", "services"), "default", {  # type: ignore[arg-type]
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ClusterIP", "clusterIP": SERVICE_IP, "clusterIPs": [SERVICE_IP],
                     "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}},
            WriteOptions())
    by_port: dict[int, list[str]] = {}
    for host, p in servers:
        by_port.setdefault(p, []).append(host)
    _put(objects, "endpoints", "", "v1", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": h} for h in hosts],
                     "ports": [{"name": "https", "port": p, "protocol": "TCP"}]}
                    for p, hosts in sorted(by_port.items())]})
    _put(objects, "endpointslices", "discovery.k8s.io", "v1", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "endpoints": [{"addresses": [h], "conditions": {"ready": True}} for h in by_port[port]],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})


LOCAL_PATH_CLASS: Obj = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}


def ensure_default_storage_class(objects: Objects, first_start: bool) -> None:
    """Create the ``local-path`` default StorageClass on the cluster's first start."""
    rt = objects.registry.find("storage.k8s.io", "v1", "storageclasses")
    assert rt is not None
    if first_start and objects.store.get(rt.key, "", "local-path") is None:
        objects.create(rt, "", copy.deepcopy(LOCAL_PATH_CLASS), WriteOptions())
