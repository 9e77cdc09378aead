"""Prometheus on its own, outside the lab daemon: ``python -m labkit.prometheus --home DIR --config-dir DIR``
(the kind harness' stand-in for kube-prometheus-stack's Prometheus, the benchmark, trying clients)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..core.standalone import loopback_address, serve_until_signalled, standalone_context
from .component import Prometheus


async def serve(home: Path, config_dir: Path | None, kubeconfig: str | None,
                listen: tuple[str, int] | None) -> None:
    """Start Prometheus, print its endpoint as one JSON line, serve until SIGTERM or SIGINT."""
    ctx = standalone_context(home)
    server = Prometheus(config_dir, kubeconfig, listen)
    server.name, server.title = "prometheus", "Prometheus"
    await serve_until_signalled(server, ctx, lambda: dataclasses.asdict(server.endpoint()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.prometheus", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--config-dir", type=Path, help="folder with prometheus.yml and its rule files "
                        "(default: the checkout's manifests/prometheus)")
    parser.add_argument("--kubeconfig", help="the API server for kubernetes_sd_configs")
    parser.add_argument("--listen", type=loopback_address, help="HOST:PORT (default: the lab's Prometheus slot)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.config_dir, args.kubeconfig, args.listen))
    sys.exit(0)
