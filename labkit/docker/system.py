"""``/_ping`` (GET and HEAD), ``/version`` and ``/info``: who the daemon is, as ``docker version``/``info`` show."""

from __future__ import annotations

import os
import platform
import sys

from aiohttp import web

from ..core.http import json_response
from .daemon import Daemon
from .engine import API_VERSION, ENGINE_VERSION, MIN_API_VERSION, add_route

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
PLATFORM = "labkit Docker Engine simulator"


def host_arch() -> str:
    """The host's architecture as image platforms name it (amd64, arm64)."""
    return _ARCH.get(platform.machine().lower(), platform.machine().lower())


def _ping_headers() -> dict[str, str]:
    return {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux", "Builder-Version": "1",
            "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


class SystemRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def install(self, app: web.Application) -> None:
        add_route(app, "GET", "/_ping", self.ping)
        add_route(app, "HEAD", "/_ping", self.ping)
        add_route(app, "GET", "/version", self.version)
        add_route(app, "GET", "/info", self.info)

    async def ping(self, request: web.Request) -> web.Response:
        body = b"" if request.method == "HEAD" else b"OK"
        return web.Response(body=body, content_type="text/plain", charset="utf-8", headers=_ping_headers())

    async def version(self, request: web.Request) -> web.Response:
        arch = host_arch()
        details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch,
                   "KernelVersion": platform.release(), "GoVersion": f"python{platform.python_version()}",
                   "GitCommit": "labkit", "BuildTime": "", "Experimental": False}
        return json_response({
            "Platform": {"Name": PLATFORM},
            "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
            "Version": ENGINE_VERSION, **{k: v for k, v in details.items() if k != "Experimental"}})

    async def info(self, request: web.Request) -> web.Response:
        containers = list(self.daemon.containers.all.values()) if self.daemon.containers else []
        states = [c.record.status for c in containers]
        arch = platform.machine()
        return json_response({
            "ID": self.daemon.root.name, "Containers": len(states), "ContainersRunning": states.count("running"),
            "ContainersPaused": 0, "ContainersStopped": len(states) - states.count("running"),
            "Images": len(self.daemon.store.images), "Driver": "labkit", "DriverStatus": [["Backing", "OCI blobs"]],
            "DockerRootDir": str(self.daemon.root), "Name": platform.node(), "ServerVersion": ENGINE_VERSION,
            "OperatingSystem": f"{PLATFORM} (containers are local processes)", "OSType": "linux",
            "OSVersion": "", "KernelVersion": platform.release(), "Architecture": arch,
            "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "LoggingDriver": "json-file",
            "CgroupDriver": "none", "CgroupVersion": "", "Plugins": {"Volume": [], "Network": [],
                                                                     "Log": ["json-file"]},
            "IndexServerAddress": "https://index.docker.io/v1/", "Swarm": {"LocalNodeState": "inactive"},
            "SecurityOptions": [], "Runtimes": {"labkit": {"path": sys.executable}}, "DefaultRuntime": "labkit",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": [],
                               "IndexConfigs": {h: {"Name": h, "Secure": False, "Official": False, "Mirrors": [u]}
                                                for h, u in self.daemon.mirrors.items()}},
            "Labels": [], "ExperimentalBuild": False, "LiveRestoreEnabled": False, "Warnings": []})


def _mem_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0
