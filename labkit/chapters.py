"""The workshop's chapters, in the talk's order, and the steps that prepare each.

A step is a function of the Lab; steps are idempotent, so ``lab.chapter(n)`` can run on a fresh lab or
one already further along. A chapter starts where the ones before it left the lab, so ``lab.chapter(n)``
runs the steps of chapters 0..n in order. The products a chapter teaches come from ``labkit.products``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .products import PRODUCTS, Product

if TYPE_CHECKING:
    from .lab import Lab

Step = Callable[["Lab"], None]


def haproxy_in_front(lab: Lab) -> None:
    """Chapter 1: the kubeconfig goes through HAProxy, and the shop runs behind it as its manifests say."""
    lab.haproxy.use_for_the_api()
    lab.repaired += lab.shop.deploy()
    for backend in ("shop-gateway", "shop-catalog", "kube-apiservers"):
        lab.haproxy.wait_up(backend)


def cordon_an_agent(lab: Lab) -> None:
    lab.kubectl("cordon", "agent-2", check=True)


def wrong_health_check(lab: Lab) -> None:
    lab.haproxy.configure(catalog_check="/health")


def orphaned_service(lab: Lab) -> None:
    lab.kubectl("patch", "service", "orders", "-n", "shop", "-p", '{"spec":{"selector":{"app":"order"}}}', check=True)


def stage_typo(lab: Lab) -> None:
    """Chapter 3: a pushed commit whose .gitlab-ci.yml puts the test job in a stage that is not declared."""
    def edit(work: Path) -> None:
        ci = work / ".gitlab-ci.yml"
        ci.write_text(ci.read_text().replace("  stage: test\n", "  stage: tests\n", 1))

    lab.gitlab.commit(edit, "ci: the unit tests in their own stage")


def group_without_proxy(lab: Lab) -> None:
    """Chapter 4: pypi-group loses its proxy member: pip through the group finds only what was uploaded."""
    rest = lab.nexus.rest()
    try:
        group = rest.get("/repositories/pypi/group/pypi-group")
        group["group"]["memberNames"] = [m for m in group["group"]["memberNames"] if m != "pypi-proxy"]
        rest.request("PUT", "/repositories/pypi/group/pypi-group",
                     json={k: v for k, v in group.items() if k not in ("url", "format", "type")})
    finally:
        rest.close()


def harbor_ready(lab: Lab) -> None:
    """Chapter 5: Harbor as the lab made it (project shop public, the CI robot with push and pull, the project
    an earlier run of the chapter created deleted)."""
    lab.repaired += lab.registry.restore()


def pull_only_ci_robot(lab: Lab) -> None:
    """Chapter 5: the CI robot loses its push permission: the pipeline's build can no longer push."""
    lab.registry.reduce_ci_robot(("pull",))


def argocd_ready(lab: Lab) -> None:
    """Chapter 6: no ``shop`` Application yet (the notebook creates it); ``shop/manifests`` is as seeded (every
    chapter's GitLab repair restores it)."""
    lab.repaired += lab.argocd.restore()


def bad_manifest(lab: Lab) -> None:
    """Chapter 6: a commit to shop/manifests whose kustomization names a file the repository does not have."""
    lab.argocd.break_manifests()


def prometheus_ready(lab: Lab) -> None:
    """Chapter 7: the shop scraped on the ports its manifests name, every running shop pod a target that is up."""
    lab.repaired += lab.prometheus.restore()
    lab.prometheus.wait_shop_scraped()


def wrong_scrape_port(lab: Lab) -> None:
    """Chapter 7: catalog's pod template names a ``prometheus.io/port`` its pods do not serve."""
    lab.prometheus.break_scrape_port()


def logging_ready(lab: Lab) -> None:
    """Chapter 8: every shop Deployment's logs shipped (the fault undone) and the shop's lines searchable."""
    lab.repaired += lab.logging.restore()
    lab.logging.wait_searchable("kubernetes.namespace_name: shop")


def namespace_not_shipped(lab: Lab) -> None:
    """Chapter 8: the shop's pods annotated ``fluentbit.io/exclude: "true"``; only Fluent Bit's metrics tell."""
    lab.logging.break_shipping()


def mesh_ready(lab: Lab) -> None:
    """Chapter 9: no routing rules or canary left from an earlier run, the shop's knobs reset."""
    lab.repaired += lab.mesh.restore() + lab.shop.reset_knobs()


def subset_without_rule(lab: Lab) -> None:
    """Chapter 9: the catalog's VirtualService routes to a subset no DestinationRule defines (503 NC)."""
    lab.mesh.break_routing()


def platform_ready(lab: Lab) -> None:
    """Chapter 10: the shop meshed and the head of ``shop/shop`` deployed once through the whole chain (pipeline,
    Harbor, ``shop/manifests``, Argo CD's ``shop`` Application), the deploy job's token able to push."""
    lab.repaired += lab.release.prepare(progress=None)


def read_only_deploy_token(lab: Lab) -> None:
    """Chapter 10: the deploy job's ``MANIFESTS_TOKEN`` replaced by a token that cannot push."""
    lab.release.break_deploy_token()


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    title: str
    slide: str  # the talk's section this chapter follows
    minutes: int  # how long it takes an attendee, about
    steps: tuple[Step, ...] = field(default=())
    fault: Step | None = None  # the chapter's "Diagnose" fault: injected by ``lab.inject_fault()``, not explained
    uses: tuple[int, ...] = ()  # earlier chapters whose products this one runs too (chapter 10: all of them)

    @property
    def notebook(self) -> str:
        return f"{self.number:02d}-{self.slug}.ipynb"

    @property
    def products(self) -> list[Product]:
        """The products this chapter teaches."""
        return [p for p in PRODUCTS if p.chapter == self.number]

    @property
    def needs(self) -> list[Product]:
        """The products this chapter runs: its own and those of the chapters it ``uses``."""
        return [p for p in PRODUCTS if p.chapter == self.number or p.chapter in self.uses]

    def prepare(self, lab: Lab) -> None:
        for step in self.steps:
            step(lab)


CHAPTERS: dict[int, Chapter] = {c.number: c for c in (
    Chapter(0, "welcome", "The lab itself", "Structure", 15, fault=cordon_an_agent),
    Chapter(1, "haproxy", "L4/L7 load balancing", "HA PROXY · HAPROXY on K8S", 40, (haproxy_in_front,),
            wrong_health_check),
    Chapter(2, "kubernetes", "Orchestration", "Kubernetes (RKE2)", 60, fault=orphaned_service),
    Chapter(3, "gitlab-ci", "Git + CI/CD", "Continuous Integration / Deployment · Gitlab CI/CD", 50,
            fault=stage_typo),
    Chapter(4, "nexus", "Dependency cache", "Nexus", 30, fault=group_without_proxy),  # lab.nexus.repair() restores
    Chapter(5, "docker-harbor", "Images + registry", "Dockerizing · Harbor", 40, (harbor_ready,), pull_only_ci_robot),
    Chapter(6, "argocd", "GitOps", "Argo CD", 45, (argocd_ready,), bad_manifest),
    Chapter(7, "prometheus-grafana", "Metrics", "메트릭 파이프라인 · Prometheus · Grafana", 45, (prometheus_ready,),
            wrong_scrape_port),
    Chapter(8, "efk-logging", "Logs", "로그 파이프라인 · Elasticsearch · Fluentbit · Kibana", 40, (logging_ready,),
            namespace_not_shipped),
    Chapter(9, "istio-jaeger-kiali", "Mesh + tracing", "트레이싱 · Istio · Jaeger · Kiali", 50, (mesh_ready,),
            subset_without_rule),
    Chapter(10, "end-to-end", "The whole platform", "MSA Full Stack Demo", 45, (platform_ready,),
            read_only_deploy_token, uses=tuple(range(3, 10))),
)}


def chapter(number: int) -> Chapter:
    try:
        return CHAPTERS[number]
    except KeyError:
        raise ValueError(f"no chapter {number}: chapters are {min(CHAPTERS)}..{max(CHAPTERS)}") from None
