"""Service networking for the sim: what kube-proxy and CoreDNS do in a cluster.

* Each node runs an HTTP forward proxy; the kubelet points its pods at it
  (``HTTP_PROXY=http://<namespace>:pod@node:3128``, so clients name their
  namespace in Proxy-Authorization), so ``http://catalog:8080`` or
  ``http://catalog.shop.svc.cluster.local:8080`` (or a ClusterIP) reaches a
  ready endpoint of the Service, round robin, from the caller's namespace.
  A headless Service (``clusterIP: None``) resolves to its ready pods on the
  port the caller names, as its DNS records would, and ``<hostname>.<service>``
  (``db-0.db``, ``db-0.db.<ns>.svc.cluster.local``) to the pod whose
  ``hostname``/``subdomain`` make that name (a StatefulSet's pods).
* NodePort Services listen on every node's address (TCP, any protocol).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ...mesh.identity import INBOUND_PORT, has_sidecar
from ..apiserver.store import Store

Obj = dict[str, Any]
_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length"}


CLUSTER_DOMAIN = "cluster.local"
SERVICE_SUFFIX = f".svc.{CLUSTER_DOMAIN}"


@dataclass(frozen=True)
class Found:
    """What a name resolves to: a Service, and for a pod's own record behind a headless Service, that pod's IP."""

    service: Obj
    pod_ip: str = ""


class Resolver:
    """Service name or ClusterIP + port -> a ready pod address, round robin; ``<pod>.<headless service>`` names
    -> that pod, as CoreDNS answers them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._turn = itertools.count()

    def lookup(self, host: str, caller_ns: str) -> Found | None:
        """Resolve ``host`` as a pod of ``caller_ns`` would: a ClusterIP, or a name tried with the pod's search
        path (``<ns>.svc.cluster.local svc.cluster.local cluster.local``) and then as it is."""
        parts = host.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            svc = next((s for s in self.store.items("/services") if s["spec"].get("clusterIP") == host), None)
            return Found(svc) if svc else None
        name = host.rstrip(".").lower()
        search = [f".{caller_ns}{SERVICE_SUFFIX}", SERVICE_SUFFIX, f".{CLUSTER_DOMAIN}"]
        candidates = [name] if name.endswith(f".{CLUSTER_DOMAIN}") else [name + s for s in search] + [name]
        for fqdn in candidates:
            found = self._record(fqdn)
            if found is not None:
                return found
        return None

    def _record(self, fqdn: str) -> Found | None:
        """``<svc>.<ns>.svc.cluster.local`` or ``<hostname>.<svc>.<ns>.svc.cluster.local``."""
        if not fqdn.endswith(SERVICE_SUFFIX):
            return None
        labels = fqdn.removesuffix(SERVICE_SUFFIX).split(".")
        if len(labels) == 2:
            svc = self.store.get("/services", labels[1], labels[0])
            return Found(svc) if svc else None
        if len(labels) != 3:
            return None
        hostname, name, ns = labels
        svc = self.store.get("/services", ns, name)
        if svc is None or svc["spec"].get("clusterIP") != "None":
            return None
        ip = self._pod_record(svc, hostname)
        return Found(svc, ip) if ip else None

    def _pod_record(self, svc: Obj, hostname: str) -> str:
        """The IP of the endpoint pod whose ``hostname`` and ``subdomain`` (the Service's name) make the name, as
        the endpoints controller gives such addresses a hostname; not-ready ones only if the Service publishes
        them."""
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ep = self.store.get("/endpoints", ns, name) or {}
        keys = ("addresses", "notReadyAddresses") if svc["spec"].get("publishNotReadyAddresses") else ("addresses",)
        for subset in ep.get("subsets") or []:
            for address in (a for k in keys for a in subset.get(k) or []):
                pod = self.store.get("/pods", ns, (address.get("targetRef") or {}).get("name", ""))
                if pod is not None and pod["spec"].get("hostname") == hostname \
                        and pod["spec"].get("subdomain") == name:
                    return str(address["ip"])
        return ""

    def backend(self, svc: Obj, port: int, node_port: bool = False, node: str = "") -> tuple[str, int] | None:
        """A ready endpoint for ``port``; with ``externalTrafficPolicy: Local`` a NodePort only uses the pods
        on its own ``node`` (so a load balancer's health check of the node tells the truth)."""
        ep = self.store.get("/endpoints", svc["metadata"]["namespace"], svc["metadata"]["name"]) or {}
        if svc["spec"].get("clusterIP") == "None" and not node_port:  # headless: DNS gives the pods, any port
            ready = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
            return (ready[next(self._turn) % len(ready)], port) if ready else None
        spec_port = next((p for p in svc["spec"].get("ports", [])
                          if (p.get("nodePort") if node_port else p.get("port")) == port), None)
        if spec_port is None:
            return None
        local = node_port and svc["spec"].get("externalTrafficPolicy") == "Local"
        targets = [(a, p["port"]) for s in ep.get("subsets") or [] for a in s.get("addresses") or []
                   for p in s.get("ports") or [] if p.get("name", "") == spec_port.get("name", "")
                   and (not local or a.get("nodeName") == node)]
        if not targets:
            return None
        address, target_port = targets[next(self._turn) % len(targets)]
        return str(address["ip"]), self._redirect(svc["metadata"]["namespace"], address, target_port)

    def _redirect(self, namespace: str, address: Obj, port: int) -> int:
        """Istio's inbound iptables rule: a connection to a pod with a sidecar goes to the sidecar's inbound
        listener, which hands it to the app's port."""
        ref = address.get("targetRef") or {}
        pod = self.store.get("/pods", namespace, ref.get("name", "")) if ref.get("kind") == "Pod" else None
        return INBOUND_PORT if pod is not None and has_sidecar(pod) else port

    @staticmethod
    def caller_namespace(proxy_auth: str | None) -> str:
        """The namespace the kubelet put in the pod's proxy URL (``http://ns:pod@node:port``)."""
        if proxy_auth and proxy_auth.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                return base64.b64decode(proxy_auth[6:]).decode().partition(":")[0] or "default"
        return "default"


class ServiceProxy:
    """The per-node HTTP proxy pods use to reach Services by name."""

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver = resolver
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def url(self, namespace: str) -> str:
        """The proxy URL for pods of ``namespace``."""
        return f"http://{namespace}:pod@{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False)

    async def stop(self) -> None:
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        url = request.url
        host, port = url.host or "", url.port or 80
        caller = self.resolver.caller_namespace(request.headers.get("Proxy-Authorization"))
        found = self.resolver.lookup(host, caller)
        if found is None:
            return web.Response(status=502, text=f"no such service: {host} (from namespace {caller})\n")
        svc = found.service
        target = (found.pod_ip, port) if found.pod_ip else self.resolver.backend(svc, port)
        if target is None:
            return web.Response(status=503, text=f"no ready endpoints for service {svc['metadata']['namespace']}/"
                                                 f"{svc['metadata']['name']} port {port}\n")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Host"] = f"{host}:{port}"
        try:
            async with self._session.request(request.method, f"http://{target[0]}:{target[1]}{url.raw_path_qs}",
                                             headers=headers, data=await request.read(),
                                             allow_redirects=False) as upstream:
                resp = web.StreamResponse(status=upstream.status, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP})
                await resp.prepare(request)
                async for chunk in upstream.content.iter_chunked(65536):
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except aiohttp.ClientError as err:
            return web.Response(status=502, text=f"upstream {target[0]}:{target[1]} failed: {err}\n")


class NodePorts:
    """Listens on every node address for each NodePort and relays TCP to a ready endpoint."""

    def __init__(self, resolver: Resolver, node: str, node_addresses: list[str]) -> None:
        self.resolver = resolver
        self.node = node
        self.addresses = node_addresses
        self.servers: dict[tuple[str, int], asyncio.base_events.Server] = {}

    async def sync(self) -> None:
        wanted = {(addr, p["nodePort"]) for s in self.resolver.store.items("/services")
                  for p in s["spec"].get("ports", []) if p.get("nodePort") for addr in self.addresses}
        for key in list(self.servers):
            if key not in wanted:
                self.servers.pop(key).close()
        loop = asyncio.get_running_loop()
        for addr, port in wanted - set(self.servers):
            with contextlib.suppress(OSError):  # on a shared 127.0.0.1 the port may be taken
                self.servers[(addr, port)] = await loop.create_server(
                    lambda p=port: _Downstream(self, p), addr, port, reuse_address=True)

    async def stop(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()

    def target(self, node_port: int) -> tuple[str, int] | None:
        svc = next((s for s in self.resolver.store.items("/services")
                    if any(p.get("nodePort") == node_port for p in s["spec"].get("ports", []))), None)
        return self.resolver.backend(svc, node_port, node_port=True, node=self.node) if svc else None


class _Upstream(asyncio.Protocol):
    """The connection to the chosen pod; what it sends goes straight back to the client."""

    def __init__(self, down: _Downstream) -> None:
        self.down = down

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.down.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.transport.close()


class _Downstream(asyncio.Protocol):
    """A client connection on a NodePort, relayed byte for byte (transport to transport, no copies in Python
    streams) to a ready endpoint, like kube-proxy's DNAT."""

    def __init__(self, ports: NodePorts, node_port: int) -> None:
        self.ports = ports
        self.node_port = node_port
        self.pending: list[bytes] = []
        self.up: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        target = self.ports.target(self.node_port)
        if target is None:
            self.transport.close()
            return
        asyncio.get_running_loop().create_task(self._connect(target))

    async def _connect(self, target: tuple[str, int]) -> None:
        try:
            up, _ = await asyncio.get_running_loop().create_connection(lambda: _Upstream(self), *target)
        except OSError:
            self.transport.close()
            return
        self.up = up  # type: ignore[assignment]
        for chunk in self.pending:
            up.write(chunk)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.up is None:
            self.pending.append(data)
        else:
            self.up.write(data)

    def eof_received(self) -> bool:
        if self.up is not None and self.up.can_write_eof():
            self.up.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None:
            self.up.close()
