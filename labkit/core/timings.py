"""The lab's timings (``manifests/versions.yaml`` ``timings``): where it is faster than a stock cluster, per
backend. The sim's node lifecycle, kubelets and defaults run by them; notebooks wait by them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .checkout import Checkout


@dataclass(frozen=True)
class Timings:
    eviction_seconds: float  # a lost node's pods are evicted this long after it is NotReady
    not_ready_seconds: float  # a node without a heartbeat for this long is NotReady
    heartbeat_seconds: float  # a kubelet renews its Lease this often
    hpa_sync_seconds: float  # the HorizontalPodAutoscaler controller runs this often
    metrics_window_seconds: float  # a pod's CPU in metrics.k8s.io (kubectl top, the HPA) is its rate over this
    pipeline_seconds: float = 240.0  # how long a notebook waits for the shop's whole pipeline (lab.gitlab.watch)

    @property
    def node_lost_seconds(self) -> float:
        """From a node's stop until its pods are evicted (their replacements then start elsewhere)."""
        return self.not_ready_seconds + self.eviction_seconds


@cache
def timings(backend: str) -> Timings:
    t = Checkout.find().versions["timings"]
    return Timings(float(t["eviction_seconds"]), float(t["not_ready_seconds"][backend]),
                   float(t["heartbeat_seconds"][backend]), float(t["hpa_sync_seconds"][backend]),
                   float(t["metrics_window_seconds"][backend]),
                   float(t.get("pipeline_seconds", {}).get(backend, 240.0)))
