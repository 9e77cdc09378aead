"""``lab.shop``: the demo shop on the lab's Kubernetes: deploy it, remove it, wait for it, turn its knobs.

Everything goes through ``kubectl`` and the Kubernetes API (a pod's knobs through ``kubectl
port-forward``), so it is the same on both backends.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from ..core.checkout import Checkout
from ..core.errors import LabError
from ..core.view import ProductView
from ..kubeclient import is_ready

NAMESPACE = "shop"


class ShopView(ProductView):
    namespace = NAMESPACE

    @property
    def manifests(self) -> str:
        """The folder ``kubectl apply -k`` takes: ``manifests/apps``."""
        return str(Checkout.find().root / "manifests" / "apps")

    @property
    def services(self) -> list[str]:
        """The shop's services (``apps/*/Dockerfile``)."""
        return Checkout.find().apps()

    def ready_pods(self) -> tuple[int, int]:
        """(ready pods, pods) of the shop, terminating pods left out."""
        pods = self.lab.kubernetes.core().list_namespaced_pod(self.namespace).items
        pods = [p for p in pods if p.metadata.deletion_timestamp is None]
        return sum(is_ready(p) for p in pods), len(pods)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until every Deployment of the shop has seen its latest spec and has all its replicas ready and
        updated (what ``kubectl rollout status`` waits for); returns seconds."""
        started = time.monotonic()
        apps = self.lab.kubernetes.apps()
        while True:
            deployments = apps.list_namespaced_deployment(self.namespace).items
            if deployments and all((d.status.observed_generation or 0) >= d.metadata.generation
                                   and (d.status.ready_replicas or 0) == d.spec.replicas
                                   == (d.status.updated_replicas or 0) == (d.status.replicas or 0)
                                   for d in deployments):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                late = [d.metadata.name for d in deployments if (d.status.ready_replicas or 0) != d.spec.replicas]
                raise LabError(f"the shop was not ready after {timeout:.0f} s (not ready: "
                               f"{', '.join(late) or 'none'}); try `kubectl get pods -n {self.namespace}` and "
                               "`kubectl describe`")
            time.sleep(0.2)

    def deploy(self) -> None:
        """``kubectl apply -k manifests/apps``, then wait until every shop pod is Ready (idempotent)."""
        self.lab.kubectl("apply", "-k", self.manifests, check=True)
        self.wait_ready()

    def deploy_behind_haproxy(self, timeout: float = 30.0) -> None:
        """Chapter 1's step: the shop deployed, and HAProxy's health checks seeing every gateway server UP."""
        self.deploy()
        self.wait_behind_haproxy(timeout)

    def wait_behind_haproxy(self, timeout: float = 30.0) -> None:
        """Wait until HAProxy's health checks see every gateway server UP (its edge URL then reaches the shop)."""
        deadline = time.monotonic() + timeout
        while True:
            servers = self.lab.haproxy.servers()
            if len(servers) and servers["status"].eq("UP").all():
                return
            if time.monotonic() > deadline:
                raise LabError(f"HAProxy does not see the shop's gateway UP after {timeout:.0f} s:\n{servers}")
            time.sleep(0.2)

    def remove(self) -> None:
        """Delete the shop's namespace and wait until it is gone (idempotent)."""
        self.lab.kubectl("delete", "namespace", self.namespace, "--ignore-not-found", "--wait=true",
                         "--timeout=60s", check=True)

    def knob(self, pod: str, path: str, method: str = "POST") -> dict[str, Any]:
        """One of the shop's admin knobs on one pod (``/admin/slow?ms=300``, ``/admin/reset``, ``GET /admin``),
        through ``kubectl port-forward pod/NAME``; the pod's answer."""
        with self.lab.kubernetes.port_forward(f"pod/{pod}", 8080, self.namespace) as url:
            request = urllib.request.Request(url + path, method=method)
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as r:
                return json.loads(r.read())
