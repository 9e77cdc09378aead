"""Backends decide how the lab's components are started and where they listen."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.files import read_json
from ..core.paths import LabPaths

BACKENDS = ("sim", "kind")
CONTROL_TOKEN = "control-token"  # name of the secret guarding the sim daemon's control API


def settings_path(paths: LabPaths) -> Path:
    """Lab settings chosen with ``labkit up`` options (e.g. whether JupyterLab runs)."""
    return paths.home / "settings.json"


def resolve_backend(requested: str | None, paths: LabPaths) -> str:
    """The backend to use: the argument, ``$LABKIT_BACKEND``, the running lab's, or ``sim``."""
    name = requested or os.environ.get("LABKIT_BACKEND") or (read_json(paths.endpoints) or {}).get("backend")
    name = name or "sim"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return name
