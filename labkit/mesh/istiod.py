"""The sim's istiod: watches the cluster, translates for every sidecar, and answers sidecars and people over HTTP.

It installs what Istio's ``base`` chart and istiod's own start-up put in a cluster: the CRDs (``labkit.mesh.crds``),
the ``istio-system`` namespace, the ``istiod`` Service (its endpoints: this process's listener, whose port 15014 is
istiod's HTTP monitoring port) and the ``jaeger-collector`` ServiceEntry (the lab's Jaeger OTLP/HTTP receiver,
reachable from meshed apps through their sidecars, as Istio's Jaeger addon's Service is). Then it keeps a list+watch
cache of Pods, Services and Istio's networking resources and, a moment after any change, pushes each meshed pod's
translated configuration to its xDS directory (:class:`~.controlplane.ControlPlane`).

HTTP, on the ``ISTIOD`` slot:

* ``GET /debug/syncz``: each sidecar, with the files of its last push and the translation's warnings;
* ``GET /debug/config_dump?proxyID=<pod>.<namespace>``: what istiod would push to that sidecar (listeners, routes,
  clusters, endpoints), as istiod's debug endpoint answers;
* ``GET /labkit/v1/sidecar?proxyID=<pod>.<namespace>``: a starting sidecar's agent asks it for its identity, the
  bootstrap written for it and the access log path (what pilot-agent gets from istiod's ADS connection; the sim's
  agent reaches this through its node's service proxy, as ``istiod.istio-system.svc:15014``).

``python -m labkit.mesh.istiod`` runs it alone (the kind contract harness stands in for the istiod chart with it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..core.errors import ApiError
from ..core.http import Listeners, api_app, json_response
from ..kubeclient.api import KubeApi
from ..kubeclient.informers import Cluster, Resource
from .controlplane import ControlPlane, meshed_pods
from .crds import ISTIO_VERSION, RELEASE_ANNOTATION, crds
from .identity import ADMIN_PORT, ENVOY_PROMETHEUS_PORT, ProxyIdentity
from .translate import Mesh, ProxyOptions, translate
from .translate.workloads import proxy_identity
from .xds import AdminAddress

log = logging.getLogger("labkit.mesh.istiod")
NAMESPACE = "istio-system"
MONITORING_PORT = 15014
OTLP_SERVICE = f"jaeger-collector.{NAMESPACE}.svc.cluster.local"  # what meshed apps export their spans to
OTLP_PORT = 4318
DEBOUNCE = 0.05  # seconds istiod waits for more changes before a push (PILOT_DEBOUNCE_AFTER is 100 ms)
WATCHED = (Resource("", "v1", "Pod", "pods", True), Resource("", "v1", "Service", "services", True),
           Resource("", "v1", "Endpoints", "endpoints", True),  # a selector-less Service's addresses
           *(Resource("networking.istio.io", "v1", kind, plural, True) for kind, plural in (
               ("VirtualService", "virtualservices"), ("DestinationRule", "destinationrules"),
               ("ServiceEntry", "serviceentries"), ("Gateway", "gateways"))))


class Istiod:
    """The control plane over one cluster: its xDS root under ``state``, its HTTP on ``listen``."""

    def __init__(self, kubeconfig: str | Path, state: Path, listen: tuple[str, int], otlp: str = "",
                 jaeger_otlp: tuple[str, int] | None = None) -> None:
        self.kube = KubeApi(kubeconfig)
        self.state, self.listen, self.otlp, self.jaeger_otlp = state, listen, otlp, jaeger_otlp
        self.plane = ControlPlane(state / "proxies", self.options)
        self.cluster: Cluster | None = None
        self.listeners: Listeners | None = None
        self.pushes = 0
        self.pushed_at = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._push: asyncio.Task[None] | None = None
        self._again = False

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}:{self.listen[1]}"

    def options(self, identity: ProxyIdentity) -> ProxyOptions:
        directory = self.plane.directory(identity)
        return ProxyOptions(access_log=str(directory / "access.log"),
                            otlp_url=f"{self.otlp.rstrip('/')}/v1/traces" if self.otlp else None)

    async def start(self) -> None:
        """Install Istio's API and objects, start the HTTP listener, then the watches (the first push follows)."""
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # the API may be behind HAProxy, whose servers are not UP yet when a lab restarts
            try:
                await self.install()
                break
            except (aiohttp.ClientError, OSError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        app = api_app("istiod", logger=log)
        app.router.add_get("/debug/syncz", self.syncz)
        app.router.add_get("/debug/config_dump", self.config_dump)
        app.router.add_get("/labkit/v1/sidecar", self.sidecar)
        self.listeners = Listeners(app, [self.listen])
        await self.listeners.start()
        await self.publish()
        self.cluster = Cluster(self.kube, self._on_change)
        for res in WATCHED:
            await self.cluster.informer(res, wait=False)
        self.changed()

    async def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self._push is not None:
            self._push.cancel()
            with contextlib.suppress(BaseException):
                await self._push
        if self.cluster is not None:
            await self.cluster.close()
        if self.listeners is not None:
            await self.listeners.stop()
        await self.kube.close()

    # ------------------------------------------------------------------------------------------------ install
    async def install(self) -> None:
        """Istio's CRDs (created, or replaced when another release's are there) until Established; the namespace."""
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for crd in crds():
            crd["metadata"].setdefault("annotations", {})[RELEASE_ANNOTATION] = ISTIO_VERSION
            await self.kube.create_or_replace(path, crd, keep=RELEASE_ANNOTATION)
        for crd in crds():
            for _ in range(300):
                got = await self.kube.get(f"{path}/{crd['metadata']['name']}")
                if any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in (got.get("status") or {}).get("conditions") or []):
                    break
                await asyncio.sleep(0.1)
        await self.kube.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NAMESPACE}})

    async def publish(self) -> None:
        """The ``istiod`` Service and its Endpoints (this listener), the ServiceEntry of Jaeger's OTLP receiver."""
        host, port = self.listen
        labels = {"app": "istiod", "istio": "pilot"}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istiod", "namespace": NAMESPACE,
                                                                       "labels": labels},
                   "spec": {"ports": [{"name": "http-monitoring", "port": MONITORING_PORT, "targetPort": port}]}}
        endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "istiod", "namespace": NAMESPACE,
                                                                           "labels": labels},
                     "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "http-monitoring", "port": port}]}]}
        await self.kube.create_or_replace(f"/api/v1/namespaces/{NAMESPACE}/services", service)
        await self.kube.create_or_replace(f"/api/v1/namespaces/{NAMESPACE}/endpoints", endpoints)
        if self.jaeger_otlp is not None:
            entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                     "metadata": {"name": "jaeger-collector", "namespace": NAMESPACE},
                     "spec": {"hosts": [OTLP_SERVICE], "location": "MESH_INTERNAL", "resolution": "STATIC",
                              "ports": [{"name": "http-otlp", "number": OTLP_PORT, "protocol": "HTTP",
                                         "targetPort": self.jaeger_otlp[1]}],
                              "endpoints": [{"address": self.jaeger_otlp[0]}]}}
            collection = f"/apis/networking.istio.io/v1/namespaces/{NAMESPACE}/serviceentries"
            await self.kube.create_or_replace(collection, entry)

    # ------------------------------------------------------------------------------------------------ pushes
    def objects(self) -> list[dict[str, Any]]:
        assert self.cluster is not None
        return [o for inf in self.cluster.informers.values() for o in inf.objects.values()]

    def _on_change(self, obj: dict[str, Any]) -> None:
        """Push on a change, except on the Endpoints of a Service with a selector: its pods' own changes push (only a
        selector-less Service's Endpoints are read, as kube-controller-manager mirrors only those for istiod)."""
        if obj.get("kind") == "Endpoints" and self.cluster is not None:
            meta = obj.get("metadata") or {}
            services = self.cluster.informers.get(("", "Service"))
            svc = services.objects.get((meta.get("namespace", ""), meta.get("name", ""))) if services else None
            if svc is not None and (svc.get("spec") or {}).get("selector"):
                return
        self.changed()

    def changed(self) -> None:
        """Something changed: push after ``DEBOUNCE`` (one push at a time; a change during one pushes again)."""
        if self._push is not None and not self._push.done():
            self._again = True
            return
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(DEBOUNCE, self._start_push)

    def _start_push(self) -> None:
        self._pending = None
        self._push = asyncio.get_running_loop().create_task(self._run_push())

    async def _run_push(self) -> None:
        try:
            await asyncio.to_thread(self.plane.sync, self.objects())
            self.pushes += 1
            self.pushed_at = asyncio.get_running_loop().time()
        except Exception:
            log.exception("push")
        if self._again:
            self._again = False
            self._start_push()

    # ------------------------------------------------------------------------------------------------ HTTP
    def _pod(self, request: web.Request) -> dict[str, Any]:
        proxy = request.query.get("proxyID", "")
        name, _, namespace = proxy.partition(".")
        if not name or not namespace:
            raise ApiError(400, "BadRequest", "proxyID is required: <pod>.<namespace>")
        pod = next((p for p in meshed_pods(self.objects()) if p["metadata"]["name"] == name
                    and p["metadata"].get("namespace") == namespace), None)
        if pod is None:
            raise ApiError(404, "NotFound", f"proxy not connected: {proxy}")
        return pod

    async def syncz(self, _: web.Request) -> web.Response:
        rows = [{"proxy": f"{p['metadata']['name']}.{p['metadata']['namespace']}",
                 "istio_version": ISTIO_VERSION, "ip": p["status"]["podIP"],
                 "warnings": self.plane.warnings.get(f"{p['metadata']['namespace']}.{p['metadata']['name']}", [])}
                for p in meshed_pods(self.objects())]
        return json_response(rows)

    async def config_dump(self, request: web.Request) -> web.Response:
        identity = proxy_identity(self._pod(request))
        config = translate(Mesh.from_objects(self.objects()), identity, self.options(identity))
        return json_response({"listeners": config.listeners, "routes": config.routes, "clusters": config.clusters,
                              "warnings": config.warnings})

    async def sidecar(self, request: web.Request) -> web.Response:
        identity = proxy_identity(self._pod(request))
        if f"{identity.namespace}.{identity.pod}" not in self.plane.deliveries:
            raise ApiError(404, "NotFound", f"no push for {identity.pod}.{identity.namespace} yet")
        bootstrap = self.plane.bootstrap(identity, AdminAddress(identity.ip, ADMIN_PORT), ENVOY_PROMETHEUS_PORT,
                                         istio_stats=True)
        return json_response({"identity": dataclasses.asdict(identity), "bootstrap": str(bootstrap),
                              "access_log": self.options(identity).access_log,
                              "envoy_log": str(self.plane.directory(identity) / "envoy.log")})


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


async def _serve(istiod: Istiod) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await istiod.start()
    print(json.dumps({"istiod": istiod.url}), flush=True)
    try:
        await stop.wait()
    finally:
        await istiod.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.mesh.istiod", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="the cluster's admin kubeconfig")
    parser.add_argument("--state", type=Path, required=True, help="where the sidecars' xDS files go")
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT of istiod's HTTP (loopback)")
    parser.add_argument("--otlp", default="", help="Jaeger's OTLP/HTTP base URL, for the sidecars' tracer")
    args = parser.parse_args(argv)
    otlp = _address(args.otlp.split("//", 1)[-1].rstrip("/")) if args.otlp else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(Istiod(args.kubeconfig, args.state, args.listen, args.otlp, otlp)))


if __name__ == "__main__":
    main()
