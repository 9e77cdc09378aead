"""``pods/portforward``: SPDY stream pairs (kubectl) and the WebSocket channel protocol (the Python client).

Over SPDY (plain, or tunnelled in a WebSocket) every forwarded connection is a pair of streams the
client opens, ``streamType: error`` and ``streamType: data``, both with the remote ``port`` and a
``requestID``. Over a WebSocket the ports are fixed by the ``ports`` query: port i has channel 2i for
data and 2i+1 for errors, and the first message on each is the port, 2 bytes little-endian. A
connection that cannot be made is reported on the error stream in the kubelet's and containerd's
words. The sim's "network namespace" of a pod is its own loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from .remotecommand import Dialect
from .spdy import SpdyStream

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
WEBSOCKET_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")  # and none at all
STREAM_TIMEOUT = 30.0  # seconds for the second stream of a pair to arrive
CLOSE_GRACE = 1.0  # containerd waits this long for the other direction once one has ended

Dial = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class PodNet:
    """Where a pod's ports are, and how its sandbox is named in the runtime's messages."""

    uid: str
    ip: str

    @property
    def sandbox(self) -> str:
        return hashlib.sha256(self.uid.encode()).hexdigest()

    @property
    def netns(self) -> str:
        return f"/var/run/netns/cni-{uuid.UUID(self.sandbox[:32])}"

    async def dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.ip, port, limit=256 * 1024)

    def error(self, port: int, err: OSError) -> str:
        """The kubelet's message when containerd could not connect (it tries IPv4, then IPv6)."""
        why = os.strerror(err.errno).lower() if err.errno else str(err)
        return (f"error forwarding port {port} to pod {self.sandbox}, uid : failed to execute portforward in network "
                f'namespace "{self.netns}": failed to connect to localhost:{port} inside namespace "{self.sandbox}", '
                f"IPv4: dial tcp4 {self.ip}:{port}: connect: {why} IPv6 dial tcp6: pods of the labkit simulator have "
                "no IPv6 address ")


def stream_error(headers: dict[str, str]) -> str | None:
    """Why the kubelet rejects a new stream, or None (its httpStreamReceived checks)."""
    port = headers.get("port", "")
    if not port:
        return '"port" header is required'
    if not port.isdigit() or int(port) > 65535:
        return f'unable to parse "{port}" as a port: strconv.ParseUint: parsing "{port}": invalid syntax'
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = headers.get("streamtype", "")
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return None


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                receive: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]]) -> None:
    """Copies both ways between the pod's connection and the client until one side ends, then gives the other
    direction CLOSE_GRACE to finish."""

    async def upstream() -> None:
        while data := await receive():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def downstream() -> None:
        while data := await reader.read(65536):
            await send(data)

    tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_GRACE)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# -- SPDY: stream pairs -------------------------------------------------------------------------------
@dataclass
class _Pair:
    request_id: str
    data: SpdyStream | None = None
    error: SpdyStream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class SpdyPortForward:
    """The kubelet's port-forward handler for one SPDY connection: pairs streams and forwards each pair."""

    def __init__(self, pod: PodNet) -> None:
        self.pod = pod
        self.pairs: dict[str, _Pair] = {}

    def accept(self, stream: SpdyStream) -> str | None:
        return stream_error(stream.headers)

    async def handle(self, stream: SpdyStream) -> None:
        request_id = self._request_id(stream)
        pair = self.pairs.get(request_id)
        created = pair is None
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id)
        kind = stream.headers["streamtype"]
        if getattr(pair, kind) is not None:
            if pair.error is not None:
                await pair.error.write(f"error processing stream for request {request_id}: {kind} stream already "
                                       "assigned".encode())
            return
        setattr(pair, kind, stream)
        if pair.data is not None and pair.error is not None:
            pair.complete.set()
            self.pairs.pop(request_id, None)
            await self._forward(pair.data, pair.error)
        elif created:
            try:
                await asyncio.wait_for(pair.complete.wait(), STREAM_TIMEOUT)
            except TimeoutError:
                self.pairs.pop(request_id, None)
                if pair.error is not None:
                    await pair.error.write(f"(conn=spdy, request={request_id}) timed out waiting for streams".encode())

    @staticmethod
    def _request_id(stream: SpdyStream) -> str:
        """The requestID header; old clients send none, and the kubelet guesses from consecutive stream ids."""
        rid = stream.headers.get("requestid")
        if rid:
            return rid
        return str(stream.id if stream.headers["streamtype"] == "error" else stream.id - 2)

    async def _forward(self, data: SpdyStream, error: SpdyStream) -> None:
        port = int(data.headers["port"])
        try:
            try:
                reader, writer = await self.pod.dial(port)
            except OSError as err:
                await error.write(self.pod.error(port, err).encode())
                return
            await relay(reader, writer, data.read, data.write)
        except ConnectionError:
            pass
        finally:
            for s in (data, error):
                with contextlib.suppress(ConnectionError):
                    await s.close()


# -- WebSocket: channels per port ---------------------------------------------------------------------
def query_ports(values: list[str]) -> list[int] | str:
    """The ports of a WebSocket port-forward (``?ports=80,8080`` or repeated), or the kubelet's error."""
    if not values:
        return 'query parameter "port" is required'
    ports = []
    for value in values:
        if not value:
            return 'query parameter "port" cannot be empty'
        for p in value.split(","):
            if not p.isdigit() or int(p) > 65535:
                return f'unable to parse "{value}" as a port: strconv.ParseUint: parsing "{p}": invalid syntax'
            if int(p) < 1:
                return f'port "{value}" must be > 0'
            ports.append(int(p))
    return ports


class WebSocketPortForward:
    """The kubelet's WebSocket port-forward: every port is connected at once, for one connection each."""

    def __init__(self, ws: web.WebSocketResponse, dialect: Dialect, pod: PodNet, ports: list[int]) -> None:
        self.ws, self.dialect, self.pod, self.ports = ws, dialect, pod, ports
        self.inbox: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]

    async def _send(self, channel: int, data: bytes) -> None:
        message = self.dialect.encode(channel, data)
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def run(self) -> None:
        for i, port in enumerate(self.ports):
            for channel in (2 * i, 2 * i + 1):
                await self._send(channel, port.to_bytes(2, "little"))
        forwards = [asyncio.ensure_future(self._forward(i, port)) for i, port in enumerate(self.ports)]
        reader = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait([asyncio.gather(*forwards), reader], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in [*forwards, reader]:
                t.cancel()
            await asyncio.gather(*forwards, reader, return_exceptions=True)
            await self.ws.close()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                channel, data = self.dialect.decode(msg.data)
                if channel >= 0 and channel % 2 == 0 and channel // 2 < len(self.inbox) and data:
                    self.inbox[channel // 2].put_nowait(data)
        for q in self.inbox:
            q.put_nowait(b"")

    async def _forward(self, i: int, port: int) -> None:
        try:
            reader, writer = await self.pod.dial(port)
        except OSError as err:
            await self._send(2 * i + 1, self.pod.error(port, err).encode())
            return

        async def send(data: bytes) -> None:
            await self._send(2 * i, data)

        with contextlib.suppress(ConnectionError):
            await relay(reader, writer, self.inbox[i].get, send)
