"""The Kubernetes API server as a lab component: three TLS listeners over one store."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from ..core.component import Component, Context, Health
from ..core.files import write_atomic
from ..core.http import Credentials, Listeners, api_app
from .api import PUBLIC_PATHS, KubeApi
from .status import render
from .store import Store

SERVERS = 3
PORT = 6443
TOKEN_SECRET = "kube-admin-token"
MAX_BODY = 3 * 1024 * 1024


def kubeconfig(server: str, ca_pem: bytes, token: str) -> str:
    """An admin kubeconfig for ``server``."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "labkit",
        "clusters": [{"name": "labkit", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "labkit", "context": {"cluster": "labkit", "user": "admin",
                                                    "namespace": "default"}}],
    }, sort_keys=False)


class KubeApiServer(Component):
    name = "kube-apiserver"
    title = "Kubernetes API server"

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = Store(ctx.state_dir("kube") / "objects.sqlite")
        self.api = KubeApi(self.store)
        token = ctx.secrets.get(TOKEN_SECRET)
        app = api_app("kube-apiserver", render_error=render, credentials=Credentials({token: "admin"}, {}),
                      public=lambda r: r.path.rstrip("/") in PUBLIC_PATHS, max_body=MAX_BODY,
                      logger=ctx.logger("kube-apiserver"))
        self.api.install(app)
        addresses = [ctx.network.listener(f"kube-apiserver-{i}", ctx.network.address(0, 10 + i), PORT)
                     for i in range(1, SERVERS + 1)]
        hosts = sorted({h for h, _ in addresses} | {"127.0.0.1", "localhost", "kubernetes",
                                                    "kubernetes.default", "kubernetes.default.svc"})
        self.listeners = Listeners(app, addresses, ctx.ca.server_context("kube-apiserver", hosts))
        await self.listeners.start()
        self.up = [True] * SERVERS
        write_atomic(ctx.paths.kubeconfig, kubeconfig(self.listeners.urls()[0], ctx.ca.pem, token), 0o600)

    async def stop(self) -> None:
        await self.listeners.stop()
        self.store.close()

    async def stop_server(self, index: int) -> None:
        """Stop API server ``index`` (0-based), as if its control-plane node went down."""
        if self.up[index]:
            await self.listeners.stop_one(index)
            self.up[index] = False

    async def start_server(self, index: int) -> None:
        if not self.up[index]:
            await self.listeners.start_one(index)
            self.up[index] = True

    def endpoints(self) -> dict[str, Any]:
        urls = self.listeners.urls()
        return {"url": urls[0], "servers": urls, "kubeconfig": str(self.ctx.paths.kubeconfig)}

    async def health(self) -> Health:
        n = sum(self.up)
        return Health(n > 0, f"{n}/{SERVERS} API servers listening, resourceVersion {self.store.rv}")
