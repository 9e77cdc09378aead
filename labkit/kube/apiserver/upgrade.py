"""Upgraded HTTP connections in aiohttp: WebSockets carrying channels or SPDY, and plain ``Upgrade: SPDY/3.1``.

A raw upgrade answers 101 itself, then takes the connection's bytes from aiohttp's protocol object
(the same hook aiohttp's own WebSocket support uses) and writes to its transport with back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from .remotecommand import CLOSE, ERROR, STDERR, STDOUT, Dialect, Status, result_bytes

MAX_MESSAGE = 16 * 1024 * 1024
READ_LIMIT = 1024 * 1024  # bytes buffered from the client before we stop reading


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" and \
        "upgrade" in request.headers.get("Connection", "").lower()


def is_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3.1") and \
        "upgrade" in request.headers.get("Connection", "").lower()


async def websocket(request: web.Request, protocol: str) -> web.WebSocketResponse:
    """Accepts the WebSocket handshake with ``protocol`` ("" for none)."""
    ws = web.WebSocketResponse(protocols=[protocol] if protocol else [], compress=False, max_msg_size=MAX_MESSAGE,
                               timeout=5.0)
    await ws.prepare(request)
    return ws


class ChannelWire:
    """The remote command channels over a WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, dialect: Dialect) -> None:
        self.ws = ws
        self.dialect = dialect

    async def open(self, stdout: bool, stderr: bool) -> None:
        """An empty message on the lowest writable channel tells the client the streams are ready."""
        await self.send(STDOUT if stdout else STDERR if stderr else ERROR, b"")

    async def send(self, channel: int, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("client went away")
        message = self.dialect.encode(channel, data)
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def events(self) -> AsyncIterator[tuple[int, bytes]]:
        async for msg in self.ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            channel, data = self.dialect.decode(msg.data)
            if channel == CLOSE and self.dialect.version < 5:
                continue
            yield channel, data

    async def finish(self, status: Status) -> None:
        """The result on the error channel, then the close handshake."""
        data = result_bytes(status, self.dialect)
        if data:
            await self.send(ERROR, data)
        await self.ws.close()


class WebSocketBytes:
    """A byte stream tunnelled in a WebSocket, one binary message per write (SPDY/3.1+portforward.k8s.io)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type != WSMsgType.BINARY:
                return b""  # close, error, or a text message, which the tunnel does not allow
            if msg.data:
                return msg.data

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("client went away")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()


class _Feed:
    """Stands in for aiohttp's payload parser: what the client sends after the 101 goes to a queue."""

    def __init__(self, raw: RawUpgrade) -> None:
        self.raw = raw

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.raw._received(data)
        return False, b""

    def feed_eof(self) -> None:
        self.raw._received(b"")


class RawUpgrade:
    """A connection upgraded to another protocol (SPDY/3.1) after our 101 response."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response  # the 101, which the handler returns
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffered = 0
        self._paused = False
        self._eof = False

    @classmethod
    async def accept(cls, request: web.Request, headers: dict[str, str]) -> RawUpgrade:
        resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", **headers})
        resp.force_close()
        await resp.prepare(request)
        raw = cls(request, resp)
        request.protocol.set_parser(_Feed(raw))  # type: ignore[arg-type]
        return raw

    def _received(self, data: bytes) -> None:
        if self._eof:
            return
        self._eof = not data
        self._queue.put_nowait(data)
        self._buffered += len(data)
        transport = self.request.transport
        if self._buffered > READ_LIMIT and transport is not None and not self._paused:
            self._paused = True
            transport.pause_reading()

    async def read(self) -> bytes:
        if self._eof and self._queue.empty():
            return b""
        data = await self._queue.get()
        self._buffered -= len(data)
        transport = self.request.transport
        if self._paused and self._buffered < READ_LIMIT // 2 and transport is not None:
            self._paused = False
            transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client went away")
        transport.write(data)
        await self.request.protocol._drain_helper()

    async def close(self) -> None:
        transport = self.request.transport
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()
