"""``kubectl exec`` in the sim: a process in a running container's environment.

The sim has no mount namespace, so an exec'd process gets what the container got (its environment,
PATH included, its working directory inside the container's root filesystem folder, the host's
Python for ``python``) and its arguments are mapped by one rule:

* the executable (``argv[0]``) is looked up as runc does: a name in the container's PATH, a path
  that contains a slash under the container's root first, then on the host (the sim's containers
  run the host's tools);
* every other argument that is an absolute path, except under ``/dev``, ``/proc`` and ``/sys``, is
  rewritten to a relative path that climbs from the working directory to the container's root:
  ``/app/x`` run in ``/app`` becomes ``../app/x``. Whole arguments only (``-C /dir`` maps,
  ``--directory=/dir`` and paths inside ``sh -c '...'`` do not). Tools see the container's files,
  and ``tar`` records ``app/x`` as it would in a container (it strips the leading ``../`` as it
  strips ``/``), which is what ``kubectl cp`` relies on.

Errors come in the runtime's words (runc via containerd), exit codes as the kubelet reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.procs import _child_setup
from ..apiserver.remotecommand import STDERR, STDOUT, Status, exit_status, internal_error, success
from .terminal import FdReader, open_pty, resize, tty_child_setup, write_all

HOST_PATHS = ("dev", "proc", "sys")  # absolute paths that stay the host's
EXIT_GRACE = 2.0  # seconds the output may still flow after the command exited (children holding the pipe)
WATCH = 0.5  # seconds between checks that the container still runs


@dataclass
class ContainerHandle:
    """What the kubelet hands out for one running container."""

    name: str
    spec: dict[str, Any]
    env: dict[str, str]
    cwd: Path
    rootfs: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    io: Any = None  # attach.ContainerIO for a container started with stdin or a tty

    def running(self) -> bool:
        return self.proc.poll() is None


class ExecError(Exception):
    """The command could not start; ``str()`` is the kubelet's message."""


def map_argument(arg: str, rootfs: Path, cwd: Path) -> str:
    """An absolute path as seen inside the container, as a path relative to ``cwd`` (see the module doc)."""
    if not arg.startswith("/"):
        return arg
    rest = arg.lstrip("/")
    if rest.split("/", 1)[0] in HOST_PATHS:
        return arg
    root, here = Path(os.path.realpath(rootfs)), Path(os.path.realpath(cwd))
    if here != root and root not in here.parents:  # a working directory outside the root (a volume): no climb
        return str(root / rest)
    climb = "/".join([".."] * len(here.relative_to(root).parts))
    return "/".join(p for p in (climb, rest) if p) or "."


def find_executable(name: str, env: dict[str, str], rootfs: Path, cwd: Path) -> str:
    """The file runc would execute for ``name``, or ExecError in runc's words."""
    if Path(name).name.startswith("python") and "/" not in name:
        return sys.executable
    if "/" in name:
        candidates = [str(rootfs / name.lstrip("/")), name] if name.startswith("/") else [str(cwd / name)]
        for path in candidates:
            if os.path.exists(path):
                if os.path.isdir(path) or not os.access(path, os.X_OK):
                    raise ExecError(f'exec: "{name}": permission denied')
                return path
        raise ExecError(f'exec: "{name}": stat {name}: no such file or directory')
    for folder in env.get("PATH", "").split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def start_failure(message: str) -> Status:
    """The kubelet's result when the runtime could not start the command (containerd + runc wording)."""
    return internal_error(f"error executing command in container: failed to exec in container: failed to start exec "
                          f'"{secrets.token_hex(32)}": OCI runtime exec failed: exec failed: unable to start container '
                          f"process: {message}: unknown")


def go_list(items: list[str]) -> str:
    """A []string as Go's %v prints it."""
    return "[" + " ".join(items) + "]"


class ExecProcess:
    """A command running in a container, connected by pipes or a terminal (a Session for remotecommand.serve)."""

    def __init__(self, argv: list[str], target: ContainerHandle, proc: asyncio.subprocess.Process,
                 queue: asyncio.Queue[tuple[int, bytes]], readers: list[FdReader], stdin_fd: int | None,
                 master: int | None) -> None:
        self.argv, self.target, self.proc = argv, target, proc
        self.queue, self.readers = queue, readers
        self.stdin_fd, self.master = stdin_fd, master
        self._watch = asyncio.get_running_loop().create_task(self._watch_exit())

    @classmethod
    async def start(cls, argv: list[str], target: ContainerHandle, stdin: bool, stderr: bool,
                    tty: bool) -> ExecProcess:
        """Starts ``argv`` in the container; ExecError if the runtime would refuse it."""
        exe = find_executable(argv[0], target.env, target.rootfs, target.cwd)
        with contextlib.suppress(OSError):  # every image has a /tmp; the sim's layers may lack it
            (target.rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
        args = [map_argument(a, target.rootfs, target.cwd) for a in argv[1:]]
        env = dict(target.env)
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        if tty:
            env.setdefault("TERM", "xterm")
            master, slave = open_pty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    exe, *args, stdin=slave, stdout=slave, stderr=slave, cwd=target.cwd, env=env,
                    preexec_fn=tty_child_setup)
            except OSError as err:
                os.close(master)
                raise ExecError(f'exec: "{argv[0]}": {err.strerror}') from err
            finally:
                os.close(slave)
            return cls(argv, target, proc, queue, [FdReader(master, queue, STDOUT)], master, master)
        fds = {STDOUT: os.pipe(), **({STDERR: os.pipe()} if stderr else {})}
        stdin_pipe = os.pipe() if stdin else None
        try:
            proc = await asyncio.create_subprocess_exec(
                exe, *args, stdin=stdin_pipe[0] if stdin_pipe else subprocess.DEVNULL, stdout=fds[STDOUT][1],
                stderr=fds[STDERR][1] if stderr else subprocess.DEVNULL, cwd=target.cwd, env=env,
                preexec_fn=_child_setup)
        except OSError as err:
            for r, w in [*fds.values(), *([stdin_pipe] if stdin_pipe else [])]:
                os.close(r)
                os.close(w)
            raise ExecError(f'exec: "{argv[0]}": {err.strerror}') from err
        for _, w in fds.values():
            os.close(w)
        readers = []
        for tag, (r, _) in fds.items():
            os.set_blocking(r, False)
            readers.append(FdReader(r, queue, tag))
        stdin_fd = None
        if stdin_pipe:
            os.close(stdin_pipe[0])
            stdin_fd = stdin_pipe[1]
            os.set_blocking(stdin_fd, False)
        return cls(argv, target, proc, queue, readers, stdin_fd, None)

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is not None and data:
            with contextlib.suppress(BrokenPipeError, OSError):
                await write_all(self.stdin_fd, data)

    async def close_stdin(self) -> None:
        if self.master is not None:  # a terminal's end of input is ^D
            await self.write_stdin(b"\x04")
        elif self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None

    def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                resize(self.master, width, height)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        open_readers = len(self.readers)
        while open_readers:
            tag, data = await self.queue.get()
            if data:
                yield tag, data
            else:
                open_readers -= 1

    async def result(self) -> Status:
        code = await self.proc.wait()
        self.close()
        if code < 0:
            code = 128 - code  # killed by a signal: the shell's convention, as runc reports it
        if code == 0:
            return success()
        return exit_status(code, f"error executing command {go_list(self.argv)}, exit code {code}")

    async def stop(self) -> None:
        """The client went away: the command is killed (a detached exec would outlive nothing in the sim)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def _watch_exit(self) -> None:
        """The command dies with its container, and its output ends soon after it exited."""
        while self.proc.returncode is None:
            if not self.target.running():
                await self.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), WATCH)
        await asyncio.sleep(EXIT_GRACE)
        for reader in self.readers:
            reader.stop()

    def close(self) -> None:
        """Releases the descriptors (once the output has ended or the process is gone)."""
        self._watch.cancel()
        for reader in self.readers:
            reader.stop()
        for fd in {self.stdin_fd, self.master, *(r.fd for r in self.readers)} - {None}:
            with contextlib.suppress(OSError):
                os.close(fd)  # type: ignore[arg-type]
        self.stdin_fd = self.master = None
        self.readers = []


async def run_exec(argv: list[str], target: ContainerHandle, stdin: bool, stderr: bool,
                   tty: bool) -> ExecProcess | Status:
    """The started command, or the kubelet's failure Status when the runtime refuses it."""
    try:
        return await ExecProcess.start(argv, target, stdin, stderr, tty)
    except ExecError as err:
        return start_failure(str(err))
