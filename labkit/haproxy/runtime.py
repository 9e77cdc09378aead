"""HAProxy's Runtime API from this machine: a Unix socket on the sim, a published TCP port on kind."""

from __future__ import annotations

import socket
import urllib.parse


def runtime_command(address: str, command: str, timeout: float = 5.0) -> str:
    """One command (``show stat``, ``set server shop-gateway/agent-1 state drain``) on the Runtime API at
    ``address`` (``unix:///path/runtime.sock`` or ``tcp://127.0.0.1:9999``); HAProxy's answer as text."""
    url = urllib.parse.urlsplit(address)
    if url.scheme == "unix":
        family, target = socket.AF_UNIX, url.path
    elif url.scheme == "tcp" and url.hostname and url.port:
        family, target = socket.AF_INET, (url.hostname, url.port)
    else:
        raise ValueError(f"not a Runtime API address: {address!r} (unix:///path or tcp://host:port)")
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(target)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()
