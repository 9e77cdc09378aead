"""Containers as local processes in their image's root filesystem (the image builder's ``RUNTIME_CONTRACT``, as
the sim kubelet runs pods): ``/containers/create``, ``start``, ``wait``, ``logs``, ``json``, ``stop``, ``kill``,
``DELETE``, ``/containers/json``. Output is kept as Docker's json-file log driver keeps it (one JSON line per
line of output), served as the multiplexed stream (8-byte frame headers) an attach without a TTY gets. Records
survive a daemon restart; a container that was running when the daemon stopped is exited, as without
live-restore."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import struct
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.http import json_response
from ..core.procs import _child_setup
from ..images.builder import unpack
from ..images.run import container_argv, image_env
from .daemon import Daemon
from .engine import add_route, bad_request, conflict, error, flag, json_param, not_found, unsupported
from .store import NotFound, normalize

ZERO_TIME = "0001-01-01T00:00:00Z"
_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJECTIVES = ("brave", "calm", "eager", "fancy", "happy", "jolly", "keen", "lucid", "nifty", "quirky", "vivid")
_NAMES = ("babbage", "curie", "darwin", "euler", "hopper", "lovelace", "noether", "pascal", "ritchie", "turing")
# create options the sim cannot honour: refused, never silently ignored
_HOST_UNSUPPORTED = ("Binds", "Mounts", "PortBindings", "Privileged", "Devices", "Memory", "NanoCpus", "CpuShares",
                     "CpuQuota", "CapAdd", "VolumesFrom", "Links", "PublishAllPorts")
_CONFIG_UNSUPPORTED = ("Tty", "OpenStdin", "AttachStdin", "Healthcheck")


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ago(stamp: str) -> str:
    seconds = max(0, int(time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()))
    if seconds < 60:
        return "Less than a second" if seconds < 1 else f"{seconds} seconds"
    if seconds < 3600:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


@dataclass
class Record:
    """What ``docker inspect`` shows of a container (the part kept on disk)."""

    id: str
    name: str
    image: str  # the image ID
    config: dict[str, Any]  # Image (as asked), Cmd, Entrypoint, Env, WorkingDir, Labels, ...
    host_config: dict[str, Any]
    created: str
    path: str = ""
    args: list[str] = field(default_factory=list)
    status: str = "created"  # created, running, exited
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME


class Container:
    def __init__(self, record: Record, folder: Path) -> None:
        self.record = record
        self.folder = folder
        self.proc: asyncio.subprocess.Process | None = None
        self.exited = asyncio.Event()
        self.removed = asyncio.Event()
        self.output = asyncio.Event()  # set when a log line is written (followers wait on it)

    @property
    def log(self) -> Path:
        return self.folder / "json.log"

    def save(self) -> None:
        tmp = self.folder / "config.tmp"
        tmp.write_text(json.dumps(asdict(self.record)))
        os.replace(tmp, self.folder / "config.json")


class Containers:
    """The daemon's containers, under ``root/containers/<id>``; image root filesystems under ``root/rootfs``."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.dir = daemon.root / "containers"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rootfs_dir = daemon.root / "rootfs"
        self.all: dict[str, Container] = {}
        for config in sorted(self.dir.glob("*/config.json")):
            c = Container(Record(**json.loads(config.read_text())), config.parent)
            if c.record.status == "running":  # the daemon stopped under it
                c.record.status, c.record.exit_code, c.record.finished_at, c.record.pid = "exited", 137, now(), 0
                c.save()
            c.exited.set()
            self.all[c.record.id] = c
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self, app: web.Application) -> None:
        add_route(app, "GET", "/containers/json", self.list)
        add_route(app, "POST", "/containers/create", self.create)
        add_route(app, "GET", "/containers/{id}/json", self.inspect)
        add_route(app, "POST", "/containers/{id}/start", self.start)
        add_route(app, "POST", "/containers/{id}/wait", self.wait)
        add_route(app, "GET", "/containers/{id}/logs", self.logs)
        add_route(app, "POST", "/containers/{id}/stop", self.stop)
        add_route(app, "POST", "/containers/{id}/kill", self.kill)
        add_route(app, "DELETE", "/containers/{id}", self.remove)

    # -- lookups ---------------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        name = "/" + ref.lstrip("/")
        for c in self.all.values():
            if c.record.name == name or c.record.id == ref:
                return c
        hits = [c for c in self.all.values() if c.record.id.startswith(ref)] if ref else []
        if len(hits) == 1:
            return hits[0]
        raise not_found(f"No such container: {ref}")

    def using(self, image_id: str) -> list[str]:
        """The containers (any state) made from an image: the image cannot be deleted under them."""
        return [c.record.id for c in self.all.values() if c.record.image == image_id]

    def running(self, container_id: str) -> bool:
        c = self.all.get(container_id)
        return c is not None and c.record.status == "running"

    # -- create ----------------------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        host = body.get("HostConfig") or {}
        for key in _CONFIG_UNSUPPORTED:
            if body.get(key):
                raise unsupported(f"a container's {key}")
        for key in _HOST_UNSUPPORTED:
            if host.get(key):
                raise unsupported(f"HostConfig.{key} (containers are local processes sharing the host's network "
                                  "and files)")
        if (host.get("NetworkMode") or "default") not in ("default", "bridge", "host"):
            raise unsupported(f"network mode {host['NetworkMode']!r}")
        if not body.get("Image"):
            raise bad_request("config cannot be empty in order to create a container")
        try:
            image = self.daemon.store.find(body["Image"])
        except NotFound:
            raise not_found(f"No such image: {normalize(body['Image'])}") from None
        name = request.query.get("name") or self._fresh_name()
        if not _NAME.match(name):
            raise bad_request(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = "/" + name.lstrip("/")
        for c in self.all.values():
            if c.record.name == name:
                raise conflict(f'Conflict. The container name "{name}" is already in use by container '
                               f'"{c.record.id}". You have to remove (or rename) that container to be able to '
                               "reuse that name.")
        image_cfg = self.daemon.store.config(image).get("config") or {}
        env = {e.partition("=")[0]: e for e in image_cfg.get("Env") or []}
        env.update({e.partition("=")[0]: e for e in body.get("Env") or []})
        entrypoint = body.get("Entrypoint")
        cmd = body.get("Cmd")
        if entrypoint is None:
            entrypoint = image_cfg.get("Entrypoint") or []
            cmd = cmd if cmd else image_cfg.get("Cmd") or []
        argv = [*(entrypoint if isinstance(entrypoint, list) else [entrypoint]),
                *((cmd if isinstance(cmd, list) else [cmd]) if cmd else [])]
        if not argv:
            raise bad_request("no command specified")
        config = {"Hostname": "", "Image": body["Image"], "Cmd": cmd, "Entrypoint": entrypoint or None,
                  "Env": list(env.values()), "WorkingDir": body.get("WorkingDir") or image_cfg.get("WorkingDir", ""),
                  "Labels": {**(image_cfg.get("Labels") or {}), **(body.get("Labels") or {})}, "Tty": False,
                  "OpenStdin": False, "User": body.get("User") or image_cfg.get("User", ""),
                  "StopSignal": body.get("StopSignal") or image_cfg.get("StopSignal") or "SIGTERM"}
        cid = os.urandom(32).hex()
        config["Hostname"] = cid[:12]
        host_config = {"AutoRemove": bool(host.get("AutoRemove")), "NetworkMode": host.get("NetworkMode") or "default",
                       "LogConfig": {"Type": "json-file", "Config": {}}, "RestartPolicy": {"Name": "no"}}
        record = Record(cid, name, image.id, config, host_config, now(), argv[0], argv[1:])
        folder = self.dir / cid
        folder.mkdir()
        c = Container(record, folder)
        c.save()
        self.all[cid] = c
        return json_response({"Id": cid, "Warnings": []}, 201)

    def _fresh_name(self) -> str:
        taken = {c.record.name for c in self.all.values()}
        while True:
            name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"
            if "/" + name not in taken:
                return name

    # -- start, stop, kill -----------------------------------------------------------------------------
    def _rootfs(self, c: Container) -> Path:
        """The container's own root filesystem: a hard-linked copy of its image's, unpacked once per image."""
        image = self.daemon.store.images.get(c.record.image)
        if image is None:
            raise error(500, f"image {c.record.image} of container {c.record.id[:12]} is gone")
        shared = self.rootfs_dir / image.id.split(":", 1)[1]
        if not (shared / ".complete").exists():
            partial = shared.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            unpack(self.daemon.store.blobs.path, self.daemon.store.manifest(image), partial / "rootfs")
            (partial / ".complete").touch()
            shutil.rmtree(shared, ignore_errors=True)
            partial.rename(shared)
        own = c.folder / "rootfs"
        if not own.exists():
            shutil.copytree(shared / "rootfs", c.folder / "rootfs.partial", symlinks=True, copy_function=os.link)
            (c.folder / "rootfs.partial").rename(own)
        return own

    async def start(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        if c.record.status == "running":
            return web.Response(status=304)
        loop = asyncio.get_running_loop()
        rootfs = await loop.run_in_executor(self.daemon.executor, self._rootfs, c)
        image = self.daemon.store.images[c.record.image]
        image_cfg = self.daemon.store.config(image).get("config") or {}
        env = image_env({**image_cfg, "Env": c.record.config["Env"]}, rootfs)
        env.update(HOSTNAME=c.record.config["Hostname"], LABKIT_ROOTFS=str(rootfs))
        cwd = rootfs / (c.record.config.get("WorkingDir") or "/").lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
        argv = container_argv([c.record.path, *c.record.args], rootfs)
        c.exited.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env={**env, "PATH": env.get("PATH", "")},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                preexec_fn=_child_setup, limit=1 << 20)
        except OSError as err:
            c.record.exit_code, c.record.error = 127, (
                f'failed to create task for container: failed to create shim task: OCI runtime create failed: '
                f'exec: "{c.record.path}": {"executable file not found in $PATH" if err.errno == 2 else err}: '
                "unknown")
            c.save()
            c.exited.set()
            raise error(400, c.record.error) from None
        c.proc = proc
        c.record.status, c.record.pid, c.record.started_at = "running", proc.pid, now()
        c.record.exit_code, c.record.error, c.record.finished_at = 0, "", ZERO_TIME
        c.save()
        task = asyncio.create_task(self._supervise(c, proc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=204)

    async def _supervise(self, c: Container, proc: asyncio.subprocess.Process) -> None:
        with c.log.open("ab", buffering=0) as log:
            async def pump(stream: asyncio.StreamReader, name: str) -> None:
                while line := await stream.readline():
                    log.write(json.dumps({"log": line.decode(errors="replace"), "stream": name,
                                          "time": now()}).encode() + b"\n")
                    c.output.set()

            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
            code = await proc.wait()
        c.proc = None
        c.record.status, c.record.pid, c.record.finished_at = "exited", 0, now()
        c.record.exit_code = code if code >= 0 else 128 - code
        c.save()
        c.exited.set()
        c.output.set()
        if c.record.host_config.get("AutoRemove"):
            self._forget(c)

    async def _signal(self, c: Container, sig: int) -> None:
        if c.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, sig)

    async def stop(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        if c.record.status != "running":
            return web.Response(status=304)
        grace = float(request.query.get("t") or 10)
        stop_signal = request.query.get("signal") or c.record.config.get("StopSignal") or "SIGTERM"
        await self._halt(c, _signal_number(stop_signal), grace)
        return web.Response(status=204)

    async def _halt(self, c: Container, sig: int, grace: float) -> None:
        await self._signal(c, sig)
        try:
            await asyncio.wait_for(c.exited.wait(), grace)
        except TimeoutError:
            await self._signal(c, signal.SIGKILL)
            await c.exited.wait()

    async def kill(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        if c.record.status != "running":
            raise conflict(f"Cannot kill container: {request.match_info['id']}: Container {c.record.id} is not "
                           "running")
        await self._signal(c, _signal_number(request.query.get("signal") or "SIGKILL"))
        return web.Response(status=204)

    # -- wait, logs ------------------------------------------------------------------------------------
    async def wait(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        condition = request.query.get("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise bad_request(f"invalid condition: {condition!r}")
        if condition == "removed":
            await c.removed.wait()
        elif condition == "next-exit" or c.record.status == "running":
            if condition == "next-exit" and c.record.status != "running":
                c.exited.clear()
            await c.exited.wait()
        return json_response({"StatusCode": c.record.exit_code,
                              "Error": {"Message": c.record.error} if c.record.error else None})

    async def logs(self, request: web.Request) -> web.StreamResponse:
        c = self.get(request.match_info["id"])
        streams = {s for s in ("stdout", "stderr") if flag(request, s)}
        if not streams:
            raise bad_request("Bad parameters: you must choose at least one stream")
        if flag(request, "details"):
            raise unsupported("log details (details=1)")
        follow, stamps = flag(request, "follow"), flag(request, "timestamps")
        since = float(request.query.get("since") or 0)
        tail = request.query.get("tail") or "all"
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.docker.multiplexed-stream"})
        await resp.prepare(request)

        def frames(lines: list[bytes]) -> bytes:
            out = bytearray()
            for raw in lines:
                entry = json.loads(raw)
                if entry["stream"] not in streams:
                    continue
                if since and datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp() < since:
                    continue
                payload = ((entry["time"] + " ") if stamps else "") + entry["log"]
                data = payload.encode()
                out += struct.pack(">BxxxL", 1 if entry["stream"] == "stdout" else 2, len(data)) + data
            return bytes(out)

        offset = 0
        if c.log.exists():
            with c.log.open("rb") as f:
                lines = f.read().splitlines(keepends=True)
            complete = [ln for ln in lines if ln.endswith(b"\n")]
            offset = sum(len(ln) for ln in complete)
            if tail != "all":
                complete = complete[-int(tail):] if int(tail) > 0 else []
            if data := frames(complete):
                await resp.write(data)
        while follow and c.record.id in self.all:
            c.output.clear()
            new = b""
            if c.log.exists():
                with c.log.open("rb") as f:
                    f.seek(offset)
                    new = f.read()
            lines = [ln for ln in new.splitlines(keepends=True) if ln.endswith(b"\n")]
            offset += sum(len(ln) for ln in lines)
            if data := frames(lines):
                await resp.write(data)
            elif c.record.status != "running":
                break
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(c.output.wait(), 0.5)
        await resp.write_eof()
        return resp

    # -- inspect, list, remove ---------------------------------------------------------------------------
    def _state(self, c: Container) -> dict[str, Any]:
        r = c.record
        return {"Status": r.status, "Running": r.status == "running", "Paused": False, "Restarting": False,
                "OOMKilled": False, "Dead": False, "Pid": r.pid, "ExitCode": r.exit_code, "Error": r.error,
                "StartedAt": r.started_at, "FinishedAt": r.finished_at}

    async def inspect(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        r = c.record
        return json_response({
            "Id": r.id, "Created": r.created, "Path": r.path, "Args": r.args, "State": self._state(c),
            "Image": r.image, "Name": r.name, "RestartCount": 0, "Driver": "labkit", "Platform": "linux",
            "LogPath": str(c.log), "Config": r.config, "HostConfig": r.host_config, "Mounts": [],
            "NetworkSettings": {"Networks": {}, "Ports": {}, "IPAddress": ""}})

    def _summary(self, c: Container) -> dict[str, Any]:
        r = c.record
        status = {"running": f"Up {_ago(r.started_at)}", "created": "Created"}.get(
            r.status, f"Exited ({r.exit_code}) {_ago(r.finished_at)} ago" if r.finished_at != ZERO_TIME else "Exited")
        return {"Id": r.id, "Names": [r.name], "Image": r.config["Image"], "ImageID": r.image,
                "Command": " ".join([r.path, *r.args]),
                "Created": int(datetime.fromisoformat(r.created.replace("Z", "+00:00")).timestamp()),
                "State": r.status, "Status": status, "Ports": [], "Labels": r.config.get("Labels") or {},
                "HostConfig": {"NetworkMode": r.host_config.get("NetworkMode", "default")}, "Mounts": []}

    async def list(self, request: web.Request) -> web.Response:
        filters = json_param(request, "filters") or {}
        every = flag(request, "all") or bool(filters.get("status"))
        rows = []
        for c in sorted(self.all.values(), key=lambda c: c.record.created, reverse=True):
            if not every and c.record.status != "running":
                continue
            if self._matches(c, filters):
                rows.append(self._summary(c))
        limit = int(request.query.get("limit") or -1)
        return json_response(rows[:limit] if limit > 0 else rows)

    @staticmethod
    def _matches(c: Container, filters: dict[str, Any]) -> bool:
        r = c.record
        for key, value in filters.items():
            wanted = [k for k, v in value.items() if v] if isinstance(value, dict) else list(value or [])
            if key == "status" and r.status not in wanted:
                return False
            if key == "name" and not any(w.lstrip("/") in r.name for w in wanted):
                return False
            if key == "id" and not any(r.id.startswith(w) for w in wanted):
                return False
            if key == "label":
                labels = r.config.get("Labels") or {}
                for w in wanted:
                    k, sep, v = w.partition("=")
                    if k not in labels or (sep and labels[k] != v):
                        return False
            if key not in ("status", "name", "id", "label"):
                raise bad_request(f"invalid filter '{key}'")
        return True

    async def remove(self, request: web.Request) -> web.Response:
        c = self.get(request.match_info["id"])
        if flag(request, "link"):
            raise unsupported("removing a container link (link=1)")
        if c.record.status == "running":
            if not flag(request, "force"):
                raise conflict(f'cannot remove container "{c.record.name}": container is running: stop the '
                               "container before removing or force remove")
            await self._halt(c, signal.SIGKILL, 10)
        if c.record.id in self.all:
            self._forget(c)
        return web.Response(status=204)

    def _forget(self, c: Container) -> None:
        self.all.pop(c.record.id, None)
        shutil.rmtree(c.folder, ignore_errors=True)
        c.removed.set()

    async def close(self) -> None:
        """The daemon stops: its containers stop with it (SIGTERM, then SIGKILL after 2 s)."""
        await asyncio.gather(*(self._halt(c, signal.SIGTERM, 2) for c in list(self.all.values())
                               if c.record.status == "running"))

    def wipe(self) -> None:
        for c in list(self.all.values()):
            if c.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
            self._forget(c)


def _signal_number(name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise bad_request(f"Invalid signal: {name}") from None
