"""The lab daemon's shop images: ``labkit up`` builds the demo shop and pushes it to the lab registry, cached.

The first ``up`` builds each service from ``apps/<service>/Dockerfile`` (``pip install`` through the lab's
Nexus group when the lab runs Nexus, else from the wheelhouse that ``scripts/venv.sh`` fills, so no index is
asked); later ones are all cache hits and push nothing the registry already has.
"""

from __future__ import annotations

import asyncio

from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.secrets import REGISTRY_PASSWORD
from ..endpoints import NexusEndpoint, RegistryEndpoint, ShopEndpoint
from ..images.builder import BuildEvent
from .images import Published, publish_shop


class ShopImages(Component):
    """Builds the shop and pushes it to the registry the lab started before it; the nodes preload it."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.tag = ""

    async def start(self, ctx: Context) -> None:
        checkout = Checkout.find()
        self.tag = str(checkout.versions["shop"]["tag"])
        registry = ctx.endpoints.get("registry")
        if not isinstance(registry, RegistryEndpoint):
            raise RuntimeError("the shop's images need the lab registry, which this lab does not run")
        credentials = (registry.user, ctx.secrets.get(REGISTRY_PASSWORD)) if registry.user else None
        nexus = ctx.endpoints.get("nexus")  # started before the shop: pip in the Dockerfiles goes through it
        index_url = nexus.pypi if isinstance(nexus, NexusEndpoint) and nexus.pypi else None
        log = ctx.logger(self.name)

        def progress(event: BuildEvent) -> None:
            log.info(str(event))
            ctx.report(f"building the shop images: {event}")

        self.published = await asyncio.to_thread(publish_shop, checkout, registry.url, credentials,
                                                 progress=progress, index_url=index_url)
        ctx.preload.extend(p.image for p in self.published)
        for p in self.published:
            log.info(f"{p.image} {p.digest} {'pushed' if p.pushed else 'already in the registry'} "
                     f"(build {p.build_seconds:.2f} s)")

    async def stop(self) -> None:
        return None

    def endpoint(self) -> ShopEndpoint:
        return ShopEndpoint(self.title, "", {p.service: p.image for p in self.published}, self.tag)

    async def health(self) -> Health:
        return Health(bool(self.published), ", ".join(p.image for p in self.published))
