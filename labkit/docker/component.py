"""The Docker Engine API as a lab component: a unix socket in the lab home (``DOCKER_HOST=unix://…/docker.sock``),
mode 0600, serving what the ``docker`` SDK needs for the chapter (see ``engine``, ``system``, ``images``,
``build``, ``distribution``, ``containers``) over the lab's image builder and a local image store under
``ctx.state_dir("docker")``. It pushes to and pulls from the lab registry (and other loopback registries)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.component import Component, Context, Health
from ..core.http import Listeners, api_app
from ..endpoints import DockerEndpoint, RegistryEndpoint
from .build import BuildRoutes
from .containers import Containers
from .daemon import Daemon
from .distribution import DistributionRoutes
from .engine import fallback, render
from .images import ImageRoutes
from .store import ImageStore
from .system import SystemRoutes

MAX_CONTEXT = 8 * 1024**3  # a build context is streamed to disk: this bounds a declared Content-Length only


def mirrors(ctx: Context) -> dict[str, str]:
    """Registry hosts in image names → the lab registry's URL: its push name (``127.A.0.x:5000``) and the name
    pods use (``localhost:5001``)."""
    registry = ctx.endpoints.get("registry")
    if not isinstance(registry, RegistryEndpoint):
        return {}
    return {name: registry.url for name in (registry.push, registry.pull) if name}


class DockerEngine(Component):
    """A Docker daemon stand-in: containers are local processes, images come from labkit's builder."""

    async def start(self, ctx: Context) -> None:
        root = ctx.state_dir(self.name or "docker")
        shutil.rmtree(root / "tmp", ignore_errors=True)  # build contexts a killed daemon left
        (root / "tmp").mkdir()
        self.socket: Path = ctx.paths.docker_socket
        self.daemon = Daemon(root, ImageStore(root), mirrors(ctx))
        self.daemon.containers = Containers(self.daemon)
        app = api_app(self.name or "docker", render_error=render, max_body=MAX_CONTEXT,
                      logger=ctx.logger(self.name or "docker"))
        for routes in (SystemRoutes(self.daemon), ImageRoutes(self.daemon), BuildRoutes(self.daemon),
                       DistributionRoutes(self.daemon), self.daemon.containers):
            routes.install(app)
        app.router.add_route("*", "/{tail:.*}", fallback)
        self.listeners = Listeners(app, [], sockets=[self.socket])
        await self.listeners.start()

    async def stop(self) -> None:
        assert self.daemon.containers is not None
        await self.daemon.containers.close()
        await self.listeners.stop()
        self.daemon.close()

    async def reset(self) -> None:
        """Forget containers, images and the build cache (its steps, the unpacked root filesystems)."""
        assert self.daemon.containers is not None
        self.daemon.containers.wipe()
        self.daemon.store.wipe()
        for folder in ("steps", "oci", "rootfs"):
            shutil.rmtree(self.daemon.root / folder, ignore_errors=True)

    def endpoint(self) -> DockerEndpoint:
        return DockerEndpoint(self.title or "Docker Engine", f"unix://{self.socket}")

    async def health(self) -> Health:
        ok = self.socket.exists()
        return Health(ok, f"{len(self.daemon.store.images)} images, "
                          f"{len(self.daemon.containers.all) if self.daemon.containers else 0} containers"
                      if ok else f"no socket at {self.socket}")
