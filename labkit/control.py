"""Starting, stopping and asking a lab, from the CLI or a notebook kernel: pick the backend, dispatch to it."""

from __future__ import annotations

import os
import shutil
from typing import Any

from .backends.base import Backend, ProductStatus, Progress
from .backends.kind.backend import KindBackend
from .backends.sim.backend import SimBackend
from .core.errors import LabError
from .core.files import read_json
from .core.paths import LabPaths
from .endpoints import LabEndpoints

BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (SimBackend, KindBackend)}

__all__ = ["BACKENDS", "LabError", "Progress", "action", "backend", "down", "endpoints", "reset", "resolve_backend",
           "status", "up"]


def resolve_backend(requested: str | None, paths: LabPaths) -> str:
    """The backend to use: the argument, ``$LABKIT_BACKEND``, the lab home's own, or ``sim``."""
    name = requested or os.environ.get("LABKIT_BACKEND") or (read_json(paths.endpoints) or {}).get("backend")
    name = name or "sim"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return name


def backend(paths: LabPaths, name: str | None = None) -> Backend:
    """The backend ``name`` (default: the one this home runs, see ``resolve_backend``) for this home."""
    return BACKENDS[resolve_backend(name, paths)](paths)


def endpoints(paths: LabPaths) -> LabEndpoints | None:
    """The running lab's endpoints, or None when it is not up and ready."""
    data = read_json(paths.endpoints)
    return backend(paths, data["backend"]).endpoints() if data and data.get("backend") in BACKENDS else None


def up(paths: LabPaths, name: str | None = None, jupyter: bool | None = None,
       progress: Progress = lambda s: None) -> LabEndpoints:
    """Start the lab (idempotent) and return its endpoints once it is ready."""
    return backend(paths, name).up(progress, jupyter=jupyter)


def _running(paths: LabPaths) -> Backend:
    b = backend(paths)
    if not b.endpoints():
        raise LabError("the lab is not running: start it with `labkit up`")
    return b


def status(paths: LabPaths) -> list[ProductStatus]:
    """Every product of the running lab: name, title, url, healthy, detail."""
    return _running(paths).status()


def action(paths: LabPaths, product: str, operation: str, **args: Any) -> Any:
    """Run a lesson operation of a product (e.g. stop a node) on the running lab."""
    return _running(paths).action(product, operation, **args)


def down(paths: LabPaths, progress: Progress = lambda s: None) -> bool:
    """Stop the lab and every process it started; True if one was running."""
    return backend(paths, (read_json(paths.endpoints) or {}).get("backend") or "sim").down(progress)


def reset(paths: LabPaths, progress: Progress = lambda s: None) -> None:
    """Stop the lab and forget its state (learner progress and credentials stay)."""
    down(paths, progress=progress)
    progress("removing the lab state")
    shutil.rmtree(paths.state, ignore_errors=True)
    paths.kubeconfig.unlink(missing_ok=True)
