"""The registry as a lab component: ``localhost:5001/...`` images are pulled from here by the kubelets; Harbor's
API (``/api/v2.0``), auth and audit log on the same listener, as Harbor's nginx puts them."""

from __future__ import annotations

from aiohttp import web

from ..core.addresses import HARBOR_METRICS, REGISTRY
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.errors import ApiError
from ..core.http import Listeners, api_app
from ..core.secrets import REGISTRY_PASSWORD
from ..endpoints import RegistryEndpoint
from .api import RegistryApi
from .auth import Authority
from .errors import render
from .harbor import errors as harbor_errors
from .harbor.metrics import HarborMetrics
from .harbor.router import PREFIX
from .harbor.service import Harbor
from .storage import RegistryStorage

MAX_BLOB = 64 * 1024**3  # bodies are streamed to disk, so this only bounds a declared Content-Length
ADMIN = "admin"


def render_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Harbor's API errors under ``/api/``, the distribution API's elsewhere (the same ``errors`` list)."""
    return (harbor_errors.render if request.path.startswith(PREFIX) else render)(request, err)


class Registry(Component):
    """OCI distribution API with a token service, blobs content-addressed under the lab home."""

    async def start(self, ctx: Context) -> None:
        self.storage = RegistryStorage(ctx.state_dir(self.name))
        self.storage.uploads.purge_stale()
        self.harbor = Harbor(ctx.state_dir(self.name), self.storage, ctx.secrets.get(REGISTRY_PASSWORD))
        self.authority = Authority(self.harbor.policy, ctx.secrets.get("registry-token-key", 32).encode())
        app = api_app(self.name, render_error=render_error, max_body=MAX_BLOB, logger=ctx.logger(self.name))
        RegistryApi(self.storage, self.authority, self.harbor.events).install(app)
        self.harbor.install(app)
        self.metrics = HarborMetrics(self.harbor)
        self.metrics.install(app)
        await self.harbor.start()
        self.address = ctx.network.slot(REGISTRY)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()
        self.metrics_listener = Listeners(self.metrics.app(), [ctx.network.slot(HARBOR_METRICS)])
        await self.metrics_listener.start()

    async def stop(self) -> None:
        await self.metrics_listener.stop()
        await self.listeners.stop()
        await self.harbor.stop()
        self.storage.close()
        self.harbor.close()

    async def reset(self) -> None:
        self.storage.wipe()
        self.harbor.wipe()

    def endpoint(self) -> RegistryEndpoint:
        host, port = self.address
        url = self.listeners.urls()[0]
        return RegistryEndpoint(self.title, url, push=f"{host}:{port}",
                                pull=Checkout.find().versions["registry"]["cluster_name"], user=ADMIN,
                                api=f"{url}{PREFIX}", metrics=f"{self.metrics_listener.urls()[0]}/metrics")

    async def health(self) -> Health:
        return Health(True, f"{len(self.storage.meta.repositories())} repositories")
