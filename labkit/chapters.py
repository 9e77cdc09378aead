"""The workshop's chapters, in the talk's order, and the steps that prepare each.

A step is a function of the Lab; steps are idempotent, so ``lab.chapter(n)`` can run on a fresh lab or
one already further along. A chapter starts where the ones before it left the lab, so ``lab.chapter(n)``
runs the steps of chapters 0..n in order. The products a chapter teaches come from ``labkit.products``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .products import PRODUCTS, Product

if TYPE_CHECKING:
    from .lab import Lab

Step = Callable[["Lab"], None]


def haproxy_in_front(lab: Lab) -> None:
    """Chapter 1: the kubeconfig goes through HAProxy, and the shop runs behind it as its manifests say."""
    lab.haproxy.use_for_the_api()
    lab.repaired += lab.shop.deploy()
    lab.haproxy.wait_up("shop-gateway")
    lab.haproxy.wait_up("kube-apiservers")


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    title: str
    slide: str  # the talk's section this chapter follows
    steps: tuple[Step, ...] = field(default=())

    @property
    def notebook(self) -> str:
        return f"{self.number:02d}-{self.slug}.ipynb"

    @property
    def products(self) -> list[Product]:
        return [p for p in PRODUCTS if p.chapter == self.number]

    def prepare(self, lab: Lab) -> None:
        for step in self.steps:
            step(lab)


CHAPTERS: dict[int, Chapter] = {c.number: c for c in (
    Chapter(0, "welcome", "The lab itself", "Structure"),
    Chapter(1, "haproxy", "L4/L7 load balancing", "HA PROXY · HAPROXY on K8S", (haproxy_in_front,)),
    Chapter(2, "kubernetes", "Orchestration", "Kubernetes (RKE2)"),
    Chapter(3, "gitlab-ci", "Git + CI/CD", "Continuous Integration / Deployment · Gitlab CI/CD"),
    Chapter(4, "nexus", "Dependency cache", "Nexus"),
    Chapter(5, "docker-harbor", "Images + registry", "Dockerizing · Harbor"),
    Chapter(6, "argocd", "GitOps", "Argo CD"),
    Chapter(7, "prometheus-grafana", "Metrics", "메트릭 파이프라인 · Prometheus · Grafana"),
    Chapter(8, "efk-logging", "Logs", "로그 파이프라인 · Elasticsearch · Fluentbit · Kibana"),
    Chapter(9, "istio-jaeger-kiali", "Mesh + tracing", "트레이싱 · Istio · Jaeger · Kiali"),
    Chapter(10, "end-to-end", "The whole platform", "MSA Full Stack Demo"),
)}


def chapter(number: int) -> Chapter:
    try:
        return CHAPTERS[number]
    except KeyError:
        raise ValueError(f"no chapter {number}: chapters are {min(CHAPTERS)}..{max(CHAPTERS)}") from None
