"""The registry as a lab component: ``localhost:5001/...`` images are pulled from here by the kubelets."""

from __future__ import annotations

from typing import Any

from ..core.component import Component, Context, Health
from ..core.http import Credentials, Listeners, api_app
from .api import RegistryApi, render
from .storage import RegistryStore

MAX_BLOB = 2 * 1024**3
USER = "admin"


class Registry(Component):
    name = "registry"
    title = "Image registry (OCI distribution)"

    async def start(self, ctx: Context) -> None:
        self.password = ctx.secrets.get("registry-admin-password")
        self.store = RegistryStore(ctx.state_dir("registry"))
        app = api_app("registry", render_error=render, credentials=Credentials({}, {USER: self.password},
                                                                                realm="labkit-registry"),
                      public=lambda r: r.method in ("GET", "HEAD") and r.path not in ("/v2", "/v2/"),
                      max_body=MAX_BLOB, logger=ctx.logger("registry"))
        RegistryApi(self.store, "labkit-registry").install(app)
        self.address = ctx.network.listener("registry", ctx.network.address(0, 1), 5000)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    async def stop(self) -> None:
        await self.listeners.stop()
        self.store.db.close()

    def endpoints(self) -> dict[str, Any]:
        return {"url": self.listeners.urls()[0], "user": USER, "image_prefix": "localhost:5001"}

    async def health(self) -> Health:
        return Health(True, f"{len(self.store.repositories())} repositories")
