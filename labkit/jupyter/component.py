"""JupyterLab as a lab component: serves notebooks/ on loopback with a token."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..core.checkout import Checkout
from ..core.component import Context, ProcessComponent


def notebooks_dir() -> Path:
    """The workshop's notebooks: ``$LABKIT_NOTEBOOKS`` or the checkout's notebooks/."""
    env = os.environ.get("LABKIT_NOTEBOOKS")
    return Path(env) if env else Checkout.find().root / "notebooks"


class JupyterLab(ProcessComponent):
    name = "jupyterlab"
    title = "JupyterLab (the workshop notebooks)"

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.host, self.port = ctx.network.listener("jupyterlab", ctx.network.address(0, 1), 8888)
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

    def endpoints(self) -> dict[str, Any]:
        base = f"http://{self.host}:{self.port}"
        return {"url": f"{base}/lab/tree/00-welcome.ipynb?token={self.token}", "api": f"{base}/api"}
