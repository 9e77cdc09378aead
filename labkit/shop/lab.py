"""``lab.shop``: the demo shop on the lab's Kubernetes: deploy it, remove it, wait for it, turn its knobs.

Everything goes through ``kubectl`` and the Kubernetes API (a pod's knobs through ``kubectl
port-forward``), so it is the same on both backends.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..core.checkout import Checkout
from ..core.errors import LabError
from ..core.view import ProductView
from ..kubeclient import is_ready

NAMESPACE = "shop"


def _rolled_out(d: Any) -> bool:
    """A Deployment (the client's object) that has seen its latest spec and has every replica updated and ready."""
    s = d.status
    return s is not None and (s.observed_generation or 0) >= d.metadata.generation and (
        s.ready_replicas or 0) == d.spec.replicas == (s.updated_replicas or 0) == (s.replicas or 0)


def _drifted(live: dict[str, Any], manifest: dict[str, Any]) -> bool:
    """Whether a live Deployment's replicas, or its containers' images and env, differ from its manifest."""
    def essentials(obj: dict[str, Any]) -> tuple[Any, ...]:
        containers = obj["spec"]["template"]["spec"]["containers"]
        return (obj["spec"].get("replicas", 1),
                [(c["name"], c["image"], sorted((e["name"], e.get("value")) for e in c.get("env") or []))
                 for c in containers])  # valueFrom as its name only: the API server adds defaults to it
    return essentials(live) != essentials(manifest)


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

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every Deployment of the shop has seen its latest spec and has all its replicas ready and
        updated (what ``kubectl rollout status`` waits for)."""
        started = time.monotonic()
        apps = self.lab.kubernetes.apps()
        while True:
            deployments = apps.list_namespaced_deployment(self.namespace).items
            if deployments and all(_rolled_out(d) for d in deployments):
                return
            if time.monotonic() - started > timeout:
                late = [d.metadata.name for d in deployments if not _rolled_out(d)]
                raise LabError(f"the shop was not ready after {timeout:.0f} s (not ready: "
                               f"{', '.join(late) or 'none'}); try `kubectl get pods -n {self.namespace}` and "
                               "`kubectl describe`")
            time.sleep(0.2)

    def deploy(self) -> list[str]:
        """``kubectl apply -k manifests/apps``, then every shop pod Ready and as the manifests say (idempotent, and
        repairing what a lesson left): a Deployment whose pod template or replicas drifted from its manifest (an
        env var ``kubectl set env`` added, another image, a scale) is replaced by it, which ``apply`` alone would
        not do; every pod's knobs are reset. Returns what it repaired."""
        import yaml

        self.lab.kubectl("apply", "-k", self.manifests, check=True)
        done = []
        client = self.lab.kubernetes.api_client()
        apps = self.lab.kubernetes.apps()
        for path in sorted(Path(self.manifests).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "Deployment":
                    continue
                live = client.sanitize_for_serialization(apps.read_namespaced_deployment(
                    doc["metadata"]["name"], doc["metadata"].get("namespace", self.namespace)))
                if _drifted(live, doc):
                    self.lab.kubectl("replace", "-f", "-", input=yaml.safe_dump(doc), check=True)
                    done.append(f"deployment {doc['metadata']['name']} back to its manifest")
        self.wait_ready()
        return done + self.reset_knobs()

    def reset_knobs(self) -> list[str]:
        """``POST /admin/reset`` on every running shop pod whose knobs are not at rest (slowed, failing, not
        ready); returns the pods it reset."""
        from concurrent.futures import ThreadPoolExecutor

        pods = [p.metadata.name for p in self.lab.kubernetes.core().list_namespaced_pod(self.namespace).items
                if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]

        def reset(pod: str) -> str:
            state = self.knob(pod, "/admin", "GET")
            if state.get("slow_ms") or state.get("fail_rate") or state.get("ready") is False:
                self.knob(pod, "/admin/reset")
                return f"knobs of {pod} reset"
            return ""

        with ThreadPoolExecutor(max_workers=8) as pool:
            return [r for r in pool.map(reset, pods) if r]

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
