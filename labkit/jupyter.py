"""JupyterLab as a lab component: serves notebooks/ on loopback with a token."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .core.component import Component, Context, Health


def notebooks_dir() -> Path:
    """The workshop's notebooks: ``$LABKIT_NOTEBOOKS`` or the checkout's notebooks/."""
    env = os.environ.get("LABKIT_NOTEBOOKS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"


class JupyterLab(Component):
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
        env = {**os.environ, "LABKIT_HOME": str(ctx.paths.home)}
        ctx.supervisor.start(self.name, argv, env=env)
        for _ in range(600):  # up to 60 s: JupyterLab imports a lot on first start
            if (await self.health()).ok:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"JupyterLab did not start; see {ctx.paths.logs / 'jupyterlab.log'}")

    async def stop(self) -> None:
        await self.ctx.supervisor.stop(self.name)

    def endpoints(self) -> dict[str, Any]:
        base = f"http://{self.host}:{self.port}"
        return {"url": f"{base}/lab/tree/00-welcome.ipynb?token={self.token}", "api": f"{base}/api"}

    async def health(self) -> Health:
        def probe() -> bool:
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/api", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        ok = await asyncio.to_thread(probe)
        return Health(ok, "serving" if ok else "not answering")
