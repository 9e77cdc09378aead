"""Terminals and raw file descriptors for container processes: ptys, window sizes, non-blocking reads and writes."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pty
import struct
import termios

from ...core.procs import _child_setup

DEFAULT_SIZE = (80, 24)  # columns, rows until the client says otherwise


def open_pty(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal of ``width`` x ``height``; the master is non-blocking."""
    master, slave = pty.openpty()
    resize(master, width, height)
    os.set_blocking(master, False)
    return master, slave


def resize(fd: int, width: int, height: int) -> None:
    """Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group."""
    if width > 0 and height > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def tty_child_setup() -> None:
    """In the child: a session of its own (as every container process), with the terminal on fd 0 as its
    controlling terminal, so that job control and ^C work as in a container."""
    _child_setup()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class FdReader:
    """Reads a non-blocking fd on the event loop into a queue; b"" marks the end (EOF, or EIO of a pty whose
    other side is closed)."""

    def __init__(self, fd: int, queue: asyncio.Queue[tuple[int, bytes]], tag: int) -> None:
        self.fd, self.queue, self.tag = fd, queue, tag
        self.loop = asyncio.get_running_loop()
        self.done = False
        self.loop.add_reader(fd, self._ready)

    def _ready(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if data:
            self.queue.put_nowait((self.tag, data))
        else:
            self.stop()

    def stop(self) -> None:
        if not self.done:
            self.done = True
            self.loop.remove_reader(self.fd)
            self.queue.put_nowait((self.tag, b""))


async def write_all(fd: int, data: bytes) -> None:
    """Writes everything to a non-blocking fd, waiting while the other side is full."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        view = view[n:]
