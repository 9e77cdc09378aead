"""The registry as a lab component: ``localhost:5001/...`` images are pulled from here by the kubelets."""

from __future__ import annotations

from ..core.addresses import REGISTRY
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.http import Listeners, api_app
from ..core.secrets import REGISTRY_PASSWORD
from ..endpoints import RegistryEndpoint
from .api import RegistryApi
from .auth import Authority
from .errors import render
from .storage import RegistryStorage

MAX_BLOB = 64 * 1024**3  # bodies are streamed to disk, so this only bounds a declared Content-Length
ADMIN = "admin"


class Registry(Component):
    """OCI distribution API with a token service, blobs content-addressed under the lab home."""

    async def start(self, ctx: Context) -> None:
        self.storage = RegistryStorage(ctx.state_dir(self.name))
        self.storage.uploads.purge_stale()
        self.authority = Authority({ADMIN: ctx.secrets.get(REGISTRY_PASSWORD)},
                                   ctx.secrets.get("registry-token-key", 32).encode())
        app = api_app(self.name, render_error=render, max_body=MAX_BLOB, logger=ctx.logger(self.name))
        RegistryApi(self.storage, self.authority).install(app)
        self.address = ctx.network.slot(REGISTRY)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    async def stop(self) -> None:
        await self.listeners.stop()
        self.storage.close()

    async def reset(self) -> None:
        self.storage.wipe()

    def endpoint(self) -> RegistryEndpoint:
        host, port = self.address
        return RegistryEndpoint(self.title, self.listeners.urls()[0], push=f"{host}:{port}",
                                pull=Checkout.find().versions["registry"]["cluster_name"], user=ADMIN)

    async def health(self) -> Health:
        return Health(True, f"{len(self.storage.meta.repositories())} repositories")
