"""Argo CD on its own, outside the lab daemon, over any cluster's kubeconfig:
``python -m labkit.argocd --home DIR --kubeconfig FILE [--listen HOST:PORT]``.

The kind contract harness runs it as the ``argo-cd`` chart's pods (the API server and the controller), against
the cluster helm installs into; it prints its endpoint as one JSON line once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..core.standalone import loopback_address, serve_until_signalled, standalone_context
from ..endpoints import KubernetesEndpoint
from .component import ArgoCD


async def serve(home: Path, kubeconfig: Path, listen: tuple[str, int] | None) -> None:
    ctx = standalone_context(home)
    ctx.endpoints["kubernetes"] = KubernetesEndpoint("Kubernetes", "", kubeconfig=str(kubeconfig))
    argocd = ArgoCD()
    argocd.name, argocd.title, argocd.bind = "argocd", "Argo CD", listen
    await serve_until_signalled(argocd, ctx, lambda: dataclasses.asdict(argocd.endpoint()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.argocd", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for secrets and logs")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the cluster Argo CD runs in and deploys to")
    parser.add_argument("--listen", type=loopback_address, help="HOST:PORT on loopback (default: the lab's slot)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.kubeconfig.resolve(), args.listen))
    sys.exit(0)
