"""Loopback address and port allocation for one lab.

On Linux the whole of 127.0.0.0/8 is loopback, so each lab takes a block
``127.A.0.0/16`` and gives every listener and pod its own address with the
product's usual port. Elsewhere everything is on 127.0.0.1 with a free port
per listener. Either way the choice is persisted, so endpoints survive a
daemon restart.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import socket
import sys
from pathlib import Path

from .addresses import CONTROL, Slot
from .files import read_json, write_json


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def per_address_loopback() -> bool:
    """True where any 127.x address can be bound without configuration."""
    if not sys.platform.startswith("linux"):
        return False
    return port_free("127.83.0.1", 0)


class Network:
    """Persisted (host, port) choices for the listeners of one lab."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        data = read_json(path, None)
        if data is None:
            data = {"block": self._pick_block(home), "ports": {}}
            write_json(path, data)
        self._data = data

    @staticmethod
    def _pick_block(home: Path) -> str | None:
        if not per_address_loopback():
            return None
        seed = int(hashlib.sha256(str(home).encode()).hexdigest(), 16)
        for i in range(240):
            block = f"127.{10 + (seed + i) % 240}"
            if port_free(f"{block}.{CONTROL.third}.{CONTROL.fourth}", CONTROL.port):
                return block
        return None

    @property
    def per_address(self) -> bool:
        return self._data["block"] is not None

    def address(self, third: int, fourth: int) -> str:
        """The address ``127.A.third.fourth`` of this lab's block (127.0.0.1 without one)."""
        if not self.per_address:
            return "127.0.0.1"
        return f"{self._data['block']}.{third}.{fourth}"

    def slot(self, slot: Slot) -> tuple[str, int]:
        """Host and port of a listener of the address plan (``core.addresses``)."""
        return self.listener(slot.name, self.address(slot.third, slot.fourth), slot.port)

    def listener(self, name: str, host: str, port: int) -> tuple[str, int]:
        """Host and port for listener ``name``: the usual port on its own address,
        or a free port on 127.0.0.1; the same on every call and restart."""
        if not is_loopback(host):
            raise ValueError(f"{name}: refusing to listen on non-loopback address {host}")
        known = self._data["ports"].get(name)
        if known and known[0] == host:
            return host, known[1]
        if not (self.per_address and port_free(host, port)):
            port = free_port(host)
        self._data["ports"][name] = [host, port]
        write_json(self.path, self._data)
        return host, port
