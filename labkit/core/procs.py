"""Supervision of the child processes a lab daemon starts.

Children run in their own process group and, on Linux, get SIGKILL when the
daemon dies, so a crashed daemon leaves no orphans; their pids are also
recorded so the next daemon reaps any that survived.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .files import read_json, write_json

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def terminate(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM a child process, SIGKILL it after ``grace`` seconds, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_group(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            with contextlib.suppress(ChildProcessError):  # reap if it is our own child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopping: bool = field(default=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts, restarts and stops named child processes; logs go to ``logs/<name>.log``."""

    def __init__(self, registry: Path, logs: Path) -> None:
        self.registry = registry
        self.logs = logs
        self.children: dict[str, Child] = {}
        self._watch: asyncio.Task[None] | None = None

    def reap_leftovers(self) -> list[int]:
        """Kill processes a previous (crashed) daemon recorded and that still run."""
        killed = []
        for entry in read_json(self.registry, []) or []:
            try:
                p = psutil.Process(entry["pid"])
                if abs(p.create_time() - entry["created"]) < 1.0:
                    kill_group(entry["pid"], grace=2.0)
                    killed.append(entry["pid"])
            except psutil.Error:
                continue
        write_json(self.registry, [])
        return killed

    def _record(self) -> None:
        entries = []
        for c in self.children.values():
            if c.running and c.proc is not None:
                try:
                    created = psutil.Process(c.proc.pid).create_time()
                except psutil.Error:
                    continue
                entries.append({"name": c.name, "pid": c.proc.pid, "created": created})
        write_json(self.registry, entries)

    def _spawn(self, child: Child) -> None:
        log = open(self.logs / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.proc = subprocess.Popen(
            child.argv, env=child.env, cwd=child.cwd, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup,
        )
        log.close()
        self._record()

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              cwd: Path | None = None, restart: bool = True) -> Child:
        if name in self.children and self.children[name].running:
            return self.children[name]
        child = Child(name, list(argv), env, cwd, restart)
        self.children[name] = child
        self._spawn(child)
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watchdog())
        return child

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for child in list(self.children.values()):
                if child.restart and not child.stopping and not child.running:
                    child.restarts += 1
                    await asyncio.sleep(min(10.0, 0.5 * 2 ** min(child.restarts, 5)))
                    if not child.stopping:
                        self._spawn(child)

    async def stop(self, name: str, grace: float = 5.0) -> None:
        child = self.children.pop(name, None)
        if child and child.proc:
            child.stopping = True
            await asyncio.to_thread(kill_group, child.proc.pid, grace)
            child.proc.wait()
        self._record()

    async def stop_all(self) -> None:
        if self._watch:
            self._watch.cancel()
        await asyncio.gather(*(self.stop(n) for n in list(self.children)))
