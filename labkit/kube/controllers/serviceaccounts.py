"""kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers: every active namespace
keeps a ``default`` ServiceAccount and a ``kube-root-ca.crt`` ConfigMap holding the cluster CA."""

from __future__ import annotations

from collections.abc import Iterable

from ..apiserver.podadmission import ROOT_CA, ensure_default_service_account
from ..apiserver.store import Event
from .base import MANAGER, Cluster, Controller, Key

DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class _PerNamespace(Controller):
    """A controller keyed by namespace: an event of a watched object concerns its namespace."""

    watches = ("/namespaces",)

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key == "/namespaces":
            return [("", ev.obj["metadata"]["name"])]
        return [("", ev.obj["metadata"].get("namespace", ""))]

    def active(self, namespace: str) -> bool:
        ns = self.store.get("/namespaces", "", namespace)
        return ns is not None and not ns["metadata"].get("deletionTimestamp")


class ServiceAccountsController(_PerNamespace):
    """Creates the ``default`` ServiceAccount in every namespace, again if it is deleted."""

    name = "serviceaccount-controller"
    watches = ("/namespaces", "/serviceaccounts")

    def reconcile(self, key: Key) -> None:
        if self.active(key[1]) and self.store.get("/serviceaccounts", key[1], "default") is None:
            ensure_default_service_account(self.objects, key[1])


class RootCACertPublisher(_PerNamespace):
    """Publishes the cluster CA as the ``kube-root-ca.crt`` ConfigMap in every namespace, and puts it back."""

    name = "root-ca-cert-publisher"
    watches = ("/namespaces", "/configmaps")
    ca_pem = ""  # the lab CA that signs the API server's certificate, from configure()

    def configure(self, cluster: Cluster) -> None:
        self.ca_pem = cluster.ca.pem.decode()  # kube-root-ca.crt: the CA of the API server's certificate

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key == "/configmaps" and ev.obj["metadata"]["name"] != ROOT_CA:
            return []
        return super().keys_for(ev)

    def reconcile(self, key: Key) -> None:
        ns = key[1]
        if not self.ca_pem or not self.active(ns):
            return
        rt = self.rt("", "v1", "configmaps")
        data = {"ca.crt": self.ca_pem}
        annotations = {"kubernetes.io/description": DESCRIPTION}
        current = self.store.get(rt.key, ns, ROOT_CA)
        if current is None:
            self.objects.create(rt, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": ROOT_CA, "namespace": ns, "annotations": annotations},
                                         "data": data}, MANAGER)
        elif current.get("data") != data or (current["metadata"].get("annotations") or {}).get(
                "kubernetes.io/description") != DESCRIPTION:
            meta = {**current["metadata"],
                    "annotations": {**(current["metadata"].get("annotations") or {}), **annotations}}
            body = {k: v for k, v in current.items() if k != "binaryData"}
            self.objects.update(rt, ns, ROOT_CA, {**body, "metadata": meta, "data": data}, MANAGER)

