"""The ``docker compose`` stand-in: ``up`` and ``down`` of a project whose services run as host processes.

Flags are Compose v2's (global ones before the subcommand); the project is loaded as compose loads it
(:mod:`.composefile`), then each service selected by the profiles becomes a container (:mod:`.containers`):
its ``container_name`` (what ``docker stop/start/kill`` address), published ports on loopback only, named
volumes as folders of the harness, external networks that must exist (``kind`` exists while a kind cluster
does). ``up --wait`` waits for the health checks; ``down --volumes --remove-orphans`` removes it all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from typing import Any

from labkit.core.network import free_port, is_loopback, port_free

from . import containers
from .composefile import Project, load
from .flags import Command, Failure, Parsed, flags, go_duration, parse
from .state import State, wait_for

GLOBAL = flags("profile:stringArray project-name/p file/f:stringArray insecure-registry:stringArray "
               "env-file:stringArray project-directory workdir compatibility:bool progress all-resources:bool "
               "dry-run:bool ansi parallel:int version/v:bool no-ansi:bool verbose:bool")
UP = Command("docker compose up", "docker compose up [OPTIONS] [SERVICE...]", flags(
    "detach/d:bool build:bool no-build:bool pull remove-orphans:bool scale:stringArray no-color:bool "
    "no-log-prefix:bool force-recreate:bool no-recreate:bool no-start:bool abort-on-container-exit:bool "
    "abort-on-container-failure:bool exit-code-from timeout/t:int timestamps:bool no-deps:bool "
    "always-recreate-deps:bool renew-anon-volumes/V:bool quiet-pull:bool quiet-build:bool attach:stringArray "
    "no-attach:stringArray attach-dependencies:bool wait:bool wait-timeout:int watch/w:bool menu:bool yes/y:bool"
) + GLOBAL, max_args=None)
DOWN = Command("docker compose down", "docker compose down [OPTIONS] [SERVICES]",
               flags("remove-orphans:bool timeout/t:int volumes/v:bool rmi") + GLOBAL, max_args=None)
COMMANDS = {"up": UP, "down": DOWN}
# what the harness emulates; other flags compose knows are refused as not supported by the harness
SUPPORTED = {"up": {"detach", "wait", "wait-timeout", "remove-orphans", "force-recreate", "timeout", "pull",
                    "quiet-pull"},
             "down": {"remove-orphans", "timeout", "volumes"}}
GLOBAL_SUPPORTED = {"profile", "project-name", "file", "env-file", "project-directory", "progress", "ansi"}
DEFAULT_WAIT = 120.0  # seconds --wait waits at most when the health checks would allow longer


def split(argv: list[str]) -> tuple[str, list[str]]:
    """The subcommand word (global flags and their values may precede it) and the other arguments."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return arg, argv[:i] + argv[i + 1:]
        flag = next((f for f in GLOBAL if arg[2:].partition("=")[0] == f.name or arg == f"-{f.short}"), None)
        i += 2 if flag is not None and flag.kind != "bool" and "=" not in arg else 1
    return "", argv


def main(state: State, argv: list[str]) -> int:
    """``docker compose ARGS`` (after ``docker compose``): the exit code; a refusal raises :class:`Failure`."""
    word, rest = split(argv)
    if word not in COMMANDS:
        if not word:
            raise Failure("the kind harness runs `docker compose up` and `docker compose down` only")
        raise Failure(f'unknown docker command: "compose {word}"')
    opts = parse(COMMANDS[word], rest)
    unsupported = sorted(set(opts.values) - SUPPORTED[word] - GLOBAL_SUPPORTED)
    if unsupported:
        raise Failure(f"the kind harness does not emulate docker compose {word} "
                      f"{', '.join('--' + f for f in unsupported)}")
    project = load(opts.get("file") or [], opts.get("env-file"), opts.get("project-name") or "",
                   opts.get("project-directory"))
    profiles = [*(opts.get("profile") or []), *filter(None, os.environ.get("COMPOSE_PROFILES", "").split(","))]
    with state.lock():
        if word == "up":
            names = _up(state, project, profiles, opts)
        else:
            names = []
            _down(state, project, opts)
    if word == "up" and opts.get("wait"):
        _wait(state, names, opts.get("wait-timeout") or 0)
    return 0


def _say(line: str) -> None:
    print(f" {line}", file=sys.stderr)


def _ports(project: Project, service: str, svc: dict[str, Any]) -> dict[str, list[Any]]:
    """Container port → [host ip, host port] from ``ports:`` (short and long syntax), loopback only."""
    out: dict[str, list[Any]] = {}
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            host, published, target = entry.get("host_ip", ""), str(entry.get("published", "")), str(entry["target"])
        else:
            parts = str(entry).split("/")[0].rsplit(":", 2)
            target = parts[-1]
            published = parts[-2] if len(parts) > 1 else ""
            host = parts[0] if len(parts) == 3 else ""
        if "-" in target or "-" in published:
            raise Failure(f"the kind harness does not publish port ranges ({entry}, service {service})")
        if not host or not is_loopback(host.strip("[]")):
            raise Failure(f"service {service} publishes {entry} on {host or 'every address'}: the lab publishes on "
                          "127.0.0.1 only (and the kind harness listens on loopback only)")
        out[target] = [host.strip("[]"), int(published) if published else 0]
    return out


def _mounts(state: State, project: Project, service: str, svc: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Container path → host folder for bind mounts and named volumes; and the named volumes used."""
    mounts, named = {}, []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            source, target, kind = entry.get("source", ""), entry["target"], entry.get("type", "volume")
        else:
            source, _, target = str(entry).partition(":")
            target = target.split(":")[0]
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        if kind == "bind":
            mounts[target] = str((project.workdir / os.path.expanduser(source)).resolve())
        elif kind == "volume" and source:
            declared = (project.model.get("volumes") or {})
            if source not in declared:
                raise Failure(f'service "{service}" refers to undefined volume {source}: invalid compose project')
            volume = (declared.get(source) or {}).get("name") or f"{project.name}_{source}"
            folder = state.volumes / volume
            folder.mkdir(parents=True, exist_ok=True)
            mounts[target] = str(folder)
            named.append(volume)
    return mounts, named


def _check_networks(state: State, project: Project, service: str, svc: dict[str, Any]) -> None:
    nets = svc.get("networks") or []
    for net in nets if isinstance(nets, list) else list(nets):
        declared = (project.model.get("networks") or {}).get(net)
        if declared is None and net != "default":
            raise Failure(f'service "{service}" refers to undefined network {net}: invalid compose project')
        if declared and declared.get("external"):
            name = declared.get("name") or net
            if name != "kind" or not state.clusters():
                raise Failure(f"network {name} declared as external, but could not be found")


def _container(state: State, project: Project, service: str, svc: dict[str, Any]) -> dict[str, Any]:
    name = project.container_name(service)
    containers.image_kind(svc.get("image") or "")
    if "build" in svc and "image" not in svc:
        raise Failure(f"the kind harness does not build compose services ({service})")
    ports = _ports(project, service, svc)
    mounts, named = _mounts(state, project, service, svc)
    addresses = {port: [host, published] for port, (host, published) in ports.items() if published}
    for port in containers.container_ports(svc["image"]):
        addresses.setdefault(port, ["127.0.0.1", 0])
    spec = {"project": project.name, "service": service, "image": svc["image"], "ports": ports, "mounts": mounts,
            "volumes": named, "healthcheck": svc.get("healthcheck") or {}}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return {"name": name, **spec, "addresses": addresses, "config_hash": digest, "running": False}


def _publish(container: dict[str, Any], taken: set[int]) -> None:
    """Check the published ports are free (Docker's error otherwise); give unpublished ports a free one."""
    for port, address in container["addresses"].items():
        if address[1] == 0:
            address[1] = free_port()
        elif address[1] in taken or not port_free(address[0], address[1]):
            raise Failure(f"Error response from daemon: driver failed programming external connectivity on endpoint "
                          f"{container['name']}: Bind for {address[0]}:{address[1]} failed: port is already "
                          f"allocated (container port {port})")
        taken.add(address[1])
    for port, published in container["ports"].items():
        published[1] = container["addresses"][port][1]


def _up(state: State, project: Project, profiles: list[str], opts: Parsed) -> list[str]:
    if not opts.get("detach") and not opts.get("wait"):
        raise Failure("the kind harness runs compose projects detached only: pass --detach or --wait")
    services = project.services(profiles)
    if opts.args:
        missing = [s for s in opts.args if s not in services]
        if missing:
            raise Failure(f"no such service: {missing[0]}")
        services = {s: services[s] for s in opts.args}
    current = state.containers()
    wanted = {}
    for service, svc in services.items():
        _check_networks(state, project, service, svc)
        wanted[service] = _container(state, project, service, svc)
    for c in wanted.values():
        owner = current.get(c["name"])
        if owner and owner["project"] != project.name:
            raise Failure(f'Error response from daemon: Conflict. The container name "/{c["name"]}" is already in use '
                          f"by a container of project {owner['project']}. You have to remove (or rename) that "
                          "container to be able to reuse that name.")
    orphans = [n for n, c in current.items() if c["project"] == project.name and c["service"] not in
               (project.model.get("services") or {})]
    if orphans and opts.get("remove-orphans"):
        for name in orphans:
            containers.stop(state, current.pop(name))
            _say(f"Container {name}  Removed")
    elif orphans:
        print(f"WARN[0000] Found orphan containers ({orphans}) for this project. If you removed or renamed this "
              "service in your compose file, you can run this command with the --remove-orphans flag to clean it "
              "up.", file=sys.stderr)
    taken: set[int] = set()
    for c in wanted.values():
        old = current.get(c["name"])
        if old and old["config_hash"] == c["config_hash"] and not opts.get("force-recreate"):
            if not old["running"] or not state.alive(containers.process_name(c["name"])):
                containers.start(state, old)
                _say(f"Container {c['name']}  Started")
            else:
                _say(f"Container {c['name']}  Running")
            continue
        if old:
            containers.stop(state, old, float(opts.get("timeout") or 10))
            _say(f"Container {c['name']}  Recreated")
        else:
            _say(f"Container {c['name']}  Created")
        _publish(c, taken)
        current[c["name"]] = c
        state.save_containers(current)
        containers.start(state, c)
        _say(f"Container {c['name']}  Started")
    state.save_containers(current)
    return [c["name"] for c in wanted.values()]


def _wait(state: State, names: list[str], timeout: int) -> None:
    """``--wait``: every container running, and healthy when it has a health check."""
    current = state.containers()
    for name in names:
        c = current[name]
        check = containers.health_url(c)
        hc = c.get("healthcheck") or {}
        limit = go_duration(str(hc.get("interval", "30s"))) * int(hc.get("retries", 3)) if check else 5.0
        limit = min(limit, DEFAULT_WAIT) if not timeout else float(timeout)
        process = containers.process_name(name)
        started = time.monotonic()

        def ready(check: str | None = check, process: str = process) -> bool:
            if state.alive(process) is None:
                return True
            return check is None or containers.healthy(check)

        ok = wait_for(ready, limit)
        if state.alive(process) is None:
            log = state.logs / f"{process}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise Failure("\n".join([f"container {name} exited; its last output ({log}):", *tail]))
        if not ok:
            raise Failure(f"container {name} is unhealthy" if timeout == 0 else
                          f"application not healthy after {time.monotonic() - started:.1f}s")
        _say(f"Container {name}  {'Healthy' if check else 'Running'}")


def _down(state: State, project: Project, opts: Parsed) -> None:
    current = state.containers()
    services = project.model.get("services") or {}
    for name, c in list(current.items()):
        if c["project"] != project.name:
            continue
        if c["service"] not in services and not opts.get("remove-orphans"):
            continue
        if c["running"]:
            containers.stop(state, c, float(opts.get("timeout") or 10))
            _say(f"Container {name}  Stopped")
        del current[name]
        shutil.rmtree(containers.folder(state, name), ignore_errors=True)
        _say(f"Container {name}  Removed")
    state.save_containers(current)
    if opts.get("volumes"):
        for key, vol in (project.model.get("volumes") or {}).items():
            if (vol or {}).get("external"):
                continue
            folder = state.volumes / ((vol or {}).get("name") or f"{project.name}_{key}")
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                _say(f"Volume {folder.name}  Removed")

