"""The lab daemon's shop images: ``labkit up`` builds the demo shop and pushes it to the lab registry, cached.

The first ``up`` builds each service from ``apps/<service>/Dockerfile`` (``pip install`` from the
wheelhouse that ``scripts/venv.sh`` fills, so no index is asked); later ones are all cache hits and push
nothing the registry already has.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..images.builder import BuildEvent
from ..registry.component import ADMIN, IMAGE_PREFIX, listen_address
from .images import Published, publish_shop


class ShopImages(Component):
    name = "shop-images"
    title = "Shop images"

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.tag = ""

    async def start(self, ctx: Context) -> None:
        checkout = Checkout.find()
        self.tag = str(checkout.versions["shop"]["tag"])
        host, port = listen_address(ctx.network)
        credentials = (ADMIN, ctx.secrets.get("registry-admin-password"))
        log = ctx.logger(self.name)

        def progress(event: BuildEvent) -> None:
            log.info(str(event))
            ctx.report(f"building the shop images: {event}")

        self.published = await asyncio.to_thread(
            publish_shop, checkout.root / "apps", f"http://{host}:{port}", credentials, tag=self.tag,
            image_host=IMAGE_PREFIX, progress=progress, wheelhouse=checkout.wheelhouse)
        for p in self.published:
            log.info(f"{p.image} {p.digest} {'pushed' if p.pushed else 'already in the registry'} "
                     f"(build {p.build_seconds:.2f} s)")

    async def stop(self) -> None:
        return None

    def endpoints(self) -> dict[str, Any]:
        return {"url": "", "images": {p.service: p.image for p in self.published}, "tag": self.tag}

    async def health(self) -> Health:
        return Health(bool(self.published), ", ".join(p.image for p in self.published))
