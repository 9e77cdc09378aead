"""The harness's "kind" Docker network of one cluster: names and published ports, as TCP relays.

Run as ``python -m tests.backends.kind.harness.network STATE CLUSTER`` by ``kind create cluster``; it
reads ``clusters/CLUSTER/network.json``, a list of listeners, each relaying to a target that is looked
up at connection time, as Docker resolves a container's name when a client connects:

* ``{"container": NAME, "port": P}``: a compose container on the network (the registry that containerd's
  ``hosts.toml`` names), wherever the harness runs that container's port P; refused while it is not running;
* ``{"node": CONTAINER, "address": [HOST, PORT]}``: a node container's port (kind's ``extraPortMappings``),
  on the sim node behind it; refused while that node container is stopped;
* ``{"nodeport": P}``: a node's own ``localhost:P`` (containerd's ``hosts.toml`` naming a NodePort, which
  kube-proxy serves on a node's localhost): port P of a running sim node.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from labkit.core.files import read_json

from . import containers
from .state import State


def resolve(state: State, cluster: str, target: dict[str, Any]) -> tuple[str, int] | None:
    """Where a connection to ``target`` goes now, or None when nothing answers there."""
    if "container" in target:
        return containers.resolve(state, target["container"], int(target["port"]))
    info = state.cluster(cluster) or {}
    if "nodeport" in target:
        stopped = {info["nodes"][c]["node"] for c in info.get("stopped") or [] if c in info.get("nodes", {})}
        running = [a for n, a in (info.get("addresses") or {}).items() if n not in stopped]
        return (running[0], int(target["nodeport"])) if running else None
    if target["node"] in (info.get("stopped") or []):
        return None
    return target["address"][0], int(target["address"][1])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def _relay(state: State, cluster: str, target: dict[str, Any], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    address = resolve(state, cluster, target)
    try:
        if address is None:
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*address)
        except OSError:
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
    finally:
        writer.close()


async def serve(state: State, cluster: str) -> None:
    """Listen as ``network.json`` says until SIGTERM."""
    listeners = read_json(state.cluster_dir(cluster) / "network.json", []) or []
    servers = []
    for item in listeners:
        target = item["target"]

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, target: dict[str, Any] = target) -> None:
            await _relay(state, cluster, target, r, w)

        servers.append(await asyncio.start_server(handle, *item["listen"]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"kind network of {cluster}: {len(servers)} listener(s)", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    state, cluster = State(Path(argv[0])), argv[1]
    asyncio.run(serve(state, cluster))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
