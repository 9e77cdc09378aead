"""The ``kiali-server`` chart's pod in the harness: Kiali's graph API over the cluster's Prometheus.

``GET /api/namespaces/graph?namespaces=…&duration=<d>&graphType=…&injectServiceNodes=…`` answers Kiali's graph JSON,
built by :class:`labkit.mesh.kiali.Kiali` from the Prometheus the chart's values name (``external_services.prometheus.
url``, a cluster Service resolved through its Endpoints on every request, as cluster DNS and kube-proxy would) and
the namespaces' VirtualServices read from the cluster's API. Errors have Kiali's shape (``{"error": …}``); every other
route of Kiali's API answers 501, not supported by the labkit simulator.

``python -m tests.backends.kind.harness.kiali --kubeconfig K --prometheus URL --listen HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from labkit.core.errors import ApiError, not_supported
from labkit.core.http import Listeners, api_app, json_response
from labkit.kubeclient.api import KubeApi, KubeError
from labkit.mesh.kiali import Kiali

from .logging import SERVICE_NAME

log = logging.getLogger("harness.kiali")
DURATION = re.compile(r"^(\d+)(s|m|h)$")


def kiali_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Kiali's handlers answer ``{"error": message}``."""
    return json_response({"error": err.message}, status=err.status)


def seconds(text: str) -> int:
    """A Go duration as Kiali's graph takes it (``60s``, ``10m``)."""
    m = DURATION.match(text)
    if not m:
        raise ApiError(400, "BadRequest", f"Invalid duration [{text}]")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


class KialiServer:
    def __init__(self, kubeconfig: str, prometheus: str) -> None:
        parts = urlsplit(prometheus)
        m = SERVICE_NAME.match(parts.hostname or "")
        if not m:
            raise SystemExit(f"Kiali's Prometheus URL {prometheus} names no cluster Service")
        self.service, self.namespace = m.group(1), m.group(2)
        self.port = int(parts.port or 80)
        self.kube = KubeApi(kubeconfig)

    async def prometheus_url(self) -> str:
        """The Service's endpoint for its port (Kiali's Prometheus client through cluster DNS and kube-proxy)."""
        base = f"/api/v1/namespaces/{self.namespace}"
        try:
            svc = await self.kube.get(f"{base}/services/{self.service}")
            eps = await self.kube.get(f"{base}/endpoints/{self.service}")
        except KubeError as err:
            raise ApiError(503, "ServiceUnavailable", f"Prometheus {self.service}.{self.namespace}: {err}") from None
        names = [p.get("name", "") for p in svc["spec"].get("ports") or [] if p["port"] == self.port]
        subsets = eps.get("subsets") or []
        if not names or not subsets or not subsets[0].get("addresses"):
            raise ApiError(503, "ServiceUnavailable", f"Prometheus {self.service}.{self.namespace}:{self.port} has "
                                                      "no ready endpoint")
        port = {p.get("name", ""): p["port"] for p in subsets[0].get("ports") or []}[names[0]]
        return f"http://{subsets[0]['addresses'][0]['ip']}:{port}"

    async def virtual_services(self, namespaces: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ns in namespaces:
            got = await self.kube.get(f"/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices")
            out += got.get("items") or []
        return out

    async def graph(self, request: web.Request) -> web.Response:
        q = request.query
        namespaces = [n for n in q.get("namespaces", "").split(",") if n]
        if not namespaces:
            raise ApiError(400, "BadRequest", "At least one namespace must be specified via the namespaces "
                                              "query parameter.")
        duration = seconds(q.get("duration", "10m"))
        graph_type = q.get("graphType", "workload")
        inject = q.get("injectServiceNodes", "true").lower() == "true"
        kiali = Kiali(await self.prometheus_url())
        vs = await self.virtual_services(namespaces)
        try:
            body = await asyncio.to_thread(kiali.graph, namespaces, duration, graph_type, vs,
                                           inject_service_nodes=inject)
        except ValueError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        finally:
            kiali.session.close()
        return json_response(body)

    async def unsupported(self, request: web.Request) -> web.Response:
        raise not_supported(f"Kiali's {request.method} {request.path}")


async def serve(server: KialiServer, listen: tuple[str, int]) -> None:
    app = api_app("kiali", render_error=kiali_error, logger=log)
    app.router.add_get("/api/namespaces/graph", server.graph)
    app.router.add_route("*", "/{tail:.*}", server.unsupported)
    listeners = Listeners(app, [listen])
    await listeners.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(json.dumps({"url": f"http://{listen[0]}:{listen[1]}"}), flush=True)
    try:
        await stop.wait()
    finally:
        await listeners.stop()
        await server.kube.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.backends.kind.harness.kiali", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--prometheus", required=True, help="external_services.prometheus.url of the values")
    parser.add_argument("--listen", required=True, help="HOST:PORT (loopback)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(KialiServer(args.kubeconfig, args.prometheus), (host, int(port))))


if __name__ == "__main__":
    main()
