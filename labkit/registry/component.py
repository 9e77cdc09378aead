"""The registry as a lab component: ``localhost:5001/...`` images are pulled from here by the kubelets."""

from __future__ import annotations

from typing import Any

from ..core.component import Component, Context, Health
from ..core.http import Listeners, api_app
from ..core.network import Network
from .api import RegistryApi
from .auth import SERVICE, Authority
from .errors import render
from .storage import RegistryStorage

MAX_BLOB = 64 * 1024**3  # bodies are streamed to disk, so this only bounds a declared Content-Length
ADMIN = "admin"
IMAGE_PREFIX = "localhost:5001"  # the name pods use on both backends (manifests/versions.yaml)


def listen_address(network: Network) -> tuple[str, int]:
    """Where the lab's registry listens (kept across restarts): what the kubelets and the shop's builds use."""
    return network.listener("registry", network.address(0, 1), 5000)


class Registry(Component):
    """OCI distribution API with a token service, blobs content-addressed under the lab home."""

    name = "registry"
    title = "Image registry (OCI distribution)"

    async def start(self, ctx: Context) -> None:
        self.storage = RegistryStorage(ctx.state_dir(self.name))
        self.storage.uploads.purge_stale()
        self.authority = Authority({ADMIN: ctx.secrets.get("registry-admin-password")},
                                   ctx.secrets.get("registry-token-key", 32).encode())
        app = api_app(self.name, render_error=render, max_body=MAX_BLOB, logger=ctx.logger(self.name))
        RegistryApi(self.storage, self.authority).install(app)
        self.address = listen_address(ctx.network)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    async def stop(self) -> None:
        await self.listeners.stop()
        self.storage.close()

    async def reset(self) -> None:
        self.storage.wipe()

    def endpoints(self) -> dict[str, Any]:
        url = self.listeners.urls()[0]
        return {"url": url, "user": ADMIN, "image_prefix": IMAGE_PREFIX, "token_url": f"{url}/service/token",
                "service": SERVICE}

    async def health(self) -> Health:
        return Health(True, f"{len(self.storage.meta.repositories())} repositories")
