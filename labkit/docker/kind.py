"""Docker on the kind backend: the laptop's own Docker Engine (the one kind and compose run on), nothing to start.

Its endpoint is what the ``docker`` CLI uses: ``DOCKER_HOST`` when set, else the current context's host
(``docker context inspect``: Docker Desktop's socket is not ``/var/run/docker.sock``), else the default socket.
Health is ``GET /_ping``, over the unix socket or TCP.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from urllib.parse import urlsplit

from ..backends.kind.lab import KindLab
from ..backends.kind.parts import KindPart
from ..endpoints import DockerEndpoint, Endpoint

DEFAULT_HOST = "unix:///var/run/docker.sock"
TITLE = "Docker Engine"


def context_host() -> str | None:
    """The current ``docker context``'s Engine endpoint, or None when the CLI cannot say."""
    try:
        res = subprocess.run(["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
                             capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    host = res.stdout.strip()
    return host if res.returncode == 0 and host else None


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or context_host() or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def ping(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """``GET /_ping`` on a Docker endpoint (``unix://``, ``tcp://``, ``http://``): (answered OK, what it said)."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "unix":
        conn = _UnixConnection(parts.path, timeout)
    elif parts.scheme in ("tcp", "http"):
        conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    else:
        return False, f"{url}: labkit pings unix:// and tcp:// Docker hosts only"
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        version = resp.headers.get("Api-Version", "?")
    except OSError as err:
        return False, f"{url}: {err}"
    finally:
        conn.close()
    return resp.status == 200 and body == "OK", f"API {version}" if resp.status == 200 else f"HTTP {resp.status}"


class DockerKind(KindPart):
    def endpoint(self, lab: KindLab) -> Endpoint:
        return DockerEndpoint(TITLE, docker_host())

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return ping(endpoint.url)
