"""JupyterLab as a lab component: serves notebooks/ on loopback with a token."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..core.addresses import JUPYTER
from ..core.checkout import Checkout
from ..core.component import Context, ProcessComponent
from ..endpoints import JupyterEndpoint


def notebooks_dir() -> Path:
    """The workshop's notebooks: ``$LABKIT_NOTEBOOKS`` or the checkout's notebooks/."""
    env = os.environ.get("LABKIT_NOTEBOOKS")
    return Path(env) if env else Checkout.find().root / "notebooks"


class JupyterLab(ProcessComponent):
    """JupyterLab serving the workshop's notebooks, with the lab's home in its environment."""

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.host, self.port = ctx.network.slot(JUPYTER)
        self.token = ctx.secrets.get("jupyter-token")
        argv = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            f"--ServerApp.ip={self.host}", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={notebooks_dir()}",
            f"--IdentityProvider.token={self.token}",
            "--LabApp.default_url=/lab/tree/00-welcome.ipynb",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self.health_url = f"http://{self.host}:{self.port}/api"
        self.spawn(ctx, argv, env={**os.environ, "LABKIT_HOME": str(ctx.paths.home)})
        await self.wait_ready(60)  # JupyterLab imports a lot on its first start

    def endpoint(self) -> JupyterEndpoint:
        base = f"http://{self.host}:{self.port}"
        return JupyterEndpoint(self.title, f"{base}/lab/tree/00-welcome.ipynb?token={self.token}", f"{base}/api")
