"""Where a running lab's products listen: one dataclass per product, filled the same way by every backend.

A backend writes ``endpoints.json`` (``LabEndpoints.to_json``); ``Lab`` and the CLI read it back typed,
so a notebook never sees a backend difference: ``lab.endpoints.get(HAProxyEndpoint).runtime`` is a Unix
socket on the sim and HAProxy's published TCP port on kind, and both are spoken to the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass(frozen=True)
class Endpoint:
    """What every product has: a title and its main URL ("" when it has none)."""

    title: str
    url: str


@dataclass(frozen=True)
class KubernetesEndpoint(Endpoint):
    """``url``: the first API server; ``servers``: every API server, directly; ``kubeconfig``: admin access;
    ``node_logs``: each node's ``/var/log`` folder on this machine (node → path; the sim's, where the kubelets write
    the CRI logs the log collectors read; empty on kind, whose nodes keep theirs)."""

    servers: list[str] = field(default_factory=list)
    kubeconfig: str = ""
    node_logs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HAProxyEndpoint(Endpoint):
    """``url``: the shop through the edge frontend; ``api``: the Kubernetes API frontend (TCP, TLS passed through);
    ``stats``/``metrics``: the stats page and Prometheus exporter; ``runtime``: the Runtime API
    (``unix:///path`` or ``tcp://host:port``); ``config``: the file HAProxy runs."""

    api: str = ""
    stats: str = ""
    metrics: str = ""
    runtime: str = ""
    config: str = ""


@dataclass(frozen=True)
class RegistryEndpoint(Endpoint):
    """``url``: the OCI distribution API from this machine; ``push``: the host[:port] to tag images with for
    a push from this machine; ``pull``: the name pods use (``localhost:5001``); ``user``: the account pushes need
    (None: anonymous pushes, as the kind backend's CNCF registry)."""

    push: str = ""
    pull: str = ""
    user: str | None = None
    api: str = ""  # Harbor's REST API (``{url}/api/v2.0``); "" where the registry has none
    metrics: str = ""  # Harbor's metrics (``/metrics``; ``?comp=core|registry``); "" where the registry has none


@dataclass(frozen=True)
class DockerEndpoint(Endpoint):
    """``url``: the Docker Engine API as ``DOCKER_HOST`` names it (``unix:///…/docker.sock``), for the ``docker``
    SDK (``docker.DockerClient(base_url=url)``) and the ``docker`` CLI."""


@dataclass(frozen=True)
class NexusEndpoint(Endpoint):
    """``url``: Nexus (``/repository/<name>/…``, REST API under ``/service/rest/v1``); ``pypi``: the PyPI group's
    simple index, what ``PIP_INDEX_URL`` is set to; ``maven``: the Maven proxy repository's URL; ``user`` and
    ``password_file``: the administrator and a file (mode 0600) holding its password (Nexus' ``admin.password``)."""

    pypi: str = ""
    maven: str = ""
    user: str = "admin"
    password_file: str = ""


@dataclass(frozen=True)
class ShopEndpoint(Endpoint):
    """The demo shop's images (service → the name pods use) and their tag."""

    images: dict[str, str] = field(default_factory=dict)
    tag: str = ""


@dataclass(frozen=True)
class GitLabEndpoint(Endpoint):
    """``url``: GitLab (git smart HTTP under it: ``{url}/shop/shop.git``); ``api``: the REST API v4;
    ``user``: the administrator; ``token_file``: a file (mode 0600) holding its personal access token;
    ``projects``: the seeded projects' paths (the shop's code, its manifests)."""

    api: str = ""
    user: str = "root"
    token_file: str = ""
    projects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ArgoCDEndpoint(Endpoint):
    """``url``: Argo CD's API server (``/api/v1``, ``/api/webhook``); ``namespace``: where its Applications,
    AppProjects and repository Secrets live; ``user``: the administrator, whose first password is in the
    ``argocd-initial-admin-secret`` Secret of that namespace, as in Argo CD; ``git``: the lab's GitLab as Argo CD
    reaches it, the base of every repoURL (on kind the GitLab container's name on the kind network, not 127.0.0.1)."""

    namespace: str = "argocd"
    user: str = "admin"
    git: str = ""
    metrics: list[str] = field(default_factory=list)  # ``/metrics`` of the controller, repo server, API server


@dataclass(frozen=True)
class PrometheusEndpoint(Endpoint):
    """``url``: Prometheus (its HTTP API under ``/api/v1``); ``config``: the ``prometheus.yml`` it runs (on kind,
    the rendered one); ``grafana``: Grafana's URL ("" on the sim, where ``lab.grafana`` renders dashboards itself);
    ``grafana_user``/``grafana_password_file``: Grafana's administrator and a file (mode 0600) with its password."""

    config: str = ""
    grafana: str = ""
    grafana_user: str = "admin"
    grafana_password_file: str = ""


@dataclass(frozen=True)
class LoggingEndpoint(Endpoint):
    """``url``: Elasticsearch (``/_bulk``, ``/_search``…; HTTP Basic auth as ``user``, whose password is in the
    file ``password_file``, mode 0600, as ECK's ``elastic`` user); ``kibana``: Kibana's URL ("" on the sim, where
    ``lab.logging`` draws the Kibana-style views itself); ``fluentbit``: each node's Fluent Bit monitoring API
    (node → ``http://host:2020``); ``config``: the Fluent Bit configuration the collectors run; ``ca_file``: the CA
    of Elasticsearch's HTTPS certificate ("" on the sim's plain HTTP; on kind the chart's, whose certificate names the
    in-cluster Service, so clients check the chain, not the host name)."""

    user: str = "elastic"
    password_file: str = ""
    kibana: str = ""
    fluentbit: dict[str, str] = field(default_factory=dict)
    config: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class MeshEndpoint(Endpoint):
    """``url``: Jaeger's query service (the UI's ``/api`` and ``/api/v3``); ``otlp``: Jaeger's OTLP/HTTP receiver,
    what ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (exporters post to ``{otlp}/v1/traces``); ``istiod``: istiod's
    HTTP monitoring port (15014: ``/debug/syncz``, ``/debug/config_dump?proxyID=<pod>.<namespace>``), "" where it
    is not reachable from the laptop; ``kiali``: Kiali's URL ("" on the sim, where ``lab.mesh`` builds Kiali's graph
    from Prometheus itself)."""

    otlp: str = ""
    istiod: str = ""
    kiali: str = ""


@dataclass(frozen=True)
class JupyterEndpoint(Endpoint):
    """``url`` opens the workshop (with its token); ``api`` is the server's REST API."""

    api: str = ""


E = TypeVar("E", bound=Endpoint)


@dataclass
class LabEndpoints:
    """A running lab: its backend, the admin kubeconfig and each running product's endpoint.

    ``backend_data`` is what only the backend itself reads (the sim daemon's pid and control URL, the kind
    cluster's name and node containers); nothing above the backend line uses it.
    """

    backend: str
    kubeconfig: str
    products: dict[str, Endpoint]
    backend_data: dict[str, Any] = field(default_factory=dict)

    def get(self, kind: type[E]) -> E:
        """The endpoint of the product whose endpoint type is ``kind``: ``get(HAProxyEndpoint)``."""
        for ep in self.products.values():
            if type(ep) is kind:
                return ep
        raise KeyError(f"no {kind.__name__.removesuffix('Endpoint')} in this lab; it runs: "
                       f"{', '.join(sorted(self.products))}")

    def url(self, name: str) -> str:
        if name not in self.products:
            raise KeyError(f"no product {name!r} in this lab; it runs: {', '.join(sorted(self.products))}")
        return self.products[name].url

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "kubeconfig": self.kubeconfig, **self.backend_data,
                "products": {name: dataclasses.asdict(ep) for name, ep in self.products.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any], types: dict[str, type[Endpoint]]) -> LabEndpoints:
        """Read ``endpoints.json``; ``types`` maps a product name to its endpoint dataclass, in product order."""
        own = {"backend", "kubeconfig", "products"}
        products = {}
        given = data.get("products") or {}
        for name in sorted(given, key=lambda n: list(types).index(n) if n in types else len(types)):
            values, kind = given[name], types.get(name, Endpoint)
            known = {f.name for f in dataclasses.fields(kind)}
            values = {k: v for k, v in values.items() if k in known}
            products[name] = kind(**values)
        return cls(data["backend"], data.get("kubeconfig", ""), products,
                   {k: v for k, v in data.items() if k not in own})
