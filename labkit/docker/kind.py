"""Docker on the kind backend: the laptop's own Docker Engine (the one kind and compose run on), nothing to start.

Its endpoint is what the ``docker`` CLI uses: ``DOCKER_HOST`` when set, else the current context's host (Docker
Desktop's socket is not ``/var/run/docker.sock``: its context ``desktop-linux`` names it), else the default socket.
The kind contract harness sets ``DOCKER_HOST`` to its stand-in daemon: the Engine API of the sim lab behind the
cluster.
Health is ``GET /_ping``, over the unix socket or TCP.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from ..backends.kind.lab import KindLab
from ..backends.kind.parts import KindPart
from ..endpoints import DockerEndpoint, Endpoint

DEFAULT_HOST = "unix:///var/run/docker.sock"
TITLE = "Docker Engine"


def context_host() -> str | None:
    """The Engine endpoint of the ``docker`` CLI's current context (``DOCKER_CONTEXT``, else ``currentContext`` in
    ``$DOCKER_CONFIG/config.json``), read as the CLI reads it: ``contexts/meta/<sha256 of the name>/meta.json``.
    None for the ``default`` context or when there is none."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        name = os.environ.get("DOCKER_CONTEXT") or json.loads((folder / "config.json").read_text()).get(
            "currentContext")
    except (OSError, ValueError):
        name = os.environ.get("DOCKER_CONTEXT")
    if not name or name == "default":
        return None
    meta = folder / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    try:
        return json.loads(meta.read_text())["Endpoints"]["docker"]["Host"] or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def docker_host() -> str:
    """What the ``docker`` CLI and SDK connect to: ``DOCKER_HOST``, the current context's host, the default."""
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
