"""The registry on its own, outside the lab daemon: ``python -m labkit.registry --home DIR``.

Used by the benchmark (a separate process, like the reference registry it is compared with) and handy
for trying clients against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..core.secrets import REGISTRY_PASSWORD
from ..core.standalone import serve_until_signalled, standalone_context
from .component import Registry

__all__ = ["main", "serve", "standalone_context"]


async def serve(home: Path) -> None:
    """Start the registry, print its endpoints as one JSON line, serve until SIGTERM or SIGINT."""
    ctx = standalone_context(home)
    registry = Registry()
    registry.name, registry.title = "registry", "Image registry (OCI distribution)"
    await serve_until_signalled(registry, ctx, lambda: {**dataclasses.asdict(registry.endpoint()),
                                                         "password": ctx.secrets.get(REGISTRY_PASSWORD)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.registry", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve()))
    sys.exit(0)
