"""A component's Context outside the lab daemon: a lab home of its own, for a product run alone
(``python -m labkit.registry``, ``python -m labkit.gitlab``) and for tests that start one component."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .component import Component, Context
from .network import Network, is_loopback
from .paths import LabPaths
from .procs import Supervisor
from .secrets import Secrets
from .tls import LabCA


def standalone_context(home: Path) -> Context:
    """A Context over a lab home of its own (state, secrets, network choices, logs)."""
    paths = LabPaths(home).ensure()
    return Context(paths=paths, network=Network(paths.network, home), secrets=Secrets(paths.secrets),
                   ca=LabCA(paths.tls), supervisor=Supervisor(paths.children, paths.logs))


async def serve_until_signalled(component: Component, ctx: Context, announce: Callable[[], dict[str, Any]]) -> None:
    """Start ``component``, print ``announce()`` (its endpoints, as one JSON line), serve until SIGTERM or SIGINT,
    then stop it."""
    await component.start(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(await _maybe_await(announce())), flush=True)
    try:
        await stop.wait()
    finally:
        await component.stop()


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def loopback_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` on loopback, for a ``--listen`` option (argparse type)."""
    host, _, port = text.rpartition(":")
    if not is_loopback(host) or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text}: a loopback HOST:PORT")
    return host, int(port)
