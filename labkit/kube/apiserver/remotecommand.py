"""The remote command protocols of ``pods/exec`` and ``pods/attach``: channels, Status results, the session loop.

Over a WebSocket every message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (the
result), 4 resize (``{"Width": .., "Height": ..}``). ``v5.channel.k8s.io`` (kubectl >= 1.30, the
Python client) adds 255: ``[255, n]`` closes channel n, which is how stdin reaches its end. v4 writes
the result as a v1 Status (exit code in a ``NonZeroExitCode`` Status, cause ``ExitCode``), older
versions as plain text; the ``base64.`` variants send text messages, the channel as an ASCII digit.
In a real cluster v5 is served by the API server, which translates it to SPDY towards the kubelet
and wraps what the kubelet reports once more; v4 and older go to the kubelet as they are. This
module keeps both shapes (``kubelet_result`` and ``apiserver_result``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
V4_BASE64, V1, V1_BASE64 = "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"
# What the API server (v5) and the kubelet's WebSocket server (the rest, "" meaning no subprotocol) accept.
WEBSOCKET_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
# What the kubelet's SPDY server accepts in X-Stream-Protocol-Version, best first.
SPDY_PROTOCOLS = (V4, "v3.channel.k8s.io", "v2.channel.k8s.io", V1)

Status = dict[str, Any]


@dataclass(frozen=True)
class Dialect:
    """A negotiated channel protocol: its version (1 to 5) and whether messages are base64 text."""

    name: str

    @property
    def version(self) -> int:
        head = self.name.split(".", 1)[0]
        return int(head[1:]) if head.startswith("v") and head[1:].isdigit() else 1

    @property
    def base64(self) -> bool:
        return "base64." in self.name

    def encode(self, channel: int, data: bytes) -> bytes | str:
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes([channel]) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes]:
        """(channel, payload) of a client message; text messages carry bytes too (the Python client's stdin)."""
        raw = message.encode() if isinstance(message, str) else message
        if not raw:
            return -1, b""
        if self.base64:
            return raw[0] - ord("0"), base64.b64decode(raw[1:])
        return raw[0], raw[1:]


def negotiate(offered: list[str], supported: tuple[str, ...] = WEBSOCKET_PROTOCOLS) -> str | None:
    """The client's first offered protocol we support ("" when it offered none), or None."""
    if not offered:
        return ""
    return next((p for p in offered if p in supported), None)


def offered_protocols(header: str) -> list[str]:
    return [p.strip() for p in header.split(",") if p.strip()]


# -- results --------------------------------------------------------------------------------------------
def success() -> Status:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, message: str) -> Status:
    """A command that ended with a non-zero exit code, as the kubelet's ServeExec reports it."""
    return {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {message}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error(message: str) -> Status:
    """apierrors.NewInternalError."""
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


def exit_code(status: Status) -> int | None:
    if status.get("reason") != "NonZeroExitCode":
        return None
    return int(status["details"]["causes"][0]["message"])


def apiserver_result(kubelet: Status) -> Status:
    """What the API server's v5 translator reports for the kubelet's result: exit codes re-worded as client-go
    words them, any other failure wrapped in one more InternalError."""
    code = exit_code(kubelet)
    if code is not None:
        return exit_status(code, f"command terminated with exit code {code}")
    if kubelet["status"] == "Success":
        return success()
    return internal_error(kubelet["message"])


def result_bytes(status: Status, dialect: Dialect) -> bytes:
    """The error channel's content: a Status (v4+), or before v4 the message of a failure and nothing on success."""
    if dialect.version >= 4:
        return json.dumps(status, separators=(",", ":")).encode()
    return b"" if status["status"] == "Success" else status["message"].encode()


# -- the session loop -----------------------------------------------------------------------------------
class Session(Protocol):
    """A process the client is connected to: an exec'd command, or an attached container."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(STDOUT or STDERR, bytes) until the process is done."""
        ...

    async def result(self) -> Status:
        """The kubelet's Status once the output has ended."""
        ...

    async def stop(self) -> None:
        """The client went away."""
        ...


class Wire(Protocol):
    """The client's end: channels over a WebSocket, or SPDY streams."""

    async def send(self, channel: int, data: bytes) -> None: ...

    def events(self) -> AsyncIterator[tuple[int, bytes]]:
        """What the client sends: (channel, data); (CLOSE, bytes([n])) when it closes channel n."""
        ...

    async def finish(self, status: Status) -> None: ...


def resizes(data: bytes) -> list[tuple[int, int]]:
    """The terminal sizes in a resize message (one or more JSON objects)."""
    decoder, text, pos, out = json.JSONDecoder(), data.decode(errors="replace"), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        if isinstance(obj, dict):
            out.append((int(obj.get("Width") or 0), int(obj.get("Height") or 0)))
    return out


async def _client_input(wire: Wire, session: Session) -> None:
    """Feeds what the client sends to the session; stops the session when the client is gone."""
    try:
        async for channel, data in wire.events():
            if channel == STDIN:
                await session.write_stdin(data)
            elif channel == RESIZE:
                for width, height in resizes(data):
                    session.resize(width, height)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                await session.close_stdin()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    await session.stop()


async def serve(wire: Wire, session: Session, translate: bool) -> Status:
    """Connects the client to the session until the process is done; sends and returns the result."""
    feeder = asyncio.get_running_loop().create_task(_client_input(wire, session))
    try:
        async for channel, data in session.output():
            with contextlib.suppress(ConnectionError):
                await wire.send(channel, data)
        status = await session.result()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    status = apiserver_result(status) if translate else status
    with contextlib.suppress(ConnectionError):
        await wire.finish(status)
    return status
