"""Every part of the platform, the chapter that teaches it and where it lives on each backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str  # the component name in lab.status() once the lab runs it
    product: str
    chapter: int
    role: str
    sim: str  # what the sim backend runs
    kind: str  # what the kind backend runs


PARTS: tuple[Part, ...] = (
    Part("haproxy", "HAProxy", 1, "L4/L7 load balancer in front of the shop and the API servers",
         "the real haproxy binary", "haproxy container beside the kind cluster"),
    Part("kube-apiserver", "Kubernetes (RKE2 in the talk)", 2, "container orchestration",
         "API server emulator (3 listeners), process kubelets", "kind cluster: 3 control-plane + 2 workers"),
    Part("gitlab", "GitLab + Runner", 3, "git repositories and CI/CD pipelines",
         "git smart HTTP + GitLab v4 API emulator, local runner", "GitLab CE + gitlab-runner (compose)"),
    Part("nexus", "Nexus", 4, "dependency cache (proxy repository)",
         "PyPI proxy emulator with Nexus REST API", "Sonatype Nexus 3 (compose)"),
    Part("harbor", "Harbor", 5, "private image registry with audit log",
         "OCI distribution + Harbor /api/v2.0 emulator", "Harbor (compose)"),
    Part("argocd", "Argo CD", 6, "GitOps continuous deployment",
         "Application controller emulator", "Argo CD (helm)"),
    Part("prometheus", "Prometheus + Grafana", 7, "metrics collection, PromQL and dashboards",
         "Prometheus API emulator; Grafana JSON rendered by labkit", "kube-prometheus-stack (helm)"),
    Part("elasticsearch", "Elasticsearch + Fluent Bit + Kibana", 8, "log shipping, search and views",
         "Elasticsearch API emulator, log shipper; Kibana-style views by labkit", "ECK / Fluent Bit (helm)"),
    Part("jaeger", "Istio + Jaeger + Kiali", 9, "service mesh, tracing, service graph",
         "mesh rules in the service proxy, OTLP + Jaeger query emulator; graph by labkit",
         "istio + jaeger + kiali (helm)"),
    Part("jupyterlab", "JupyterLab", 0, "the workshop notebooks", "jupyter lab on loopback",
         "jupyter lab on loopback"),
)
