"""Nexus on its own, outside the lab daemon: ``python -m labkit.nexus --home DIR``.

``--listen HOST:PORT`` picks the listener, ``--data-dir`` is where ``admin.password`` is written (as the
``sonatype/nexus3`` image's ``/nexus-data``) and ``--fresh`` starts as a new Nexus (its Maven repositories only):
the kind contract harness runs it for the ``sonatype/nexus3`` container. ``--offline`` uses the stand-in upstream.
Prints the endpoint (and the stand-in's URL) as one JSON line, serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..core.standalone import loopback_address, serve_until_signalled, standalone_context
from .component import Nexus


async def serve(home: Path, listen: tuple[str, int] | None = None, data_dir: Path | None = None,
                fresh: bool = False, offline: bool = False) -> None:
    ctx = standalone_context(home)
    if offline:
        ctx.settings["nexus_offline"] = True
    nexus = Nexus()
    nexus.name, nexus.title = "nexus", "Nexus Repository"
    nexus.bind, nexus.data_dir, nexus.fresh = listen, data_dir, fresh
    await serve_until_signalled(nexus, ctx, lambda: _announce(nexus))


async def _announce(nexus: Nexus) -> dict[str, object]:
    return {**dataclasses.asdict(nexus.endpoint()), "upstream": await nexus.describe_upstream()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.nexus", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--listen", type=loopback_address, help="loopback HOST:PORT (default: the lab's address plan)")
    parser.add_argument("--data-dir", type=Path, help="where admin.password is written (default: the state folder)")
    parser.add_argument("--fresh", action="store_true", help="as a new Nexus: the Maven repositories only")
    parser.add_argument("--offline", action="store_true", help="the stand-in upstream instead of pip's index")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.listen, args.data_dir, args.fresh, args.offline))
    sys.exit(0)
