"""Elasticsearch on its own, outside the lab daemon: ``python -m labkit.logging --home DIR [--listen HOST:PORT]``.

Prints ``{"url": ..., "user": "elastic", "password": ...}`` as one JSON line once it serves, then serves until SIGTERM
or SIGINT. The kind harness stands in for the Elasticsearch release with it; the benchmark runs it as a process.
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

    def __init__(self, listen: tuple[str, int] | None = None) -> None:
        self.listen = listen

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.node = ElasticsearchNode(ctx.state_dir("logging") / "elasticsearch",
                                      self.listen or ctx.network.slot(ELASTICSEARCH),
                                      ctx.secrets.get(ELASTIC_PASSWORD), logger=ctx.logger("elasticsearch"))
        await self.node.start()

    async def stop(self) -> None:
        await self.node.stop()

    def endpoint(self) -> Endpoint:
        return Endpoint("Elasticsearch", self.node.url)

    def announce(self) -> dict[str, Any]:
        return {"url": self.node.url, "user": USER, "password": self.node.password}


async def serve(home: Path, listen: tuple[str, int] | None) -> None:
    ctx = standalone_context(home)
    es = Elasticsearch(listen)
    es.name, es.title = "logging", "Elasticsearch"
    await serve_until_signalled(es, ctx, es.announce)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.logging", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--listen", type=loopback_address, help="HOST:PORT on loopback (default: the lab's slot)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.listen))
    sys.exit(0)
