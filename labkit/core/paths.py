"""Where a lab keeps its files: everything lives under one home folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs


def machine_cache() -> Path:
    """Content-addressed caches every lab of this user shares (built steps, unpacked layers): ``$LABKIT_CACHE``
    or the user cache folder."""
    return Path(os.environ.get("LABKIT_CACHE") or platformdirs.user_cache_dir("labkit"))


def default_home() -> Path:
    """The lab home: ``$LABKIT_HOME`` or ``<user data dir>/labkit/default``."""
    env = os.environ.get("LABKIT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("labkit")) / "default"


def socket_path(path: Path) -> Path:
    """``path`` for a unix socket, or, where it is too long for one (108 bytes on Linux, 104 on macOS; HAProxy takes
    97 at most), a file of the same name in a folder of its own, named after ``path``, under the user's runtime
    folder (or the temp folder); the server makes that folder (mode 0700)."""
    if len(os.fsencode(path)) <= 97:
        return path
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / f"labkit-{hashlib.sha256(os.fsencode(path)).hexdigest()[:16]}" / path.name


@dataclass(frozen=True)
class LabPaths:
    """The named files and folders of one lab home."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> LabPaths:
        return cls(Path(home).expanduser().resolve() if home else default_home())

    @property
    def endpoints(self) -> Path:
        """Written by the backend once the lab is ready: where everything listens."""
        return self.home / "endpoints.json"

    @property
    def state(self) -> Path:
        """Component state (stores, blobs); wiped by ``labkit reset``."""
        return self.home / "state"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets.json"

    @property
    def network(self) -> Path:
        return self.home / "network.json"

    @property
    def tls(self) -> Path:
        return self.home / "tls"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def progress(self) -> Path:
        """Learner check results; kept across resets."""
        return self.home / "progress.sqlite"

    @property
    def startup(self) -> Path:
        """One line: what the daemon is doing while it starts (``labkit up`` shows it)."""
        return self.home / "startup.txt"

    @property
    def settings(self) -> Path:
        """Lab settings: what ``labkit up --jupyter`` asks for, products to skip, registry mirrors (sim)."""
        return self.home / "settings.json"

    @property
    def docker_socket(self) -> Path:
        """The sim's Docker Engine API (``DOCKER_HOST=unix://<this>``), in the lab home where the path is short
        enough (see ``socket_path``)."""
        return socket_path(self.home / "docker.sock")

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def workspace(self) -> Path:
        """The attendee's working copies of the notebooks, where JupyterLab and its terminals start."""
        return self.home / "workspace"

    @property
    def jupyter(self) -> Path:
        """JupyterLab's settings, kernel spec and runtime files for this lab (``labkit.jupyter.settings``)."""
        return self.home / "jupyter"

    @property
    def lock(self) -> Path:
        return self.home / "daemon.lock"

    @property
    def children(self) -> Path:
        """Pids of the processes the daemon started, for cleanup after a crash."""
        return self.home / "children.json"

    def ensure(self) -> LabPaths:
        for d in (self.home, self.state, self.logs, self.tls):
            d.mkdir(parents=True, exist_ok=True)
        return self
