"""``lab.docker``: the Docker Engine through the ``docker`` SDK, the same on every backend (the sim's Engine API on
the lab home's socket, or the laptop's Docker on kind)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.view import ProductView
from ..endpoints import DockerEndpoint

if TYPE_CHECKING:
    import docker
    import pandas as pd
    from docker.models.images import Image
    from matplotlib.figure import Figure


@dataclass
class BuildRun:
    """One ``docker build``: the image, its progress lines, how long it took and how many steps were cached."""

    image: Image
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cached(self) -> int:
        return sum(line.strip() == "---> Using cache" for line in self.log)

    @property
    def id(self) -> str:
        return str(self.image.id)


class DockerView(ProductView):
    @property
    def endpoint(self) -> DockerEndpoint:
        return self.lab.endpoints.get(DockerEndpoint)

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A ``docker.DockerClient`` on the lab's Docker Engine (what ``docker.from_env()`` gives with
        ``labkit env``'s ``DOCKER_HOST``)."""
        import docker

        return docker.DockerClient(base_url=self.endpoint.url, timeout=timeout)

    def registry_auth(self) -> dict[str, str] | None:
        """The lab registry's push credentials as the SDK's ``auth_config`` (None where pushes are anonymous)."""
        creds = self.lab.registry.credentials()
        return {"username": creds[0], "password": creds[1]} if creds else None

    def build(self, context: str | Path, tag: str, **kwargs: Any) -> BuildRun:
        """``client.images.build(path=context, tag=tag, **kwargs)``, timed, with its progress lines."""
        client = self.client()
        try:
            started = time.perf_counter()
            image, stream = client.images.build(path=str(context), tag=tag, **kwargs)
            log = [entry["stream"] for entry in stream if "stream" in entry]
            return BuildRun(image, log, time.perf_counter() - started)
        finally:
            client.close()

    def layers(self, image: str | Image) -> pd.DataFrame:
        """The image's steps, oldest first, with the size each added (``views.layer_frame``)."""
        from .views import layer_frame

        client = self.client()
        try:
            found = client.images.get(image) if isinstance(image, str) else image
            return layer_frame(found.history())
        finally:
            client.close()

    def plot_layers(self, image: str | Image) -> Figure:
        from .views import layer_plot

        name = image if isinstance(image, str) else (image.tags or [image.short_id])[0]
        return layer_plot(self.layers(image), title=f"{name}: layers and sizes")
