"""The ``docker`` stand-in: the engine's answers, image builds and pushes, and containers the harness runs.

* ``info --format TEMPLATE``: a server version (and the other fields labkit might ask);
* ``build [--network host] [--build-arg PIP_INDEX_URL=U] --file F --tag T CONTEXT``: labkit's own image builder
  (``labkit.images.build``), ``pip install`` reading the checkout's wheelhouse (PyPI's stand-in) or, on the host's
  network, the index the build arg names, into the harness's image store; ``push T``: that image to the registry
  at T's host (``localhost:PORT`` is 127.0.0.1:PORT, plain HTTP as Docker allows for loopback), with the
  credentials of the client's configuration (``--config DIR``, ``$DOCKER_CONFIG``, ``~/.docker``: ``config.json``
  ``auths``), as ``docker login`` leaves them;
* ``cp CONTAINER:SRC DEST``: a file out of a compose container's volumes (Nexus' ``admin.password``);
* ``stop|start|kill [--signal S] CONTAINER...``: a kind node container stops or starts its sim node (and,
  for a control plane, its API server); a compose container stops, starts or gets the signal;
* ``compose ...``: :mod:`.compose`.

Flag errors are the docker CLI's (exit 125); daemon errors are ``Error response from daemon: ...``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labkit.core.files import read_json, write_json
from labkit.core.network import is_loopback

from . import compose, containers, simlab
from .flags import Command, Failure, Parsed, UsageError, flags, parse, subcommand
from .state import REPO, State

SERVER_VERSION = "28.2.2"
GLOBAL = flags("config")  # the client's configuration folder (credentials), before the command
BUILD_FLAGS = flags(
    "add-host:strings allow:strings annotation:stringArray attest:stringArray build-arg:stringArray "
    "build-context:stringArray builder cache-from:stringArray cache-to:stringArray call cgroup-parent check:bool "
    "file/f iidfile label:stringArray load:bool metadata-file network no-cache:bool no-cache-filter:strings "
    "output/o:stringArray platform:stringArray progress provenance pull:bool push:bool quiet/q:bool sbom "
    "secret:stringArray shm-size ssh:stringArray tag/t:stringArray target ulimit debug/D:bool")
COMMANDS = {
    "info": Command("docker info", "docker info [OPTIONS]", flags("format/f")),
    "build": Command("docker buildx build", "docker buildx build [OPTIONS] PATH | URL | -", BUILD_FLAGS, 1, 1),
    "push": Command("docker push", "docker push [OPTIONS] NAME[:TAG]",
                    flags("all-tags/a:bool disable-content-trust:bool platform quiet/q:bool") + GLOBAL, 1, 1),
    "stop": Command("docker stop", "docker stop [OPTIONS] CONTAINER [CONTAINER...]",
                    flags("signal/s timeout/t:int time:int"), 1, None),
    "start": Command("docker start", "docker start [OPTIONS] CONTAINER [CONTAINER...]",
                     flags("attach/a:bool detach-keys interactive/i:bool"), 1, None),
    "kill": Command("docker kill", "docker kill [OPTIONS] CONTAINER [CONTAINER...]", flags("signal/s"), 1, None),
    "ps": Command("docker ps", "docker ps [OPTIONS]", flags("all/a:bool format quiet/q:bool")),
    "cp": Command("docker cp", "docker cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdocker cp [OPTIONS] "
                  "SRC_PATH|- CONTAINER:DEST_PATH", flags("archive/a:bool follow-link/L:bool quiet/q:bool"), 2, 2),
    "compose": Command("docker compose", "docker compose [OPTIONS] COMMAND", (), 0, None),
}
BUILD_SUPPORTED = {"file", "tag", "build-arg", "target", "no-cache", "quiet", "progress", "load", "network"}


def main(argv: list[str]) -> int:
    """``docker ARGS``: the exit code (125 for a command line the CLI refuses)."""
    try:
        command, rest = subcommand(COMMANDS, "docker", argv, GLOBAL)
        if command.path == "docker compose":
            return compose.main(State.from_env(), rest)
        return HANDLERS[command.path](State.from_env(), parse(command, rest))
    except UsageError as err:
        if err.command is None:
            word = next((a for a in argv if not a.startswith("-")), "")
            print(f"docker: unknown command: docker {word}\n\nRun 'docker --help' for more information",
                  file=sys.stderr)
            return 1
        print(f"{err.message}\n\nUsage:  {err.command.usage}\n\nRun '{err.command.path} --help' for more information",
              file=sys.stderr)
        return 125
    except Failure as err:
        print(err.message, file=sys.stderr)
        return err.code


# -- info -----------------------------------------------------------------------------------------

def info(state: State, opts: Parsed) -> int:
    fields: dict[str, Any] = {"ServerVersion": SERVER_VERSION, "OSType": "linux", "Architecture": os.uname().machine,
                              "OperatingSystem": "the kind harness (labkit tests)", "NCPU": os.cpu_count(),
                              "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                              "Name": os.uname().nodename}
    template = opts.get("format")
    if not template:
        print(f"Server:\n Server Version: {SERVER_VERSION}\n Operating System: {fields['OperatingSystem']}")
        return 0
    if template == "json" or template == "{{json .}}":
        import json

        print(json.dumps(fields))
        return 0

    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fields:
            raise Failure(f'template: :1:{match.start() + 2}: executing "" at <.{name}>: can\'t evaluate field '
                          f"{name} in type system.dockerInfo")
        return str(fields[name])

    print(re.sub(r"\{\{\s*\.(\w+)\s*\}\}", field, template))
    return 0


# -- images -----------------------------------------------------------------------------------------

def _store(state: State) -> dict[str, Any]:
    return read_json(state.images / "images.json", {}) or {}


def build(state: State, opts: Parsed) -> int:
    unsupported = sorted(set(opts.values) - BUILD_SUPPORTED)
    if unsupported:
        raise Failure(f"the kind harness does not emulate docker build {', '.join('--' + f for f in unsupported)}")
    from labkit.images import BuildError
    from labkit.images import build as build_image

    context = Path(opts.args[0]).resolve()
    if not context.is_dir():
        raise Failure(f"ERROR: unable to prepare context: path {opts.args[0]!r} not found")
    dockerfile = Path(opts.get("file") or context / "Dockerfile").resolve()
    tags = opts.get("tag") or []
    if not tags:
        raise Failure("the kind harness builds tagged images only: pass --tag")
    if opts.get("network") not in (None, "default", "host"):
        raise Failure(f"the kind harness builds on this machine's network only (--network host), not "
                      f"{opts.get('network')}")
    from labkit.shop.images import pip_env

    args = dict(a.partition("=")[::2] for a in opts.get("build-arg") or [])
    # pip reaches PyPI as the checkout's wheelhouse, or the index a build arg names (the lab's Nexus: its published
    # port is reachable from a build on the host's network, which is this machine's)
    index = args.get("PIP_INDEX_URL")
    if index and opts.get("network") != "host" and is_loopback(urlsplit(index).hostname or ""):
        raise Failure(f"ERROR: failed to build: pip cannot reach {index}: a build's own network has its own loopback "
                      "(build with --network host to reach this machine's published ports)")
    env = pip_env(REPO / ".wheelhouse", index if opts.get("network") == "host" else None)
    quiet = opts.get("quiet")
    folder = state.images / re.sub(r"[^A-Za-z0-9_.-]+", "_", tags[0])
    try:
        result = build_image(context, dockerfile, tag=tags[0], build_args=args, target=opts.get("target"),
                             layout_dir=folder, no_cache=bool(opts.get("no-cache")), env=env,
                             progress=None if quiet else lambda e: print(f"#{e.step} {e}", file=sys.stderr))
    except BuildError as err:
        raise Failure(f"ERROR: failed to build: {err}") from None
    with state.lock():
        images = _store(state)
        for tag in tags:
            images[tag] = {"layout": str(result.layout_dir), "ref": result.ref_name, "digest": result.manifest_digest}
        write_json(state.images / "images.json", images)
    if quiet:
        print(result.config_digest)
    else:
        print(f"#{result.steps + 1} naming to {', '.join(tags)} done", file=sys.stderr)
    return 0


def _registry(name: str) -> tuple[str, str, str, str]:
    """(registry URL, host as named, repository, tag) of a local image name (``localhost:5001/shop/catalog:1``)."""
    from labkit.images.builder import split_tag

    repo, tag = split_tag(name)
    host, _, path = repo.partition("/")
    if not path or not re.fullmatch(r"(localhost|127(\.\d+){3})(:\d+)?", host):
        raise Failure(f"the kind harness pushes to registries on this machine only (localhost:PORT/...), not {name}")
    hostname, _, port = host.partition(":")
    ip = "127.0.0.1" if hostname == "localhost" else hostname
    return f"http://{ip}:{port or 80}", host, path, tag


def _credentials(opts: Parsed, host: str) -> tuple[str, str] | None:
    """The client's stored credentials for ``host`` (``auths`` of ``config.json``), or None: anonymous."""
    import base64
    import json

    folder = Path(opts.get("config") or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        auths = json.loads((folder / "config.json").read_text()).get("auths") or {}
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise Failure(f"WARNING: Error loading config file: {folder / 'config.json'}: {err}") from None
    entry = auths.get(host) or auths.get(f"http://{host}") or {}
    if not entry.get("auth"):
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def push(state: State, opts: Parsed) -> int:
    name = opts.args[0]
    image = _store(state).get(name) or _store(state).get(f"{name}:latest")
    if image is None:
        raise Failure(f"An image does not exist locally with the tag: {name.rsplit(':', 1)[0]}")
    url, host, repo, tag = _registry(name)
    from labkit.images import push as push_image

    print(f"The push refers to repository [{host}/{repo}]")
    try:
        digest = push_image(Path(image["layout"]), url, repo, tag, _credentials(opts, host), ref=image["ref"])
    except OSError as err:
        raise Failure(f'Get "{url}/v2/": dial tcp {url.removeprefix("http://")}: connect: connection refused '
                      f"({err})") from None
    except Exception as err:  # the registry's refusal, in its own words
        raise Failure(f"failed to push {name}: {err}") from None
    size = (Path(image["layout"]) / "blobs" / "sha256" / digest.removeprefix("sha256:")).stat().st_size
    print(f"{tag}: digest: {digest} size: {size}")
    return 0


# -- containers --------------------------------------------------------------------------------------

def _node(state: State, name: str) -> tuple[str, dict[str, Any]] | None:
    """(cluster, node record) of a kind node container."""
    for cluster in state.clusters():
        node = ((state.cluster(cluster) or {}).get("nodes") or {}).get(name)
        if node is not None:
            return cluster, node
    return None


def _set_node(state: State, cluster: str, container: str, running: bool) -> None:
    with state.lock():
        path = state.cluster_dir(cluster) / "cluster.json"
        info = read_json(path)
        stopped = [c for c in info["stopped"] if c != container] + ([] if running else [container])
        write_json(path, {**info, "stopped": stopped})


def _each(state: State, opts: Parsed, act: Any) -> int:
    """Run ``act(name)`` for every container named; unknown ones are reported as the daemon does."""
    code = 0
    for name in opts.args:
        name = name.lstrip("/")
        try:
            act(name)
            print(name)
        except Failure as err:
            print(err.message, file=sys.stderr)
            code = 1
    return code


def _compose_container(state: State, name: str) -> dict[str, Any]:
    current = state.containers()
    if name not in current:
        known = any(name in (state.cluster(c) or {}).get("containers", []) for c in state.clusters())
        if known:
            raise Failure(f"the kind harness does not emulate kind's container {name}")
        raise Failure(f"Error response from daemon: No such container: {name}")
    return current[name]


def _node_or_container(state: State, name: str, running: bool, grace: float = 10.0) -> None:
    node = _node(state, name)
    if node is not None:
        cluster, record = node
        home = Path(state.cluster(cluster)["home"])
        simlab.node_action(home, record["node"], start=running, server=record["role"] == "control-plane")
        _set_node(state, cluster, name, running)
        return
    with state.lock():
        current = state.containers()
        c = _compose_container(state, name)
        if running and not (c["running"] and state.alive(containers.process_name(name))):
            containers.start(state, c)
        elif not running and c["running"]:
            containers.stop(state, c, grace)
        current[name] = c
        state.save_containers(current)


def stop(state: State, opts: Parsed) -> int:
    grace = float(opts.get("timeout", opts.get("time", 10)))
    return _each(state, opts, lambda name: _node_or_container(state, name, False, grace))


def start(state: State, opts: Parsed) -> int:
    return _each(state, opts, lambda name: _node_or_container(state, name, True))


def _signal(text: str) -> signal.Signals:
    name = text.upper().removeprefix("SIG")
    if name.isdigit():
        return signal.Signals(int(name))
    try:
        return signal.Signals[f"SIG{name}"]
    except KeyError:
        raise Failure(f"Error response from daemon: Invalid signal: {text}") from None


def kill(state: State, opts: Parsed) -> int:
    sig = _signal(opts.get("signal") or "KILL")

    def act(name: str) -> None:
        if _node(state, name) is not None:
            if sig not in (signal.SIGKILL, signal.SIGTERM):
                raise Failure(f"the kind harness stops node containers only (SIGKILL, SIGTERM), not {sig.name}")
            _node_or_container(state, name, False, grace=0.0)
            return
        c = _compose_container(state, name)
        if sig == signal.SIGKILL:
            _node_or_container(state, name, False, grace=0.0)
        else:
            containers.signal_container(state, c, sig)

    return _each(state, opts, act)


def cp(state: State, opts: Parsed) -> int:
    """``docker cp CONTAINER:SRC DEST``: a file or folder out of a compose container's mounted volumes (where
    the harness's containers keep every file they write); copying into a container or to ``-`` (a tar stream)
    is not emulated."""
    source, dest = opts.args
    name, sep, path = source.partition(":")
    if not sep or "/" in name or dest == "-" or ":" in dest:
        raise Failure("the kind harness copies files out of a container only: docker cp CONTAINER:SRC_PATH DEST_PATH")
    container = _compose_container(state, name.lstrip("/"))
    mounts = sorted(container["mounts"].items(), key=lambda m: len(m[0]), reverse=True)
    target = next((Path(host) / os.path.relpath(path, inside) for inside, host in mounts
                   if path == inside or path.startswith(inside.rstrip("/") + "/")), None)
    if target is None:
        raise Failure(f"the kind harness copies from a container's mounted volumes only: {path} is in none of "
                      f"{', '.join(m for m, _ in mounts) or 'its (no) mounts'}")
    if not target.exists():
        raise Failure(f"Error response from daemon: Could not find the file {path} in container {name}")
    out = Path(dest) / target.name if Path(dest).is_dir() else Path(dest)
    if target.is_dir():
        shutil.copytree(target, out, dirs_exist_ok=True)
    else:
        shutil.copyfile(target, out)
    if not opts.get("quiet"):
        print(f"Successfully copied {out.stat().st_size if out.is_file() else 0}B to {dest}", file=sys.stderr)
    return 0


def ps(state: State, opts: Parsed) -> int:
    rows = [(n, c["image"], "running" if c["running"] else "exited") for n, c in state.containers().items()]
    for cluster in state.clusters():
        info = state.cluster(cluster) or {}
        rows += [(n, "kindest/node", "exited" if n in info.get("stopped", []) else "running")
                 for n in info.get("nodes", {})]
    rows = [r for r in rows if opts.get("all") or r[2] == "running"]
    if opts.get("quiet"):
        print("\n".join(r[0] for r in rows))
        return 0
    print(f"{'NAMES':40} {'IMAGE':30} STATUS")
    for row in rows:
        print(f"{row[0]:40} {row[1]:30} {row[2]}")
    return 0


HANDLERS = {"docker info": info, "docker buildx build": build, "docker push": push, "docker stop": stop,
            "docker start": start, "docker kill": kill, "docker ps": ps, "docker cp": cp}
