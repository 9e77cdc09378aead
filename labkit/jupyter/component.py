"""JupyterLab as a lab component: serves the attendee's working copies of the notebooks on loopback with a token."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..core.addresses import JUPYTER
from ..core.checkout import Checkout
from ..core.component import Context, ProcessComponent
from ..endpoints import DockerEndpoint, JupyterEndpoint, RegistryEndpoint


def notebooks_dir() -> Path:
    """The workshop's tracked notebooks: ``$LABKIT_NOTEBOOKS`` or the checkout's notebooks/."""
    env = os.environ.get("LABKIT_NOTEBOOKS")
    return Path(env) if env else Checkout.find().root / "notebooks"


class JupyterLab(ProcessComponent):
    """JupyterLab on the lab's workspace (``labkit.jupyter.workspace``), configured by ``labkit.jupyter.config``."""

    async def start(self, ctx: Context) -> None:
        from .config import FIRST_NOTEBOOK, configure
        from .workspace import Workspace

        self.ctx = ctx
        self.host, self.port = ctx.network.slot(JUPYTER)
        self.token = ctx.secrets.get("jupyter-token")
        self.first = FIRST_NOTEBOOK
        for line in Workspace.of(ctx.paths.workspace).sync():
            ctx.logger(self.name).info("workspace: %s", line)
        registry = ctx.endpoints.get("registry")
        docker = ctx.endpoints.get("docker")
        env = configure(ctx.paths, registry if isinstance(registry, RegistryEndpoint) else None,
                        docker if isinstance(docker, DockerEndpoint) else None)
        argv = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            f"--ServerApp.ip={self.host}", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self.health_url = f"http://{self.host}:{self.port}/api"
        self.spawn(ctx, argv, env=env)
        await self.wait_ready(60)  # JupyterLab imports a lot on its first start

    def endpoint(self) -> JupyterEndpoint:
        base = f"http://{self.host}:{self.port}"
        return JupyterEndpoint(self.title, f"{base}/lab/tree/{self.first}?token={self.token}", f"{base}/api")
