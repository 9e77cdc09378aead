"""Where the paths of a Fluent Bit configuration are on the lab machine: the node's ``/var/log`` is the node's log
folder (the kubelet's ``pods/`` and ``containers/``); other absolute paths are the machine's own, and relative ones
are relative to the configuration's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VAR_LOG = "/var/log"


@dataclass(frozen=True)
class PathMap:
    node_dir: Path  # the node's /var/log
    base: Path  # the configuration's folder

    def real(self, path: str) -> Path:
        if path == VAR_LOG or path.startswith(VAR_LOG + "/"):
            return self.node_dir / path[len(VAR_LOG):].lstrip("/")
        p = Path(path)
        return p if p.is_absolute() else self.base / p

    def virtual(self, real: Path) -> str:
        """The path as the configuration (and the tag) names it."""
        try:
            return f"{VAR_LOG}/{real.relative_to(self.node_dir)}"
        except ValueError:
            return str(real)
