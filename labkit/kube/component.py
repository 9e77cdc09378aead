"""The Kubernetes API server as a lab component: three TLS listeners over one store."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from aiohttp import web

from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.errors import ApiError
from ..core.files import write_atomic
from ..core.http import Credentials, Listeners, api_app
from ..core.tasks import cancel
from ..registry.component import listen_address
from ..shop.images import image as shop_image
from .apiserver.api import PUBLIC_PATHS, KubeApi
from .apiserver.bootstrap import ensure_kubernetes_service
from .apiserver.status import render
from .apiserver.store import Store
from .controllers.base import EventRecorder
from .controllers.deployment import DeploymentController
from .controllers.endpoints import EndpointsController
from .controllers.nodelifecycle import NodeLifecycleController
from .controllers.replicaset import ReplicaSetController
from .controllers.scheduler import Scheduler
from .controllers.workloads import DaemonSetController, JobController
from .node.agent import NodeAgent, node_specs
from .node.images import LAB_REGISTRY, ImagePuller
from .node.kubelet import Kubelet
from .node.proxy import NodePorts, Resolver, ServiceProxy

SERVERS = 3
PORT = 6443
TOKEN_SECRET = "kube-admin-token"
MAX_BODY = 3 * 1024 * 1024
CONTROLLERS = (DeploymentController, ReplicaSetController, Scheduler, NodeLifecycleController, EndpointsController,
               JobController, DaemonSetController)


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


def preload_images() -> list[str]:
    """The lab's own images (the shop's), which the nodes pull as soon as they start."""
    checkout = Checkout.find()
    tag = checkout.versions["shop"]["tag"]
    return [shop_image(app, tag, LAB_REGISTRY) for app in checkout.apps()]


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
        load_balancer = ctx.network.address(0, 2)  # HAProxy in front of the three (labkit.haproxy)
        hosts = sorted({h for h, _ in addresses} | {load_balancer, "127.0.0.1", "localhost", "kubernetes",
                                                    "kubernetes.default", "kubernetes.default.svc"})
        ensure_kubernetes_service(self.api.objects, addresses)
        self.listeners = Listeners(app, addresses, ctx.ca.server_context("kube-apiserver", hosts))
        await self.listeners.start()
        self.up = [True] * SERVERS
        write_atomic(ctx.paths.kubeconfig, kubeconfig(self._server(), ctx.ca.pem, token), 0o600)
        recorder = EventRecorder(self.api.objects)
        registry = listen_address(ctx.network)
        self.puller = puller = ImagePuller(ctx.state_dir("kube") / "images",
                                           {LAB_REGISTRY: f"http://{registry[0]}:{registry[1]}"})
        specs = node_specs(ctx.network.address)
        resolver = Resolver(self.store)
        self.nodes = {s.name: NodeAgent(self.api.objects, s) for s in specs}
        self.proxies = {s.name: ServiceProxy(resolver, *ctx.network.listener(f"proxy-{s.name}", s.address, 3128))
                        for s in specs}
        self.node_ports = {s.name: NodePorts(resolver, s.name, [s.address]) for s in specs}
        self.kubelets = {
            s.name: Kubelet(self.api.objects, s, [ctx.network.address(20 + i, k) for k in range(2, 250)],
                            ctx.state_dir("kube") / "pods" / s.name, puller, recorder, self.proxies[s.name])
            for i, s in enumerate(specs)}
        self.api.objects.graceful_pods = True
        self.api.log_reader = self._logs
        self.api.metrics = self._metrics
        self.down: set[str] = set()
        for name in self.nodes:
            await self.node_start(name)
        self._ports_task = asyncio.get_running_loop().create_task(self._sync_node_ports())
        for ref in preload_images():  # as RKE2 imports its airgap images when a node starts
            self.puller.pull_async(ref).add_done_callback(lambda f: f.exception())
        self.controllers = [c(self.api.objects, recorder) for c in CONTROLLERS]
        for c in self.controllers:
            c.start()

    def _server(self) -> str:
        """The kubeconfig's server: kept across restarts (the HAProxy chapter points it at HAProxy)."""
        if self.ctx.paths.kubeconfig.exists():
            cfg = yaml.safe_load(self.ctx.paths.kubeconfig.read_text()) or {}
            with contextlib.suppress(KeyError, IndexError, TypeError):
                return cfg["clusters"][0]["cluster"]["server"]
        return self.listeners.urls()[0]

    async def stop(self) -> None:
        await cancel(self._ports_task)
        for c in self.controllers:
            await c.stop()
        for name in self.nodes:
            await self.node_stop(name)
        await asyncio.to_thread(self.puller.close)
        await self.listeners.stop()
        self.store.close()

    def actions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {"node-stop": self.node_stop, "node-start": self.node_start,
                "server-stop": self.stop_server, "server-start": self.start_server}

    def _node(self, name: str) -> NodeAgent:
        if name not in self.nodes:
            raise ValueError(f"no node {name!r}: the nodes are {', '.join(self.nodes)}")
        return self.nodes[name]

    async def node_stop(self, name: str) -> str:
        """Stop a node: its heartbeat, its pods' processes and its service ports stop."""
        await self._node(name).stop()
        self.down.add(name)
        await self.kubelets[name].stop()
        await self.proxies[name].stop()
        await self.node_ports[name].stop()
        return f"node {name} stopped"

    async def node_start(self, name: str) -> str:
        if name in self.down or not self._node(name).running:
            self.down.discard(name)
            self.nodes[name].start()
            await self.proxies[name].start()
            self.kubelets[name].start()
            await self.node_ports[name].sync()
        return f"node {name} started"

    def _metrics(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        """What metrics-server would serve, from the running kubelets."""
        running = [k for name, k in self.kubelets.items() if name not in self.down]
        if plural == "nodes":
            return [k.node_metrics() for k in running]
        return [m for k in running for m in k.pod_metrics()
                if not namespace or m["metadata"]["namespace"] == namespace]

    async def _sync_node_ports(self) -> None:
        while True:
            for name, ports in self.node_ports.items():
                if name not in self.down:
                    await ports.sync()
            await asyncio.sleep(1.0)

    async def _logs(self, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
        """GET pods/log: the container's log file, with container, previous, tailLines and follow."""
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container") or containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {pod['metadata']['name']}")
        kubelet = self.kubelets.get(pod["spec"].get("nodeName") or "")
        path = kubelet.log_file(pod, container, request.query.get("previous") in ("true", "1")) if kubelet else None
        if path is None:
            if request.query.get("previous") in ("true", "1"):
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod '
                                                  f'"{pod["metadata"]["name"]}" not found')
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{pod["metadata"]["name"]}" is '
                                              "waiting to start: ContainerCreating")
        lines = path.read_bytes().splitlines(keepends=True)
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = lines[-int(tail):] if int(tail) else []
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(b"".join(lines))
        if request.query.get("follow") in ("true", "1"):
            with path.open("rb") as f:
                f.seek(0, 2)
                while kubelet is not None and kubelet.log_file(pod, container, False) == path:
                    chunk = f.read()
                    if chunk:
                        await resp.write(chunk)
                    else:
                        await asyncio.sleep(0.2)
        return resp

    async def stop_server(self, index: int) -> str:
        """Stop API server ``index`` (0-based), as if its control-plane node went down."""
        if self.up[index]:
            await self.listeners.stop_one(index)
            self.up[index] = False
        return f"API server {index + 1} stopped"

    async def start_server(self, index: int) -> str:
        if not self.up[index]:
            await self.listeners.start_one(index)
            self.up[index] = True
        return f"API server {index + 1} started"

    def endpoints(self) -> dict[str, Any]:
        urls = self.listeners.urls()
        return {"url": urls[0], "servers": urls, "kubeconfig": str(self.ctx.paths.kubeconfig)}

    async def health(self) -> Health:
        n = sum(self.up)
        return Health(n > 0, f"{n}/{SERVERS} API servers listening, resourceVersion {self.store.rv}")
