"""SPDY/3.1 as Kubernetes streams use it: frames, zlib header blocks, and a server-side session.

``kubectl port-forward`` (and ``exec`` from old clients) speak SPDY/3.1, either after a plain
``Upgrade: SPDY/3.1`` or tunnelled in a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``,
each binary message carrying SPDY bytes). The client opens every stream (odd ids) with a
SYN_STREAM whose headers say what the stream is for; the server answers SYN_REPLY and both
sides send DATA frames, FIN to half-close and RST_STREAM to abandon a stream. Header blocks are
compressed with one zlib context per direction, primed with the SPDY/3 dictionary. Like
moby/spdystream (the library both ends use), there is no flow control: WINDOW_UPDATE and
SETTINGS are read and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5
MAX_DATA = 32 * 1024  # bytes per DATA frame we send (the format allows 16 MiB)

_WORDS = (  # header names and values, each written with a 4-byte length; "|" separates them here
    "options|head|post|put|delete|trace|accept|accept-charset|accept-encoding|accept-language|accept-ranges|age|"
    "allow|authorization|cache-control|connection|content-base|content-encoding|content-language|content-length|"
    "content-location|content-md5|content-range|content-type|date|etag|expect|expires|from|host|if-match|"
    "if-modified-since|if-none-match|if-range|if-unmodified-since|last-modified|location|max-forwards|pragma|"
    "proxy-authenticate|proxy-authorization|range|referer|retry-after|server|te|trailer|transfer-encoding|upgrade|"
    "user-agent|vary|via|warning|www-authenticate|method|get|status|200 OK|version|HTTP/1.1|url|public|set-cookie|"
    "keep-alive|origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    """The zlib dictionary of SPDY/3 (section 2.6.10.1): length-prefixed header words, then common values."""
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS.split("|")) + _TAIL.encode()


DICTIONARY = _dictionary()


class SpdyError(Exception):
    """A frame that breaks the protocol; the session ends."""


# -- frames ---------------------------------------------------------------------------------------------
@dataclass
class Frame:
    """One SPDY frame: a control frame (``kind`` > 0) or a DATA frame (``kind`` == 0)."""

    kind: int
    flags: int = 0
    stream_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    status: int = 0  # RST_STREAM and GOAWAY
    ping_id: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class HeaderCodec:
    """Header blocks of one direction: ``{name: value}`` to compressed bytes and back.

    Names are lower case; several values of one name are joined by NUL, as on the wire.
    """

    def __init__(self) -> None:
        self._out = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._in = zlib.decompressobj(15, DICTIONARY)

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())
        return self._out.compress(raw) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._in.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"invalid header block: {exc}") from exc
        count, pos, out = _u32(raw, 0), 4, {}
        for _ in range(count):
            n = _u32(raw, pos)
            name = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            m = _u32(raw, pos)
            out[name] = raw[pos + 4:pos + 4 + m].decode()
            pos += 4 + m
        return out


def _u32(buf: bytes, pos: int) -> int:
    if pos + 4 > len(buf):
        raise SpdyError("truncated header block")
    return int.from_bytes(buf[pos:pos + 4], "big")


def encode(frame: Frame, codec: HeaderCodec) -> bytes:
    """The wire bytes of ``frame`` (header blocks go through ``codec``, in wire order)."""
    if frame.kind == 0:
        return struct.pack(">IB", frame.stream_id & 0x7FFFFFFF, frame.flags) + len(frame.data).to_bytes(3, "big") \
            + frame.data
    if frame.kind == SYN_STREAM:
        body = struct.pack(">IIBB", frame.stream_id, 0, 0, 0) + codec.encode(frame.headers)
    elif frame.kind in (SYN_REPLY, HEADERS):
        body = struct.pack(">I", frame.stream_id) + codec.encode(frame.headers)
    elif frame.kind in (RST_STREAM, GOAWAY):
        body = struct.pack(">II", frame.stream_id, frame.status)
    elif frame.kind == PING:
        body = struct.pack(">I", frame.ping_id)
    elif frame.kind == WINDOW_UPDATE:
        body = struct.pack(">II", frame.stream_id, frame.status)
    elif frame.kind == SETTINGS:
        body = struct.pack(">I", 0)
    else:
        raise SpdyError(f"cannot encode frame type {frame.kind}")
    return struct.pack(">HHB", 0x8000 | VERSION, frame.kind, frame.flags) + len(body).to_bytes(3, "big") + body


class FrameReader:
    """Cuts a byte stream into frames: ``feed`` bytes as they arrive, get the complete frames back."""

    def __init__(self, codec: HeaderCodec) -> None:
        self.codec = codec
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frames.append(self._frame(head, body))
        return frames

    def _frame(self, head: bytes, body: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame(0, flags, int.from_bytes(head[:4], "big") & 0x7FFFFFFF, data=body)
        version, kind = struct.unpack(">HH", head[:4])
        if version & 0x7FFF != VERSION:
            raise SpdyError(f"unsupported SPDY version {version & 0x7FFF}")
        if kind == SYN_STREAM:
            return Frame(kind, flags, _id(body, 0), self.codec.decode(body[10:]))
        if kind in (SYN_REPLY, HEADERS):
            return Frame(kind, flags, _id(body, 0), self.codec.decode(body[4:]))
        if kind in (RST_STREAM, GOAWAY, WINDOW_UPDATE):
            return Frame(kind, flags, _id(body, 0), status=int.from_bytes(body[4:8], "big"))
        if kind == PING:
            return Frame(kind, flags, ping_id=int.from_bytes(body[:4], "big"))
        return Frame(kind, flags, data=body)  # SETTINGS, and types SPDY/3.1 reserves: ignored


def _id(body: bytes, pos: int) -> int:
    if len(body) < pos + 4:
        raise SpdyError("truncated control frame")
    return int.from_bytes(body[pos:pos + 4], "big") & 0x7FFFFFFF


# -- the byte pipe a session runs over ------------------------------------------------------------------
class ByteChannel(Protocol):
    """A bidirectional byte stream: a raw upgraded connection, or a WebSocket tunnel."""

    async def read(self) -> bytes:
        """The next bytes, b"" at the end."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


# -- streams and the session ----------------------------------------------------------------------------
class SpdyStream:
    """One stream the client opened: its headers, what it sends us, and our half of it."""

    def __init__(self, session: SpdySession, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False  # the client sent FIN (or reset)
        self.local_closed = False  # we sent FIN (or reset)
        self.was_reset = False

    async def read(self) -> bytes:
        """The next DATA the client sent; b"" once it half-closed or reset the stream."""
        if self.remote_closed and self._incoming.empty():
            return b""
        return await self._incoming.get()

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.was_reset:
            raise ConnectionResetError(f"stream {self.id} is closed")
        for i in range(0, len(data), MAX_DATA):
            await self.session.send(Frame(0, 0, self.id, data=data[i:i + MAX_DATA]))

    async def close(self) -> None:
        """Half-close: FIN, nothing more from us."""
        if not (self.local_closed or self.was_reset):
            self.local_closed = True
            await self.session.send(Frame(0, FLAG_FIN, self.id))
            self.session.forget(self)

    async def reset(self, status: int = CANCEL) -> None:
        if not self.was_reset:
            self._remote_end(reset=True)
            self.local_closed = True
            await self.session.send(Frame(RST_STREAM, 0, self.id, status=status))

    def _remote_data(self, data: bytes, fin: bool) -> None:
        if data and not self.remote_closed:
            self._incoming.put_nowait(data)
        if fin:
            self._remote_end()

    def _remote_end(self, reset: bool = False) -> None:
        if reset:
            self.was_reset = True
            self.local_closed = True
        if not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(b"")
        self.session.forget(self)


StreamAcceptor = Callable[[SpdyStream], str | None]  # an error message rejects the stream
StreamHandler = Callable[[SpdyStream], Awaitable[None]]


class SpdySession:
    """The server end of a SPDY/3.1 connection: accepts the client's streams and runs a handler for each."""

    def __init__(self, channel: ByteChannel, accept: StreamAcceptor, handle: StreamHandler) -> None:
        self.channel = channel
        self.accept = accept
        self.handle = handle
        self._codec_out = HeaderCodec()
        self._reader = FrameReader(HeaderCodec())
        self._streams: dict[int, SpdyStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.closed = False

    async def send(self, frame: Frame) -> None:
        async with self._lock:  # header compression and the wire keep one order
            if self.closed:
                raise ConnectionResetError("SPDY connection closed")
            await self.channel.write(encode(frame, self._codec_out))

    def forget(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._streams.pop(stream.id, None)

    async def run(self) -> None:
        """Serve until the client goes away; then every stream ends and every handler is cancelled."""
        try:
            while True:
                data = await self.channel.read()
                if not data:
                    break
                for frame in self._reader.feed(data):
                    if not await self._dispatch(frame):
                        return
        except (SpdyError, ConnectionError):
            with contextlib.suppress(Exception):
                await self.send(Frame(GOAWAY, 0, 0, status=PROTOCOL_ERROR))
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        self.closed = True
        for stream in list(self._streams.values()):
            stream._remote_end(reset=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.channel.close()

    async def _dispatch(self, frame: Frame) -> bool:
        if frame.kind == SYN_STREAM:
            await self._open(frame)
        elif frame.kind == 0:
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                stream._remote_data(frame.data, frame.fin)
        elif frame.kind == RST_STREAM:
            stream = self._streams.pop(frame.stream_id, None)
            if stream is not None:
                stream._remote_end(reset=True)
        elif frame.kind == HEADERS:
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                stream.headers.update(frame.headers)
                stream._remote_data(b"", frame.fin)
        elif frame.kind == PING and frame.ping_id % 2 == 1:  # the client's ping: echo it
            await self.send(frame)
        elif frame.kind == GOAWAY:
            return False
        return True

    async def _open(self, frame: Frame) -> None:
        if frame.stream_id in self._streams or frame.stream_id % 2 == 0:
            await self.send(Frame(RST_STREAM, 0, frame.stream_id, status=PROTOCOL_ERROR))
            return
        stream = SpdyStream(self, frame.stream_id, frame.headers)
        self._streams[stream.id] = stream
        if frame.fin:
            stream._remote_end()
        refused = self.accept(stream)
        if refused is not None:
            await stream.reset()
            return
        await self.send(Frame(SYN_REPLY, 0, stream.id))
        task = asyncio.get_running_loop().create_task(self.handle(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
