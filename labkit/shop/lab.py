"""The demo shop on the lab's Kubernetes: deploy it, remove it, wait for it (the chapters' steps use these).

Everything goes through ``kubectl`` and the Kubernetes API, so it is the same on both backends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core.checkout import Checkout
from ..core.errors import LabError
from ..kubeclient import is_ready
from .images import SHOP_SERVICES

if TYPE_CHECKING:
    from ..lab import Lab

NAMESPACE = "shop"
SERVICES = SHOP_SERVICES  # the services labkit up builds


def manifests() -> str:
    """The folder ``kubectl apply -k`` takes: ``manifests/apps``."""
    return str(Checkout.find().root / "manifests" / "apps")


def ready_pods(lab: Lab, namespace: str = NAMESPACE) -> tuple[int, int]:
    """(ready pods, pods) in ``namespace``, terminating pods left out."""
    pods = lab.core().list_namespaced_pod(namespace).items
    pods = [p for p in pods if p.metadata.deletion_timestamp is None]
    ready = sum(is_ready(p) for p in pods)
    return ready, len(pods)


def wait_ready(lab: Lab, timeout: float = 60.0, namespace: str = NAMESPACE) -> float:
    """Wait until every Deployment of ``namespace`` has seen its latest spec and has all its replicas ready and
    updated (what ``kubectl rollout status`` waits for); returns seconds."""
    started = time.monotonic()
    apps = lab.apps()
    while True:
        deployments = apps.list_namespaced_deployment(namespace).items
        if deployments and all((d.status.observed_generation or 0) >= d.metadata.generation
                               and (d.status.ready_replicas or 0) == d.spec.replicas
                               == (d.status.updated_replicas or 0) == (d.status.replicas or 0) for d in deployments):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            late = [d.metadata.name for d in deployments if (d.status.ready_replicas or 0) != d.spec.replicas]
            raise LabError(f"the shop was not ready after {timeout:.0f} s (not ready: {', '.join(late) or 'none'}); "
                           f"try `kubectl get pods -n {namespace}` and `kubectl describe`")
        time.sleep(0.2)


def deploy(lab: Lab) -> None:
    """``kubectl apply -k manifests/apps``, then wait until every shop pod is Ready (idempotent)."""
    lab.kubectl("apply", "-k", manifests(), check=True)
    wait_ready(lab)


def deploy_behind_haproxy(lab: Lab, timeout: float = 30.0) -> None:
    """Chapter 1's step: the shop deployed, and HAProxy's health checks seeing every gateway server UP."""
    deploy(lab)
    deadline = time.monotonic() + timeout
    while True:
        servers = lab.haproxy.servers()
        if len(servers) and servers["status"].eq("UP").all():
            return
        if time.monotonic() > deadline:
            raise LabError(f"HAProxy does not see the shop's gateway UP after {timeout:.0f} s:\n{servers}")
        time.sleep(0.2)


def remove(lab: Lab) -> None:
    """Delete the shop's namespace and wait until it is gone (idempotent)."""
    lab.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=60s", check=True)
