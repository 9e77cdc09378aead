"""The Kubernetes API server as a lab component: three TLS listeners over one store."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ..core.addresses import LB_API, SERVERS, api_server, kubelet_metrics, node_proxy, pod_addresses
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.errors import ApiError
from ..core.files import write_atomic
from ..core.http import Listeners, api_app
from ..core.secrets import KUBE_TOKEN, SERVICE_ACCOUNT_KEY
from ..core.tasks import cancel
from ..endpoints import KubernetesEndpoint
from ..images.pull import ImagePuller
from .apiserver.api import KubeApi
from .apiserver.authn import KubeAuthenticator
from .apiserver.bootstrap import ensure_default_storage_class, ensure_kubernetes_service
from .apiserver.bootstrappolicy import ensure_bootstrap_policy
from .apiserver.status import render
from .apiserver.store import Store
from .apiserver.streaming import PodStreams
from .apiserver.tokens import TokenIssuer
from .controllers.base import Cluster, EventRecorder
from .controllers.certificates import CertificateSigningController
from .controllers.cronjob import CronJobController
from .controllers.deployment import DeploymentController
from .controllers.disruption import DisruptionController
from .controllers.endpoints import EndpointsController
from .controllers.hpa import HorizontalPodAutoscalerController
from .controllers.localpath import LocalPathProvisioner
from .controllers.nodelifecycle import NodeLifecycleController
from .controllers.quota import ResourceQuotaController
from .controllers.rbac import ClusterRoleAggregationController
from .controllers.replicaset import ReplicaSetController
from .controllers.scheduler import Scheduler
from .controllers.serviceaccounts import RootCACertPublisher, ServiceAccountsController
from .controllers.statefulset import StatefulSetController
from .controllers.volumes import PersistentVolumeController, StorageProtectionController
from .controllers.workloads import DaemonSetController, JobController
from .node.agent import NodeAgent, node_specs
from .node.crilog import LogFollower, Renderer, parse_since, read_log
from .node.kubelet import Kubelet
from .node.metrics import KubeletMetrics
from .node.proxy import NodePorts, Resolver, ServiceProxy

MAX_BODY = 3 * 1024 * 1024
CONTROLLERS = (DeploymentController, ReplicaSetController, Scheduler, NodeLifecycleController, EndpointsController,
               JobController, DaemonSetController, HorizontalPodAutoscalerController, ResourceQuotaController,
               StatefulSetController, CronJobController, DisruptionController, PersistentVolumeController,
               StorageProtectionController, LocalPathProvisioner,
               ClusterRoleAggregationController, CertificateSigningController, ServiceAccountsController,
               RootCACertPublisher)


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


def registry_mirrors(ctx: Context) -> dict[str, str]:
    """Where the nodes pull the lab's image name from (``settings.json`` ``registry_mirrors``, as containerd's
    ``hosts.toml`` would say), by default the lab's own registry."""
    mirrors = dict(ctx.settings.get("registry_mirrors") or {})
    registry = ctx.endpoints.get("registry")
    if registry is not None and not mirrors:  # and docker.io (the istio/proxyv2 the mesh pushes there)
        mirrors[Checkout.find().versions["registry"]["cluster_name"]] = registry.url
        mirrors["docker.io"] = registry.url
    return mirrors


class KubeApiServer(Component):
    """Three API server listeners over one store, the controllers, and the nodes with their kubelets."""

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = Store(ctx.state_dir("kube") / "objects.sqlite")
        self.api = KubeApi(self.store)
        self.api.objects.tokens = TokenIssuer(ctx.secrets.get(SERVICE_ACCOUNT_KEY))
        token = ctx.secrets.get(KUBE_TOKEN)
        app = api_app("kube-apiserver", render_error=render, credentials=KubeAuthenticator(self.api.objects, token),
                      max_body=MAX_BODY, logger=ctx.logger("kube-apiserver"))
        self.api.install(app)
        addresses = [ctx.network.slot(api_server(s)) for s in SERVERS]
        load_balancer = ctx.network.address(LB_API.third, LB_API.fourth)  # HAProxy's, in the certificate
        hosts = sorted({h for h, _ in addresses} | {load_balancer, "127.0.0.1", "localhost", "kubernetes",
                                                    "kubernetes.default", "kubernetes.default.svc"})
        ensure_kubernetes_service(self.api.objects, addresses)
        ensure_bootstrap_policy(self.api.objects)
        volumes = ctx.state_dir("kube") / "volumes"  # the local-path provisioner's folders, one per node
        ensure_default_storage_class(self.api.objects, first_start=not volumes.exists())
        volumes.mkdir(parents=True, exist_ok=True)
        self.listeners = Listeners(app, addresses, ctx.ca.server_context("kube-apiserver", hosts, client_certs=True))
        await self.listeners.start()
        self.up = dict.fromkeys(SERVERS, True)
        write_atomic(ctx.paths.kubeconfig, kubeconfig(self._kubeconfig_server(), ctx.ca.pem, token), 0o600)
        recorder = EventRecorder(self.api.objects)
        ctx.logger("kubelet")  # the kubelets' log (labkit.kubelet): logs/kubelet.log in the lab home
        self.puller = puller = ImagePuller(ctx.state_dir("kube") / "images", registry_mirrors(ctx))
        specs = node_specs(ctx.network.address)
        resolver = Resolver(self.store)
        self.nodes = {s.name: NodeAgent(self.api.objects, s) for s in specs}
        self.proxies = {s.name: ServiceProxy(resolver, *ctx.network.slot(node_proxy(s.name))) for s in specs}
        self.node_ports = {s.name: NodePorts(resolver, s.name, [s.address]) for s in specs}
        self.kubelets = {
            s.name: Kubelet(self.api.objects, s, [ctx.network.address(*a) for a in pod_addresses(s.name)],
                            ctx.state_dir("kube") / "pods" / s.name, puller, recorder, self.proxies[s.name])
            for s in specs}
        for spec in specs:  # each kubelet's metrics (/metrics/cadvisor) on its node's port 10250
            self.nodes[spec.name].metrics = KubeletMetrics(self.kubelets[spec.name],
                                                           ctx.network.slot(kubelet_metrics(spec.name)))
        self.api.objects.graceful_pods = True
        self.api.log_reader = self._logs
        self.api.streams = PodStreams(lambda node: None if node in self.down else self.kubelets.get(node))
        self.api.metrics = self._metrics
        self.down: set[str] = set()
        for name in self.nodes:
            await self.node_start(name)
        self._ports_task = asyncio.get_running_loop().create_task(self._sync_node_ports())
        for ref in ctx.preload:  # as RKE2 imports its airgap images when a node starts
            self.puller.pull_async(ref).add_done_callback(lambda f: f.exception())
        self.controllers = [c(self.api.objects, recorder) for c in CONTROLLERS]
        cluster = Cluster(metrics=self._metrics, ca=ctx.ca, volumes=volumes)
        for c in self.controllers:
            c.configure(cluster)
            c.start()

    def _kubeconfig_server(self) -> str:
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
                "server-stop": self.server_stop, "server-start": self.server_start}

    def _node(self, name: str) -> NodeAgent:
        if name not in self.nodes:
            raise ValueError(f"no node {name!r}: the nodes are {', '.join(self.nodes)}")
        return self.nodes[name]

    async def node_stop(self, name: str) -> str:
        """Stop a node: its service ports, its heartbeat and its pods' processes stop. The ports go first, as they
        do when a machine dies: a load balancer's next connection is refused (and retried on another server)
        instead of reaching a pod that is being stopped."""
        node = self._node(name)
        self.down.add(name)
        await self.node_ports[name].stop()
        await self.proxies[name].stop()
        await node.stop()
        await self.kubelets[name].stop()
        return f"node {name} stopped"

    async def node_start(self, name: str) -> str:
        if name not in self.down and self._node(name).running:
            return f"node {name} is already running"
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
        """GET pods/log: the container's log file (``container``, ``previous``, then ``_stream_log``)."""
        containers = [c["name"] for c in pod["spec"]["containers"]]
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        container = request.query.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {pod['metadata']['name']}, "
                           f"choose one of: [{' '.join(containers)}]"
                           + (f" or one of the init containers: [{' '.join(inits)}]" if inits else ""))
        if container not in containers + inits:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {pod['metadata']['name']}")
        kubelet = self.kubelets.get(pod["spec"].get("nodeName") or "")
        path = kubelet.log_file(pod, container, request.query.get("previous") in ("true", "1")) if kubelet else None
        if path is None:
            if request.query.get("previous") in ("true", "1"):
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod '
                                                  f'"{pod["metadata"]["name"]}" not found')
            status = pod.get("status") or {}
            statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
            state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
            reason = (state.get("waiting") or {}).get("reason") or ("PodInitializing" if inits else "ContainerCreating")
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{pod["metadata"]["name"]}" is '
                                              f"waiting to start: {reason}")
        return await self._stream_log(request, pod, container, path, kubelet)

    async def _stream_log(self, request: web.Request, pod: dict[str, Any], container: str, path: Path,
                          kubelet: Kubelet | None) -> web.StreamResponse:
        """The CRI log file as the kubelet serves it: timestamps, sinceSeconds/sinceTime, tailLines, limitBytes,
        and follow until the container instance is done writing it."""
        q = request.query
        since = None
        try:
            if q.get("sinceSeconds"):
                since = time.time() - int(q["sinceSeconds"])
            elif q.get("sinceTime"):
                since = parse_since(q["sinceTime"])
            tail = int(q["tailLines"]) if q.get("tailLines") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        except ValueError as err:
            raise ApiError(400, "BadRequest", f"invalid log options: {err}") from err
        if (tail is not None and tail < 0) or (limit is not None and limit < 1):
            raise ApiError(422, "Invalid", "PodLogOptions is invalid: tailLines and limitBytes must be positive")
        renderer = Renderer(q.get("timestamps") in ("true", "1"), since, limit)
        follow = q.get("follow") in ("true", "1") and kubelet is not None
        data, offset = read_log(path, renderer, tail)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(data)
        if not follow:
            return resp
        follower = LogFollower(path, offset, renderer)
        try:
            while not renderer.full:  # until the container instance is done writing, as the kubelet follows
                live = kubelet is not None and kubelet.log_live(pod, container, path)
                chunk = follower.read()
                if chunk:
                    await resp.write(chunk)
                elif live:
                    await asyncio.sleep(0.1)
                else:
                    break
        finally:
            follower.close()
        return resp

    def _listener(self, server: str) -> int:
        if server not in self.up:
            raise ValueError(f"no server node {server!r}: the API servers run on {', '.join(self.up)}")
        return SERVERS.index(server)

    async def server_stop(self, server: str) -> str:
        """Stop the API server of ``server`` (``server-1``), as if its control-plane node went down."""
        index = self._listener(server)
        if self.up[server]:
            await self.listeners.stop_one(index)
            self.up[server] = False
        return f"API server of {server} stopped"

    async def server_start(self, server: str) -> str:
        index = self._listener(server)
        if self.up[server]:
            return f"API server of {server} is already listening"
        await self.listeners.start_one(index)
        self.up[server] = True
        return f"API server of {server} started"

    def endpoint(self) -> KubernetesEndpoint:
        urls = self.listeners.urls()
        return KubernetesEndpoint(self.title, urls[0], urls, str(self.ctx.paths.kubeconfig),
                                  {name: str(k.log_root) for name, k in self.kubelets.items()})

    async def health(self) -> Health:
        n = sum(self.up.values())
        return Health(n > 0, f"{n}/{len(SERVERS)} API servers listening, resourceVersion {self.store.rv}; "
                             "NetworkPolicies are stored, not enforced")
