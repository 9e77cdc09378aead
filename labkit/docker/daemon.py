"""The state one simulated Docker daemon's routes share: its image store, its containers, its worker threads,
and where the registries it pushes to and pulls from listen."""

from __future__ import annotations

import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.network import is_loopback
from .engine import SIM
from .store import ImageStore

if TYPE_CHECKING:
    from .containers import Containers


@dataclass
class Daemon:
    root: Path  # ctx.state_dir("docker")
    store: ImageStore
    mirrors: dict[str, str] = field(default_factory=dict)  # registry host in image names -> its base URL
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="docker-daemon"))
    containers: Containers | None = None

    def registry_url(self, host: str) -> str:
        """The base URL of the registry an image name's host names; the sim reaches loopback registries only
        (over HTTP: Docker treats 127.0.0.0/8 and localhost registries as insecure ones)."""
        if host in self.mirrors:
            return self.mirrors[host]
        hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
        if hostname == "localhost" or is_loopback(hostname):
            return f"http://{host}"
        raise LookupError(f"{host}: {SIM} reaches only registries on this machine's loopback addresses "
                          f"({', '.join(self.mirrors) or 'none configured'}); Docker Hub and remote registries are "
                          "not supported")

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
