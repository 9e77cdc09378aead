"""``pods/exec``, ``pods/attach`` and ``pods/portforward``: the API server's checks, then the node's streams.

As in a cluster, the API server answers what it can check itself (the container name, whether the
pod has a node) with a Status before any upgrade. A WebSocket offering ``v5.channel.k8s.io`` is
served as the API server's v5 translator serves it: upgraded first, the kubelet's failures then
arrive as a Status on the error channel, wrapped once more. Everything else reaches "the kubelet"
as it is: its failures are plain-text HTTP errors, which kubectl shows as ``unable to upgrade
connection: ...``. A WebSocket offering ``SPDY/3.1+portforward.k8s.io`` tunnels SPDY.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from ...core.errors import ApiError
from ..node.attach import Attachment
from ..node.exec import ContainerHandle, run_exec
from . import remotecommand as rc
from .portforward import PROTOCOL, TUNNEL_PROTOCOL, PodNet, SpdyPortForward, WebSocketPortForward, query_ports
from .spdy import SpdySession
from .spdyexec import SpdyExecWire
from .status import bad_request, method_not_allowed
from .upgrade import ChannelWire, RawUpgrade, WebSocketBytes, is_spdy, is_websocket, websocket

Obj = dict[str, Any]


class NodeStreams(Protocol):
    """What a kubelet offers for streaming: its running containers and its pods' addresses."""

    def container_handle(self, pod: Obj, name: str) -> ContainerHandle | None: ...

    def pod_net(self, pod: Obj) -> PodNet | None: ...


@dataclass
class Options:
    """PodExecOptions / PodAttachOptions from the query."""

    container: str
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def parse(cls, request: web.Request) -> Options:
        def flag(name: str) -> bool:
            return request.query.get(name, "").lower() in ("1", "true")

        tty = flag("tty")
        return cls(request.query.get("container", ""), request.query.getall("command", []), flag("stdin"),
                   flag("stdout"), flag("stderr") and not tty, tty)  # the kubelet drops stderr with a tty


def _text_error(status: int, message: str) -> web.Response:
    """An error the kubelet writes with Go's http.Error."""
    return web.Response(status=status, text=message + "\n", content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


def _container(pod: Obj, name: str) -> str:
    """The container a request means, or the API server's 400 (validateContainer)."""
    names = [c["name"] for kind in ("initContainers", "containers", "ephemeralContainers")
             for c in pod["spec"].get(kind) or []]
    if not name:
        if len(pod["spec"]["containers"]) == 1:
            return pod["spec"]["containers"][0]["name"]
        raise bad_request(f"a container name must be specified for pod {pod['metadata']['name']}, choose one of: "
                          f"[{' '.join(names)}]")
    if name not in names:
        raise bad_request(f"container {name} is not valid for pod {pod['metadata']['name']}")
    return name


class PodStreams:
    """Serves the streaming subresources of pods with the kubelet of each pod's node."""

    def __init__(self, node: Callable[[str], NodeStreams | None]) -> None:
        self.node = node  # by node name; None while the node is down

    async def serve(self, request: web.Request, pod: Obj, sub: str) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise method_not_allowed()
        opts = Options.parse(request)
        if sub != "portforward":
            opts.container = _container(pod, opts.container)
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            raise bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
        if not (is_websocket(request) or is_spdy(request)):
            raise bad_request("Upgrade request required")
        node = self.node(node_name)
        if node is None:  # the node is stopped: its kubelet does not answer
            host = (pod.get("status") or {}).get("hostIP") or node_name
            raise ApiError(500, "InternalError", f"error dialing backend: dial tcp {host}:10250: connect: "
                                                 "connection refused")
        if sub == "portforward":
            return await self._portforward(request, pod, node)
        return await self._remote_command(request, pod, sub, opts, node)

    # -- exec and attach ----------------------------------------------------------------------------
    async def _remote_command(self, request: web.Request, pod: Obj, sub: str, opts: Options,
                              node: NodeStreams) -> web.StreamResponse:
        handle = node.container_handle(pod, opts.container)
        if sub == "exec" and not opts.command:
            raise bad_request("an exec without a command is not supported by the labkit simulator")
        if not (opts.stdin or opts.stdout or opts.stderr):
            return _text_error(400, "you must specify at least 1 of stdin, stdout, stderr")
        missing = (f'container not found ("{opts.container}")' if sub == "exec" else
                   f"container {opts.container} not found in pod {pod['metadata']['name']}_"
                   f"{pod['metadata']['namespace']}")
        if is_spdy(request):
            return await self._spdy_remote_command(request, sub, opts, handle, missing)
        offered = rc.offered_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))
        translate = rc.V5 in offered
        protocol = rc.V5 if translate else rc.negotiate(offered, rc.WEBSOCKET_PROTOCOLS[1:])
        if protocol is None:
            return _text_error(400, f"requested protocol(s) are not supported: {offered}; supports "
                                    f"{list(rc.WEBSOCKET_PROTOCOLS[1:])}")
        if handle is None and not translate:
            return _text_error(500, missing)
        ws = await websocket(request, protocol)
        wire = ChannelWire(ws, rc.Dialect(protocol))
        await wire.open(opts.stdout, opts.stderr)
        if handle is None:
            await wire.finish(rc.internal_error(f"unable to upgrade connection: {missing}"))
            return ws
        session = await self._session(sub, opts, handle)
        if isinstance(session, dict):
            await wire.finish(rc.apiserver_result(session) if translate else session)
        else:
            await rc.serve(wire, session, translate)
        return ws

    @staticmethod
    async def _session(sub: str, opts: Options, handle: ContainerHandle) -> rc.Session | rc.Status:
        if sub == "exec":
            return await run_exec(opts.command, handle, opts.stdin, opts.stderr, opts.tty)
        return Attachment(handle, opts.stdin)

    async def _spdy_remote_command(self, request: web.Request, sub: str, opts: Options,
                                   handle: ContainerHandle | None, missing: str) -> web.StreamResponse:
        offered = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", []) for p in v.split(",")]
        protocol = rc.negotiate(offered, rc.SPDY_PROTOCOLS) or rc.V1
        if handle is None:
            return _text_error(500, missing)
        raw = await RawUpgrade.accept(request, {"Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol})
        wire = SpdyExecWire(rc.Dialect(protocol), opts.stdin, opts.stdout, opts.stderr, opts.tty)
        spdy = SpdySession(raw, wire.accept, wire.handle)
        reader = request.loop.create_task(spdy.run())
        reader.add_done_callback(lambda _: wire.connection_lost())
        try:
            if await wire.wait_ready():
                session = await self._session(sub, opts, handle)
                if isinstance(session, dict):
                    await wire.finish(session)
                else:
                    await rc.serve(wire, session, translate=False)
        finally:
            await spdy.shutdown()
            reader.cancel()
        return raw.response

    # -- port-forward -------------------------------------------------------------------------------
    async def _portforward(self, request: web.Request, pod: Obj, node: NodeStreams) -> web.StreamResponse:
        net = node.pod_net(pod)
        meta = pod["metadata"]
        if net is None:
            return _text_error(500, f"failed to find sandboxID for pod {meta['name']}_{meta['namespace']}"
                                    f"({meta['uid']})")
        offered = rc.offered_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))
        if is_spdy(request) or TUNNEL_PROTOCOL in offered:
            handler = SpdyPortForward(net)
            if is_spdy(request):
                channel: Any = await RawUpgrade.accept(request, {"Upgrade": "SPDY/3.1",
                                                                 "X-Stream-Protocol-Version": PROTOCOL})
            else:
                channel = WebSocketBytes(await websocket(request, TUNNEL_PROTOCOL))
            await SpdySession(channel, handler.accept, handler.handle).run()
            return channel.ws if isinstance(channel, WebSocketBytes) else channel.response
        ports = query_ports(request.query.getall("ports", []) or request.query.getall("port", []))
        if isinstance(ports, str):
            return _text_error(400, ports)
        protocol = rc.negotiate(offered, ("v4.channel.k8s.io", "v4.base64.channel.k8s.io"))
        if protocol is None:
            return _text_error(400, f"unable to upgrade websocket connection: requested protocol(s) are not "
                                    f"supported: {offered}")
        ws = await websocket(request, protocol)
        await WebSocketPortForward(ws, rc.Dialect(protocol or "channel.k8s.io"), net, ports).run()
        return ws
