"""Argo CD as a lab component: installs itself into the lab's cluster through the Kubernetes API, as its
manifests would (the CRDs, the ``argocd`` namespace, the ``default`` AppProject, ``argocd-cm``, ``argocd-secret``
and ``argocd-initial-admin-secret`` with the admin's first password), runs the Application controller and serves
the API server on its loopback slot. Everything it knows lives in the cluster, so a restart loses nothing."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from ..core.addresses import ARGOCD, ARGOCD_CONTROLLER_METRICS, ARGOCD_REPO_METRICS, ARGOCD_SERVER_METRICS
from ..core.component import Component, Context, Health, http_check
from ..core.http import Listeners
from ..endpoints import ArgoCDEndpoint, KubernetesEndpoint
from .api import make_app
from .api.context import ApiContext
from .api.kubeapi import GROUP, KubeApi, KubeError, core_path, projects_path
from .api.sessions import Sessions
from .api.webhook import GITLAB_SECRET, SECRET

NAMESPACE = "argocd"
ADMIN = "admin"
ADMIN_PASSWORD = "argocd-admin-password"  # the lab secret behind argocd-initial-admin-secret
SERVER_KEY = "argocd-server-secretkey"  # server.secretkey: signs the session tokens
WEBHOOK_SECRET = "argocd-webhook-gitlab-secret"  # webhook.gitlab.secret: what GitLab's hook sends as its token
CRD_RELEASE = "labkit.argocd/release"  # on the CRDs: the Argo CD release they come from
RECONCILIATION_SECONDS = 10  # timeout.reconciliation: Argo CD's default is 120 s (plus jitter); the lab's is short
log = logging.getLogger("labkit.argocd")


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class ArgoCD(Component):
    """Argo CD's API server and Application controller over the lab's Kubernetes API."""

    title = "Argo CD"
    bind: tuple[str, int] | None = None  # the standalone server's --listen, instead of the lab's slot
    metrics_listeners: tuple[Listeners, ...] = ()  # the controller's, repo server's, API server's /metrics

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.address = self.bind or ctx.network.slot(ARGOCD)
        kubernetes = ctx.endpoints.get("kubernetes")
        if not isinstance(kubernetes, KubernetesEndpoint) or not kubernetes.kubeconfig:
            raise RuntimeError("Argo CD needs the lab's Kubernetes API (the kubernetes product is not running)")
        self.kube = KubeApi(kubernetes.kubeconfig)
        self.password = ctx.secrets.get(ADMIN_PASSWORD, 12)
        try:
            await self.install()
            self.controller = await self.start_controller(kubernetes.kubeconfig)
        except BaseException:
            await self.kube.close()
            raise
        self.api = ApiContext(self.kube, NAMESPACE, self.controller)
        sessions = Sessions(ctx.secrets.get(SERVER_KEY, 32).encode(), {ADMIN: self.password})
        metrics = self.controller.metrics  # the controller's, repo server's and API server's /metrics, on their ports
        app = make_app(self.api, sessions, ctx.logger(self.name or "argocd"))
        app.middlewares.append(metrics.server.middleware)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()
        self.metrics_listeners = (
            Listeners(metrics.app(metrics.controller_registry), [ctx.network.slot(ARGOCD_CONTROLLER_METRICS)]),
            Listeners(metrics.app(metrics.repo_registry), [ctx.network.slot(ARGOCD_REPO_METRICS)]),
            Listeners(metrics.app(metrics.server_registry), [ctx.network.slot(ARGOCD_SERVER_METRICS)]))
        for listeners in self.metrics_listeners:
            await listeners.start()

    async def install(self) -> None:
        """What Argo CD's install manifests create, where it is missing (an admin's later changes are kept)."""
        from .crds import ARGOCD_VERSION, crds  # Argo CD's released CRDs

        for crd in crds():
            await self._install_crd(crd, ARGOCD_VERSION)
        await self._wait_served()
        await self.kube.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NAMESPACE}})
        labels = {"app.kubernetes.io/part-of": "argocd"}
        await self.kube.ensure(projects_path(NAMESPACE), {
            "apiVersion": f"{GROUP}/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}})
        await self.kube.ensure(core_path(NAMESPACE, "configmaps"), {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm", "namespace": NAMESPACE,
                         "labels": {**labels, "app.kubernetes.io/name": "argocd-cm"}},
            "data": {"url": self.url(), "admin.enabled": "true",
                     "application.resourceTrackingMethod": "annotation",
                     "timeout.reconciliation": f"{RECONCILIATION_SECONDS}s"}})
        secret_data = {"server.secretkey": _b64(self.ctx.secrets.get(SERVER_KEY, 32)),
                       "admin.passwordMtime": _b64("1970-01-01T00:00:00Z")}
        secret_data[GITLAB_SECRET] = _b64(self.ctx.secrets.get(WEBHOOK_SECRET, 18))  # as the kind chart's values
        await self.kube.ensure(core_path(NAMESPACE, "secrets"), {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET, "namespace": NAMESPACE,
                         "labels": {**labels, "app.kubernetes.io/name": SECRET}},
            "data": secret_data})
        await self.kube.ensure(core_path(NAMESPACE, "secrets"), {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "argocd-initial-admin-secret", "namespace": NAMESPACE},
            "data": {"password": _b64(self.password)}})

    async def _install_crd(self, crd: dict[str, Any], version: str) -> None:
        """Create the CRD, or replace it when an older Argo CD release's is there (as ``kubectl apply`` of a new
        release's manifests would); the release is recorded in an annotation."""
        crd.setdefault("metadata", {}).setdefault("annotations", {})[CRD_RELEASE] = version
        await self.kube.create_or_replace("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd,
                                          keep=CRD_RELEASE)

    async def _wait_served(self, timeout: float = 20) -> None:
        """Until the API server serves the new resources (a CRD is served once Established)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.kube.get(projects_path(NAMESPACE))
                return
            except KubeError as err:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"Argo CD's CRDs are not served: {err}") from None
            await asyncio.sleep(0.1)

    async def start_controller(self, kubeconfig: str) -> Any:
        """The Application controller (``controller.py``), started on this loop."""
        from .controller import Controller

        controller = Controller.for_lab(self.ctx, kubeconfig, NAMESPACE)
        result = controller.start()
        if asyncio.iscoroutine(result):
            await result
        return controller

    async def stop(self) -> None:
        for listeners in self.metrics_listeners:
            await listeners.stop()
        await self.listeners.stop()
        result = self.controller.stop()
        if asyncio.iscoroutine(result):
            await result
        await self.kube.close()

    async def reset(self) -> None:
        """The cluster is wiped with the lab: install again."""
        await self.install()

    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def endpoint(self) -> ArgoCDEndpoint:
        gitlab = self.ctx.endpoints.get("gitlab")  # Argo CD reaches the lab's GitLab where this machine does
        return ArgoCDEndpoint(self.title or "Argo CD", self.url(), namespace=NAMESPACE, user=ADMIN,
                              git=gitlab.url if gitlab is not None else "",
                              metrics=[f"{m.urls()[0]}/metrics" for m in self.metrics_listeners])

    async def health(self) -> Health:
        ok, detail = await asyncio.to_thread(http_check, self.url() + "/healthz")
        return Health(ok, "serving the API" if ok else detail)
