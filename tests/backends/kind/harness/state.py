"""The harness's own state: what the stand-ins created (clusters, containers, images), in one folder.

Every stand-in call is a short-lived process, so everything lives on disk under ``$STANDIN_STATE``:
``calls.jsonl`` (each call's argv and exit code), ``clusters/<name>/`` (a kind cluster: its config and
the sim lab home behind it), ``containers.json`` (the compose containers and their processes),
``images/`` (built images as OCI layouts), ``volumes/`` and ``logs/``. Long-running processes (the sim
labs' daemons aside, which ``labkit down`` stops) are recorded in ``procs.json`` in the format of
:class:`labkit.core.procs.Supervisor`, whose ``reap_leftovers`` is the harness's last word on them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from labkit.core.files import read_json, write_json
from labkit.core.paths import socket_path
from labkit.core.procs import Supervisor

from .flags import Failure

STATE_ENV = "STANDIN_STATE"
FAIL_ENV = "STANDIN_FAIL"
KUBECTL_ENV = "STANDIN_KUBECTL"  # the real kubectl the recording wrapper runs
REPO = Path(__file__).resolve().parents[4]
_HELD: dict[Path, int] = {}  # how deep this process holds each state folder's lock


@dataclass(frozen=True)
class State:
    """The harness state folder and the few JSON files in it."""

    root: Path

    @classmethod
    def from_env(cls) -> State:
        value = os.environ.get(STATE_ENV)
        if not value:
            raise Failure(f"the kind harness is not set up: ${STATE_ENV} names no folder")
        return cls(Path(value))

    @property
    def calls(self) -> Path:
        return self.root / "calls.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def procs(self) -> Path:
        return self.root / "procs.json"

    @property
    def containers_file(self) -> Path:
        return self.root / "containers.json"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def docker_socket(self) -> Path:
        """The stand-in Docker Engine's socket (``DOCKER_HOST``): a link to the Engine API of the sim lab behind
        the newest cluster, made by ``kind create cluster``, removed with that cluster."""
        return socket_path(self.root / "docker.sock")

    def cluster_dir(self, name: str) -> Path:
        return self.root / "clusters" / name

    def clusters(self) -> list[str]:
        """The clusters created (and not deleted), by name."""
        folder = self.root / "clusters"
        return sorted(p.parent.name for p in folder.glob("*/cluster.json")) if folder.is_dir() else []

    def sim_homes(self) -> list[Path]:
        """The home of every sim lab a cluster started, created completely or not."""
        return sorted((self.root / "clusters").glob("*/home"))

    def cluster(self, name: str) -> dict[str, Any] | None:
        return read_json(self.cluster_dir(name) / "cluster.json")

    def containers(self) -> dict[str, dict[str, Any]]:
        """The compose containers by name: project, service, image, ports, process, running."""
        return read_json(self.containers_file, {}) or {}

    def save_containers(self, containers: dict[str, dict[str, Any]]) -> None:
        write_json(self.containers_file, containers)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise the read-modify-write of the state among concurrent stand-in calls (re-entrant)."""
        if _HELD.get(self.root):
            _HELD[self.root] += 1
            try:
                yield
            finally:
                _HELD[self.root] -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            _HELD[self.root] = 1
            try:
                yield
            finally:
                _HELD[self.root] = 0
                fcntl.flock(f, fcntl.LOCK_UN)

    def record(self, tool: str, argv: list[str], code: int, seconds: float) -> None:
        """Append one call (argv, exit code, duration), as the tests compare it with the README."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.calls, "a") as f:
            f.write(json.dumps({"argv": [tool, *argv], "exit": code, "seconds": round(seconds, 3)}) + "\n")

    # -- processes -------------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start a long-running process that outlives this call (its own session); returns its pid."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        with self.lock():
            entries = [e for e in read_json(self.procs, []) or [] if e["name"] != name]
            entries.append({"name": name, "pid": proc.pid, "created": psutil.Process(proc.pid).create_time()})
            write_json(self.procs, entries)
        return proc.pid

    def alive(self, name: str) -> int | None:
        """The pid of the recorded process ``name`` while it runs (and is the process recorded)."""
        entry = next((e for e in read_json(self.procs, []) or [] if e["name"] == name), None)
        if entry is None:
            return None
        try:
            proc = psutil.Process(entry["pid"])
            if abs(proc.create_time() - entry["created"]) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE:
                return entry["pid"]
        except psutil.Error:
            pass
        return None

    def stop(self, name: str, grace: float = 10.0) -> None:
        """SIGTERM the process ``name`` (its group), SIGKILL after ``grace`` seconds; forget it.

        Not ``kill_group``: that waits for the group to vanish, and a process of an earlier stand-in call is
        init's child, whose zombie lingers until init reaps it; here a zombie counts as stopped."""
        pid = self.alive(name)
        if pid is not None:
            try:
                members = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                members = []
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
                if wait_for(lambda: all(_gone(p) for p in members), wait, 0.02):
                    break
        with self.lock():
            write_json(self.procs, [e for e in read_json(self.procs, []) or [] if e["name"] != name])

    def reap(self) -> list[int]:
        """Kill every recorded process still running (the fixture's teardown)."""
        return Supervisor(self.procs, self.logs).reap_leftovers()


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a harness Python process: this repository importable."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def wait_for(check: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
