"""The remote command channels as SPDY streams: ``kubectl exec``/``attach`` with WebSockets turned off
(``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``) or from a kubectl older than 1.30.

The client opens one stream per channel (``streamType`` error, stdin, stdout, stderr, resize) and the
kubelet starts the command once all the streams the request asked for are there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .remotecommand import CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT, Dialect, Status, result_bytes
from .spdy import SpdyStream

CHANNELS = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}
STREAM_TIMEOUT = 30.0


class SpdyExecWire:
    """Collects the streams of one exec/attach, then serves as the session's Wire."""

    def __init__(self, dialect: Dialect, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        self.dialect = dialect
        wanted = {"error": True, "stdin": stdin, "stdout": stdout, "stderr": stderr,
                  "resize": tty and dialect.version >= 3}
        self.expected = {name for name, on in wanted.items() if on}
        self.streams: dict[int, SpdyStream] = {}
        self.ready = asyncio.Event()
        self._events: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    def accept(self, stream: SpdyStream) -> str | None:
        kind = stream.headers.get("streamtype", "")
        if kind not in CHANNELS:
            return f"unexpected stream type: {kind!r}"
        return None

    async def handle(self, stream: SpdyStream) -> None:
        channel = CHANNELS[stream.headers["streamtype"]]
        self.streams[channel] = stream
        if {CHANNELS[n] for n in self.expected} <= set(self.streams):
            self.ready.set()
        if channel in (STDIN, RESIZE):
            while data := await stream.read():
                self._events.put_nowait((channel, data))
            if channel == STDIN:
                self._events.put_nowait((CLOSE, bytes([STDIN])))

    async def wait_ready(self) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), STREAM_TIMEOUT)
        return self.ready.is_set()

    def connection_lost(self) -> None:
        self._events.put_nowait(None)

    async def send(self, channel: int, data: bytes) -> None:
        stream = self.streams.get(channel)
        if stream is not None:
            await stream.write(data)

    async def events(self) -> AsyncIterator[tuple[int, bytes]]:
        while (event := await self._events.get()) is not None:
            yield event

    async def finish(self, status: Status) -> None:
        data = result_bytes(status, self.dialect)
        if data and ERROR in self.streams:
            await self.streams[ERROR].write(data)
        for stream in self.streams.values():
            with contextlib.suppress(ConnectionError):
                await stream.close()
