"""``kubectl attach`` in the sim: a container's stdin and terminal, kept by the kubelet, and attach sessions.

A container whose spec says ``stdin: true`` is started with a pipe as its stdin, one with
``tty: true`` on a pseudo-terminal whose output the kubelet copies into the container's log;
others keep stdin on /dev/null. Their stdout and stderr are pipes the kubelet copies into the
log in the CRI format (``crilog``). An attach session streams the log's content
from the moment it attaches (stdout and stderr arrive merged, as the log holds them), feeds its
stdin to the container if it has one (containerd drops it otherwise) and resizes the terminal.
It ends when the container exits, or when the client's stdin ends: then ``stdinOnce`` closes the
container's stdin and keeps streaming, as containerd does, and otherwise the client detaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ...core.procs import _child_setup
from ..apiserver.remotecommand import STDOUT, Status, success
from .crilog import CriLog, LogFollower, LogPump
from .exec import ContainerHandle
from .terminal import FdReader, open_pty, resize, tty_child_setup, write_all

POLL = 0.05  # seconds between looks at the log while attached


class ContainerIO:
    """The stdin pipe or the terminal of a running container."""

    def __init__(self, stdin_fd: int | None, master: int | None, log: CriLog | None) -> None:
        self.stdin_fd, self.master, self.log = stdin_fd, master, log
        self.stdin_closed = False
        self._pump: asyncio.Task[None] | None = None
        if master is not None and log is not None:
            self._pump = asyncio.get_running_loop().create_task(self._copy_terminal(master, log))

    @classmethod
    def spawn(cls, argv: list[str], cwd: Path, env: dict[str, str], spec: dict[str, Any],
              log: CriLog) -> tuple[subprocess.Popen[bytes], ContainerIO | None, LogPump | None]:
        """Starts a container's process as the kubelet does, with stdin and terminal as its spec asks; its output
        goes to ``log`` (through the returned pump, or the terminal's copy)."""
        if spec.get("tty"):
            master, slave = open_pty()
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env={"TERM": "xterm", **env}, stdin=slave, stdout=slave,
                                        stderr=slave, preexec_fn=tty_child_setup)
            except OSError:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return proc, cls(master, master, log), None
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if spec.get("stdin") else
                                subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_child_setup)
        pipes = {}
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            pipes[stream] = os.dup(pipe.fileno())
            pipe.close()
        pump = LogPump(log, pipes)
        if proc.stdin is None:
            return proc, None, pump
        fd = os.dup(proc.stdin.fileno())
        proc.stdin.close()
        os.set_blocking(fd, False)
        return proc, cls(fd, None, None), pump

    async def _copy_terminal(self, master: int, log: CriLog) -> None:
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        reader = FdReader(master, queue, STDOUT)
        try:
            while True:
                _, data = await queue.get()
                if not data:
                    break
                log.write("stdout", data)
        finally:
            reader.stop()

    async def write(self, data: bytes) -> None:
        fd = self.stdin_fd
        if fd is not None and not self.stdin_closed and data:
            with contextlib.suppress(OSError):
                await write_all(fd, data)

    def close_stdin(self) -> None:
        """The container's stdin ends (``stdinOnce``); a terminal gets ^D."""
        if self.stdin_closed or self.stdin_fd is None:
            return
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")
            return
        self.stdin_closed = True
        with contextlib.suppress(OSError):
            os.close(self.stdin_fd)

    def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                resize(self.master, width, height)

    def close(self) -> None:
        """The container is gone: its descriptors are released."""
        if self._pump is not None:
            self._pump.cancel()
        for fd in {self.stdin_fd, self.master} - {None}:
            if fd == self.stdin_fd and self.stdin_closed:
                continue
            with contextlib.suppress(OSError):
                os.close(fd)  # type: ignore[arg-type]
        self.stdin_fd = self.master = None
        self.stdin_closed = True
        if self.log is not None:
            self.log.close()


class Attachment:
    """One ``kubectl attach`` to a running container (a Session for remotecommand.serve)."""

    def __init__(self, target: ContainerHandle, stdin: bool) -> None:
        self.target = target
        self.io: ContainerIO | None = target.io
        self.stdin = stdin
        offset = target.log_path.stat().st_size if target.log_path.exists() else 0
        self._follower = LogFollower(target.log_path, offset) if target.log_path.exists() else None
        self._detached = asyncio.Event()

    async def write_stdin(self, data: bytes) -> None:
        if self.io is not None:
            await self.io.write(data)

    async def close_stdin(self) -> None:
        if self.io is not None and self.target.spec.get("stdinOnce") and not self.target.spec.get("tty"):
            self.io.close_stdin()
        elif self.io is not None and self.io.stdin_fd is not None:
            self._detached.set()

    def resize(self, width: int, height: int) -> None:
        if self.io is not None:
            self.io.resize(width, height)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """The container's log from the moment of attaching, until it exits or the client detaches."""
        try:
            while True:
                running = self.target.running()
                data = self._follower.read() if self._follower is not None else b""
                if data:
                    yield STDOUT, data
                    continue
                if not running or self._detached.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._detached.wait(), POLL)
        finally:
            if self._follower is not None:
                self._follower.close()

    async def result(self) -> Status:
        return success()

    async def stop(self) -> None:
        self._detached.set()
