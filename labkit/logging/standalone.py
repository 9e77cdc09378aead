"""Elasticsearch on its own, outside the lab daemon: ``python -m labkit.logging --home DIR [--listen HOST:PORT]``.

With ``--tls NAMES`` it serves HTTPS (as Elasticsearch 8 does) with a certificate of the home's CA for its address
and those names. Prints ``{"url": ..., "user": "elastic", "password": ...}`` as one JSON line once it serves, then
serves until SIGTERM or SIGINT. The kind harness stands in for the Elasticsearch release with it; the benchmark
runs it as a process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from ..core.addresses import ELASTICSEARCH
from ..core.component import Component, Context
from ..core.standalone import loopback_address, serve_until_signalled, standalone_context
from ..endpoints import Endpoint
from .component import ELASTIC_PASSWORD
from .elasticsearch.server import USER, ElasticsearchNode


class Elasticsearch(Component):
    """Only the Elasticsearch node of the logging product, on ``listen`` or the lab's Elasticsearch slot."""

    def __init__(self, listen: tuple[str, int] | None = None, tls_names: list[str] | None = None) -> None:
        self.listen = listen
        self.tls_names = tls_names or []

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        address = self.listen or ctx.network.slot(ELASTICSEARCH)
        tls = ctx.ca.server_context("elasticsearch", [address[0], *self.tls_names]) if self.tls_names else None
        self.node = ElasticsearchNode(ctx.state_dir("logging") / "elasticsearch", address,
                                      ctx.secrets.get(ELASTIC_PASSWORD), logger=ctx.logger("elasticsearch"),
                                      ssl_context=tls)
        await self.node.start()

    async def stop(self) -> None:
        await self.node.stop()

    def endpoint(self) -> Endpoint:
        return Endpoint("Elasticsearch", self.node.url)

    def announce(self) -> dict[str, Any]:
        return {"url": self.node.url, "user": USER, "password": self.node.password}


async def serve(home: Path, listen: tuple[str, int] | None, tls_names: list[str] | None = None) -> None:
    ctx = standalone_context(home)
    es = Elasticsearch(listen, tls_names)
    es.name, es.title = "logging", "Elasticsearch"
    await serve_until_signalled(es, ctx, es.announce)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.logging", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--listen", type=loopback_address, help="HOST:PORT on loopback (default: the lab's slot)")
    parser.add_argument("--tls", metavar="NAME,...", default="",
                        help="serve HTTPS with a certificate of the home's CA (tls/ca.crt) for these host names too")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.listen, [n for n in args.tls.split(",") if n]))
    sys.exit(0)
