"""The one list of the lab's products. Everything that enumerates products reads it:

* the sim daemon starts each product's ``component`` in this order (``backends/sim``);
* the kind backend renders and runs each product's ``kind`` part in this order (``backends/kind``),
  and ``manifests/versions.yaml`` has one module per product, by the same name;
* ``lab.status()``, ``labkit status`` and ``endpoints.json`` name products by ``name``, and
  ``lab.<name>`` is the product's notebook ``view``;
* the chapters and the welcome notebook list the products a chapter teaches.

``tests/test_products.py`` fails when any of them disagrees with this list. A product whose chapter is
not built yet has no component, kind part or view: it is *planned*.
"""

from __future__ import annotations

from dataclasses import dataclass

from .argocd.component import ArgoCD
from .argocd.kind import ArgoCDKind
from .argocd.lab import ArgoCDView
from .backends.kind.parts import KindPart
from .core.component import Component
from .core.view import ProductView
from .docker.component import DockerEngine
from .docker.kind import DockerKind
from .docker.lab import DockerView
from .endpoints import (
    ArgoCDEndpoint,
    DockerEndpoint,
    Endpoint,
    GitLabEndpoint,
    HAProxyEndpoint,
    JupyterEndpoint,
    KubernetesEndpoint,
    LoggingEndpoint,
    MeshEndpoint,
    NexusEndpoint,
    PrometheusEndpoint,
    RegistryEndpoint,
    ShopEndpoint,
)
from .gitlab.component import GitLab
from .gitlab.kind import GitLabKind
from .gitlab.lab import GitLabView
from .haproxy.component import HAProxy
from .haproxy.kind import HAProxyKind
from .haproxy.lab import HAProxyView
from .jupyter.component import JupyterLab
from .kube.component import KubeApiServer
from .kube.kind import KubernetesKind
from .kube.lab import KubernetesView
from .logging.component import Logging
from .logging.kind import LoggingKind
from .logging.lab import LoggingView
from .mesh.component import Mesh
from .mesh.kind import MeshKind
from .mesh.lab import MeshView
from .nexus.component import Nexus
from .nexus.kind import NexusKind
from .nexus.lab import NexusView
from .prometheus.component import Prometheus
from .prometheus.kind import PrometheusKind
from .prometheus.lab import PrometheusView
from .registry.component import Registry
from .registry.kind import RegistryKind
from .registry.lab import RegistryView
from .shop.component import ShopImages
from .shop.kind import ShopKind
from .shop.lab import ShopView


@dataclass(frozen=True)
class Product:
    name: str  # the one name: lab.status(), endpoints.json, versions.yaml modules, lab.<name>
    title: str
    chapter: int  # the chapter that teaches it
    role: str
    sim: str  # what the sim backend runs, for people
    kind: str  # what the kind backend runs, for people
    component: type[Component] | None = None  # the sim side
    kind_part: KindPart | None = None  # the kind side
    view: type[ProductView] | None = None  # lab.<name>
    endpoint: type[Endpoint] = Endpoint
    setting: str = ""  # started only when settings.json turns this on (``labkit up --jupyter``)

    @property
    def planned(self) -> bool:
        """Not built yet: its chapter's issue adds it."""
        return self.component is None


PRODUCTS: tuple[Product, ...] = (
    Product("registry", "Harbor (container registry)", 5,
            "private image registry: projects, robot accounts, audit log; the images every node pulls",
            "OCI distribution + Harbor /api/v2.0 emulator (token auth)",
            "Harbor (helm chart goharbor/harbor, in the cluster)",
            Registry, RegistryKind(), RegistryView, RegistryEndpoint),
    Product("docker", "Docker Engine", 5, "builds images from Dockerfiles, runs containers (the `docker` SDK)",
            "Docker Engine API on a unix socket, over labkit's image builder", "the laptop's Docker Engine",
            DockerEngine, DockerKind(), DockerView, DockerEndpoint),
    Product("nexus", "Nexus", 4, "dependency cache (proxy repositories for PyPI and Maven)",
            "PyPI/Maven proxy emulator with Nexus REST API", "Sonatype Nexus 3 (compose)",
            Nexus, NexusKind(), NexusView, NexusEndpoint),
    Product("shop", "Demo shop", 1, "the microservices the platform runs: gateway → catalog, orders",
            "images built by labkit's Dockerfile builder", "docker build + push",
            ShopImages, ShopKind(), ShopView, ShopEndpoint),
    Product("kubernetes", "Kubernetes (RKE2 in the talk)", 2, "container orchestration",
            "API server emulator (3 listeners), controllers, process kubelets",
            "kind: 3 control-plane + 2 worker nodes, metrics-server (helm)",
            KubeApiServer, KubernetesKind(), KubernetesView, KubernetesEndpoint),
    Product("haproxy", "HAProxy", 1, "L4/L7 load balancer in front of the shop and the API servers",
            "the real haproxy binary", "haproxy container beside the kind cluster (compose)",
            HAProxy, HAProxyKind(), HAProxyView, HAProxyEndpoint),
    Product("gitlab", "GitLab + Runner", 3, "git repositories and CI/CD pipelines",
            "git smart HTTP + GitLab v4 API emulator, local runner", "GitLab CE + gitlab-runner (compose)",
            GitLab, GitLabKind(), GitLabView, GitLabEndpoint),
    Product("argocd", "Argo CD", 6, "GitOps continuous deployment",
            "Application controller and API server emulator over the Kubernetes API",
            "Argo CD (helm chart argo/argo-cd)",
            ArgoCD, ArgoCDKind(), ArgoCDView, ArgoCDEndpoint),
    Product("prometheus", "Prometheus + Grafana", 7, "metrics collection, PromQL and dashboards",
            "Prometheus API emulator; Grafana JSON rendered by labkit", "kube-prometheus-stack (helm)",
            Prometheus, PrometheusKind(), PrometheusView, PrometheusEndpoint),
    Product("logging", "Elasticsearch + Fluent Bit + Kibana", 8, "log shipping, search and views",
            "Elasticsearch API emulator, Fluent Bit collectors per node; Kibana-style views by labkit",
            "Elasticsearch + Kibana (helm charts elastic/*), Fluent Bit (helm chart fluent/fluent-bit)",
            Logging, LoggingKind(), LoggingView, LoggingEndpoint),
    Product("mesh", "Istio + Jaeger + Kiali", 9, "service mesh, tracing, service graph",
            "real Envoy sidecars, labkit's istiod, OTLP + Jaeger query emulator; graph by labkit",
            "istio + jaeger + kiali (helm)",
            Mesh, MeshKind(), MeshView, MeshEndpoint),
    Product("jupyterlab", "JupyterLab", 0, "the workshop notebooks", "jupyter lab on loopback",
            "jupyter lab on loopback", JupyterLab, endpoint=JupyterEndpoint, setting="jupyter"),
)
BY_NAME = {p.name: p for p in PRODUCTS}


def product(name: str) -> Product:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no product {name!r}: the products are {', '.join(BY_NAME)}") from None


def endpoint_types() -> dict[str, type[Endpoint]]:
    """Product name → its endpoint dataclass (to read ``endpoints.json`` back)."""
    return {p.name: p.endpoint for p in PRODUCTS}
