"""The ``kind`` stand-in: a kind cluster is a sim lab in a home of the harness's own.

``create cluster`` reads and validates ``--config`` as kind v0.32 does (:mod:`.kindconfig`), then
starts a sim lab whose nodes are the config's (the sim has server-1..3 and agent-1..2, which the config
must register), whose ``settings.json`` skips the products that run beside kind (compose, images) and
mirrors the image hosts that containerd's ``hosts.toml`` (mounted from the host into the nodes) names,
through the cluster's network relay (:mod:`.network`), which also publishes the nodes' port mappings.
``export kubeconfig`` writes kind's entries (``kind-NAME``) for the sim's first API server, with the
sim's CA and credentials; ``delete cluster`` stops the sim lab. Messages and exit codes are kind's.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from labkit.core.files import read_json, write_atomic, write_json
from labkit.core.network import free_port, is_loopback, port_free
from labkit.core.paths import LabPaths

from . import simlab
from .flags import Command, Failure, Parsed, flags, parse, subcommand
from .state import KUBECTL_ENV, State, python_env

if TYPE_CHECKING:
    from .kindconfig import ClusterConfig

VERSION = "kind v0.32.0 go1.24.4 linux/amd64"
# products the sim lab behind a cluster does not run: compose runs them beside kind, docker builds the images, helm
# installs Argo CD (its chart's stand-in, argocd.py)
# logging, mesh: the kind lab's helm charts (logging.py, mesh.py)
SKIP = ["haproxy", "shop", "registry", "argocd", "logging", "mesh"]
# the harness has no internet: a node pulls docker.io's images (Istio's proxyv2, which the istiod chart's stand-in
# pushes there) from the lab registry's stand-in, through that registry's relay
DOCKER_HUB = "docker.io"
PERSISTENT = flags("verbosity/v:int quiet/q:bool")
COMMANDS = {
    "create cluster": Command("kind create cluster", "kind create cluster [flags]",
                              PERSISTENT + flags("name/n config image retain:bool wait:duration kubeconfig")),
    "delete cluster": Command("kind delete cluster", "kind delete cluster [flags]",
                              PERSISTENT + flags("name/n kubeconfig")),
    "export kubeconfig": Command("kind export kubeconfig", "kind export kubeconfig [flags]",
                                 PERSISTENT + flags("name/n kubeconfig internal:bool")),
    "get clusters": Command("kind get clusters", "kind get clusters [flags]", PERSISTENT),
    "get nodes": Command("kind get nodes", "kind get nodes [flags]", PERSISTENT + flags("name/n all-clusters/A:bool")),
    "get kubeconfig": Command("kind get kubeconfig", "kind get kubeconfig [flags]",
                              PERSISTENT + flags("name/n internal:bool")),
    "version": Command("kind version", "kind version [flags]", PERSISTENT),
}


def main(argv: list[str]) -> int:
    """``kind ARGS``: the exit code; errors on stderr as ``ERROR: ...``."""
    try:
        command, rest = subcommand(COMMANDS, "kind", argv, PERSISTENT)
        opts = parse(command, rest)
        return HANDLERS[command.path](State.from_env(), opts)
    except Failure as err:
        if not _quiet(argv):
            print(f"ERROR: {err.message}", file=sys.stderr)
        return err.code


def _quiet(argv: list[str]) -> bool:
    return "-q" in argv or "--quiet" in argv


def _log(opts: Parsed, line: str) -> None:
    if not opts.get("quiet"):
        print(line, file=sys.stderr)


def _name(opts: Parsed, default: str = "kind") -> str:
    """``--name``, else ``$KIND_CLUSTER_NAME``, else ``default`` (kind's ``OverrideDefaultName``)."""
    return opts.get("name") or os.environ.get("KIND_CLUSTER_NAME") or default


# -- kubeconfig --------------------------------------------------------------------------------------

def kubeconfig_path(explicit: str | None) -> Path:
    """``--kubeconfig``, else the first file of ``$KUBECONFIG``, else ``~/.kube/config`` (kind's rules)."""
    if explicit:
        return Path(explicit)
    env = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(env[0]) if env else Path.home() / ".kube" / "config"


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    for key in ("clusters", "contexts", "users"):
        data[key] = list(data.get(key) or [])
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, **data}


def _sim_kubeconfig(cluster: str, home: Path) -> dict[str, Any]:
    """kind's entries (``kind-NAME``) for the sim's first API server, with the sim's CA and credentials."""
    sim = simlab.kubeconfig(home)
    host, port = simlab.api_servers(home)[0]
    ca = sim["clusters"][0]["cluster"]["certificate-authority-data"]
    user = sim["users"][0]["user"]
    ctx = f"kind-{cluster}"
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": ctx,
            "clusters": [{"name": ctx, "cluster": {"server": f"https://{host}:{port}",
                                                   "certificate-authority-data": ca}}],
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
            "users": [{"name": ctx, "user": user}]}


def _merge(path: Path, cluster: str, entries: dict[str, Any] | None) -> None:
    """Replace (or, with ``entries`` None, remove) the ``kind-NAME`` entries of the kubeconfig at ``path``."""
    ctx = f"kind-{cluster}"
    data = _read_kubeconfig(path)
    if entries is None and not path.exists():
        return
    for key in ("clusters", "contexts", "users"):
        data[key] = [e for e in data[key] if e.get("name") != ctx] + (entries[key] if entries else [])
    if entries:
        data["current-context"] = ctx
    elif data.get("current-context") == ctx:
        data["current-context"] = ""
    write_atomic(path, yaml.safe_dump(data, sort_keys=False), 0o600)


# -- the commands --------------------------------------------------------------------------------------

def get_clusters(state: State, opts: Parsed) -> int:
    clusters = state.clusters()
    if not clusters:
        _log(opts, "No kind clusters found.")
    for name in clusters:
        print(name)
    return 0


def get_nodes(state: State, opts: Parsed) -> int:
    names = state.clusters() if opts.get("all-clusters") else [_name(opts)]
    found = [c for name in names for c in (state.cluster(name) or {}).get("containers", [])]
    if not found:
        _log(opts, f'No kind nodes found for cluster "{_name(opts)}".')
    for container in found:
        print(container)
    return 0


def get_kubeconfig(state: State, opts: Parsed) -> int:
    name = _name(opts)
    info = _existing(state, name)
    print(yaml.safe_dump(_sim_kubeconfig(name, Path(info["home"])), sort_keys=False), end="")
    return 0


def _existing(state: State, name: str) -> dict[str, Any]:
    info = state.cluster(name)
    if info is None:
        raise Failure(f"could not locate any control plane nodes for cluster named '{name}'. "
                      "Use the --name option to select a different cluster")
    return info


def export_kubeconfig(state: State, opts: Parsed) -> int:
    name = _name(opts)
    info = _existing(state, name)
    if opts.get("internal"):
        raise Failure("the kind harness has no internal (in-network) kubeconfig: the sim lab is on loopback")
    _merge(kubeconfig_path(opts.get("kubeconfig")), name, _sim_kubeconfig(name, Path(info["home"])))
    _log(opts, f'Set kubectl context to "kind-{name}"')
    return 0


def version(state: State, opts: Parsed) -> int:
    print(VERSION)
    return 0


def _check_nodes(config: ClusterConfig) -> None:
    """The sim lab has fixed nodes: the config must register exactly those, in their roles."""
    want = {"control-plane": list(simlab.SERVERS), "worker": list(simlab.AGENTS)}
    got = {role: [n.name for n in config.nodes if n.role == role] for role in want}
    if got != want:
        raise Failure("failed to create cluster: the kind harness runs a sim lab whose nodes are "
                      f"{', '.join(simlab.SERVERS)} (control-plane) and {', '.join(simlab.AGENTS)} (worker); "
                      f"this config registers {', '.join(got['control-plane']) or 'none'} (control-plane) and "
                      f"{', '.join(got['worker']) or 'none'} (worker) (nodeRegistration.name patches)")


def _certs_host_dir(config: ClusterConfig) -> Path | None:
    """The host folder mounted where containerd reads ``hosts.toml`` (the same on every node)."""
    where = config.certs_dir()
    dirs = {m.get("hostPath") for n in config.nodes for m in n.mounts if m.get("containerPath") == where}
    if len(dirs) > 1 or (dirs and any(all(m.get("containerPath") != where for m in n.mounts) for n in config.nodes)):
        raise Failure("failed to create cluster: the kind harness's nodes share one image puller: mount the same "
                      f"{where} on every node")
    return Path(dirs.pop()) if dirs else None


def _mirrors(config: ClusterConfig) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """``registry_mirrors`` for the sim from the mounted ``hosts.toml`` files, and the relays they need.

    containerd tries a namespace's ``[host."URL"]`` entries that may pull, then its ``server``; a host name
    there is a container on the kind network, which the relay resolves when the nodes connect."""
    folder = _certs_host_dir(config)
    mirrors: dict[str, str] = {}
    relays: list[dict[str, Any]] = []
    for hosts in sorted(folder.glob("*/hosts.toml")) if folder else []:
        doc = tomllib.loads(hosts.read_text())
        pulls = [url for url, h in (doc.get("host") or {}).items() if "pull" in (h.get("capabilities") or ["pull"])]
        url = (pulls or [doc.get("server")])[0]
        if not url:
            continue
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        relay = free_port()
        # the node's own localhost: a NodePort there (kube-proxy's), else a container on the kind network
        target = {"nodeport": port} if parts.hostname in ("localhost", "127.0.0.1") else \
            {"container": parts.hostname, "port": port}
        relays.append({"listen": ["127.0.0.1", relay], "target": target})
        mirrors[hosts.parent.name] = f"{parts.scheme}://127.0.0.1:{relay}"
    if mirrors and DOCKER_HUB not in mirrors:  # no internet: Docker Hub is the lab registry's stand-in (mesh.py)
        mirrors[DOCKER_HUB] = next(iter(mirrors.values()))
    return mirrors, relays


def _port_mappings(config: ClusterConfig) -> list[dict[str, Any]]:
    """The nodes' ``extraPortMappings`` as relays (host port → the node's port), checked before anything starts."""
    relays = []
    for node in config.nodes:
        for m in node.port_mappings:
            if (m.get("protocol") or "TCP") != "TCP":
                raise Failure(f"failed to create cluster: the kind harness relays TCP only, not {m['protocol']}")
            listen = m.get("listenAddress") or "0.0.0.0"
            if not is_loopback(listen):
                raise Failure(f"failed to create cluster: node {node.name} publishes port {m['containerPort']} on "
                              f"{listen}: the lab publishes on 127.0.0.1 only (and the kind harness listens on "
                              "loopback only)")
            host_port = m.get("hostPort") or 0
            host_port = free_port() if host_port in (0, -1) else host_port
            if not port_free("127.0.0.1", host_port):
                raise Failure(f'failed to create cluster: command "docker run --name {node.container} ..." failed '
                              f"with error: exit status 125\nCommand Output: docker: Error response from daemon: "
                              f"driver failed programming external connectivity on endpoint {node.container}: "
                              f"Bind for 127.0.0.1:{host_port} failed: port is already allocated.")
            relays.append({"listen": ["127.0.0.1", host_port],
                           "target": {"node": node.container, "address": [node.name, m["containerPort"]]}})
    return relays


def create_cluster(state: State, opts: Parsed) -> int:
    from .kindconfig import load, validate

    config = load(opts["config"], _name(opts, "")) if opts.get("config") else None
    if config is None:
        raise Failure("failed to create cluster: the kind harness needs --config (a 3 control-plane, 2 worker "
                      "cluster like the sim lab's)")
    if config.name in state.clusters():
        raise Failure(f'failed to create cluster: node(s) already exist for a cluster with the name "{config.name}"')
    problem = validate(config.raw, config.name)
    if problem:
        raise Failure(f"failed to create cluster: {problem}")
    _check_nodes(config)
    mappings = _port_mappings(config)
    mirrors, relays = _mirrors(config)
    _log(opts, f'Creating cluster "{config.name}" ...')
    folder = state.cluster_dir(config.name)
    home = folder / "home"
    try:
        simlab.start(home, {"skip": SKIP, "registry_mirrors": mirrors})
        state.docker_socket.unlink(missing_ok=True)  # the docker SDK's daemon: this sim lab's Docker Engine API
        state.docker_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        state.docker_socket.symlink_to(LabPaths.resolve(home).docker_socket)
        _log(opts, " ✓ Preparing nodes (a sim lab in the harness)")
        addresses = simlab.node_addresses(home, os.environ[KUBECTL_ENV])
        api = dict(zip(simlab.SERVERS, simlab.api_servers(home), strict=True))
        for relay in mappings:  # the node's name → the sim node's address
            relay["target"]["address"][0] = addresses[relay["target"]["address"][0]]
        relays += mappings
        write_json(folder / "network.json", relays)
        state.spawn(f"network-{config.name}", [sys.executable, "-m", "tests.backends.kind.harness.network",
                                               str(state.root), config.name], env=python_env())
        write_json(folder / "cluster.json", {
            "name": config.name, "home": str(home), "containers": config.containers, "stopped": [],
            "nodes": {n.container: {"node": n.name, "role": n.role} for n in config.nodes},
            "addresses": addresses, "api_servers": api})
    except BaseException:
        if not opts.get("retain"):
            _delete(state, config.name)
        raise
    _merge(kubeconfig_path(opts.get("kubeconfig")), config.name, _sim_kubeconfig(config.name, home))
    ctx = f"kind-{config.name}"
    kc = f" --kubeconfig {opts['kubeconfig']}" if opts.get("kubeconfig") else ""
    _log(opts, f'Set kubectl context to "{ctx}"\nYou can now use your cluster with:\n\n'
               f"kubectl cluster-info --context {ctx}{kc}\n")
    return 0


def _delete(state: State, name: str) -> list[str]:
    """Stop the sim lab and the network of cluster ``name``; returns its containers."""
    folder = state.cluster_dir(name)
    info = read_json(folder / "cluster.json", {}) or {}
    state.stop(f"network-{name}", grace=2.0)
    from . import argocd, harbor, logging, mesh, prometheus

    harbor.stop_all(state, name)
    argocd.stop_all(state, name)
    prometheus.stop_all(state, name)
    logging.stop_all(state, name)
    mesh.stop_all(state, name)
    if (folder / "home").exists():
        simlab.stop(folder / "home")
    if state.docker_socket.is_symlink() and \
            state.docker_socket.readlink() == LabPaths.resolve(folder / "home").docker_socket:
        state.docker_socket.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return list(info.get("containers") or [])


def delete_cluster(state: State, opts: Parsed) -> int:
    name = _name(opts)
    _log(opts, f'Deleting cluster "{name}" ...')
    _merge(kubeconfig_path(opts.get("kubeconfig")), name, None)
    containers = _delete(state, name) if state.cluster_dir(name).exists() else []
    if containers:
        _log(opts, "Deleted nodes: [" + " ".join(f'"{c}"' for c in containers) + "]")
    return 0


HANDLERS = {
    "kind create cluster": create_cluster, "kind delete cluster": delete_cluster,
    "kind export kubeconfig": export_kubeconfig, "kind get clusters": get_clusters, "kind get nodes": get_nodes,
    "kind get kubeconfig": get_kubeconfig, "kind version": version,
}
