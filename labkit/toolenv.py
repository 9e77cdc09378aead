"""The environment that points a shell's ``kubectl``, ``git`` and ``docker`` at the lab.

``labkit env`` prints it as exports; JupyterLab's terminals and kernels start with it (``labkit.jupyter``).
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from .core.files import read_json, write_atomic, write_json
from .core.paths import LabPaths
from .core.secrets import REGISTRY_PASSWORD, Secrets
from .endpoints import DockerEndpoint, RegistryEndpoint

GITCONFIG = """\
# git for the MSA Lab workshop (GIT_CONFIG_GLOBAL points here): yours to change with `git config --global`.
[user]
\tname = MSA Lab attendee
\temail = attendee@msa-lab.invalid
[init]
\tdefaultBranch = main
[http]
\tsslCAInfo = {ca}
"""


def _gitconfig(paths: LabPaths) -> Path:
    """The lab's global git config (trusts the lab's CA), written once: ``git config --global`` then edits it."""
    path = paths.home / "gitconfig"
    if not path.exists():
        write_atomic(path, GITCONFIG.format(ca=paths.tls / "ca.crt"))
    return path


def _docker_config(paths: LabPaths, registry: RegistryEndpoint | None) -> Path:
    """The lab's docker config folder, logged in to the lab's registry (what ``docker login`` would write);
    other logins in it are kept."""
    folder = paths.home / "docker"
    config = read_json(folder / "config.json", {}) or {}
    if registry is not None and registry.user and registry.push:
        password = Secrets(paths.secrets).get(REGISTRY_PASSWORD)
        auth = base64.b64encode(f"{registry.user}:{password}".encode()).decode()
        config.setdefault("auths", {})[registry.push] = {"auth": auth}
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", config, mode=0o600)
    return folder


def tool_env(paths: LabPaths, registry: RegistryEndpoint | None = None,
             docker: DockerEndpoint | None = None) -> dict[str, str]:
    """``LABKIT_HOME``, ``KUBECONFIG`` (the lab's admin), ``PATH`` (labkit's ``kubectl`` first),
    ``GIT_CONFIG_GLOBAL``, ``DOCKER_CONFIG`` (logged in to ``registry``, the lab's registry) and ``DOCKER_HOST``
    (the lab's Docker Engine, ``docker``, for the ``docker`` SDK's ``from_env()`` and the CLI)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    return {**({"DOCKER_HOST": docker.url} if docker is not None and docker.url else {}),
        "LABKIT_HOME": str(paths.home),
        "KUBECONFIG": str(paths.kubeconfig),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_CONFIG_GLOBAL": str(_gitconfig(paths)),
        "DOCKER_CONFIG": str(_docker_config(paths, registry)),
    }
