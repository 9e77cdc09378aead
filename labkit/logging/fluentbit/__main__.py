"""``python -m labkit.logging.fluentbit -c CONFIG --node NAME --node-dir DIR [--kubeconfig K] [--listen H:P]``:
one node's collector as a process; SIGTERM or SIGINT stops it after delivering what it holds."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .collector import Collector
from .config import ConfigError


async def run(args: argparse.Namespace) -> int:
    listen = None
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        listen = (host, int(port))
    collector = Collector(Path(args.config), args.node, Path(args.node_dir),
                          Path(args.kubeconfig) if args.kubeconfig else None, listen)
    try:
        await collector.start()
    except ConfigError as err:
        print(f"[error] {err}", file=sys.stderr, flush=True)
        return 1
    print(f"[info] [fluent bit] node {args.node}: started, monitoring API {collector.url or 'off'}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await collector.stop()
    print("[info] [fluent bit] stopped", flush=True)
    return 0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m labkit.logging.fluentbit")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--node-dir", required=True, help="the node's /var/log")
    p.add_argument("--kubeconfig")
    p.add_argument("--listen", help="host:port of the monitoring API")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
