"""Jaeger on its own, outside the lab daemon: ``python -m labkit.mesh.jaeger --home DIR`` prints its endpoints as
one JSON line and serves until SIGTERM/SIGINT (used by the durability test, which SIGKILLs it, and the benchmark)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ...core.standalone import serve_until_signalled, standalone_context
from .component import Jaeger

__all__ = ["main", "serve"]


async def serve(home: Path, retention: float | None = None) -> None:
    ctx = standalone_context(home)
    if retention is not None:
        ctx.settings["jaeger_retention"] = retention
    jaeger = Jaeger()
    jaeger.name = "jaeger"
    await serve_until_signalled(jaeger, ctx, lambda: dataclasses.asdict(jaeger.endpoint()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.mesh.jaeger", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--retention", type=float, help="seconds spans are kept (default 72 h)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.retention))
    sys.exit(0)
