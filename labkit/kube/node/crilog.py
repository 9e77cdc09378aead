"""Container logs as the kubelet and containerd keep them on a node.

Layout, below the node's ``/var/log`` (:func:`node_log_dir`): ``pods/<ns>_<pod>_<uid>/<container>/<restart>.log``,
and ``containers/<pod>_<ns>_<container>-<64-hex id>.log``, a symlink to the file of that container instance.

Format (containerd's CRI logger): one record per line, ``<RFC3339Nano time> <stdout|stderr> <F|P> <content>``; a
line longer than ``MAX_LINE`` bytes is cut into ``P`` (partial) records ended by an ``F`` one, and output left
without a newline when the stream ends is a last ``P`` record. When the file reaches ``MAX_SIZE`` it is rotated, as
the kubelet's container log manager does: renamed ``<restart>.log.<YYYYMMDD-HHMMSS>``, older rotated files
gzipped, at most ``MAX_FILES`` files kept, and writing goes on in a new ``<restart>.log``.

Reading (``kubectl logs``): :func:`read_log` renders a file as the kubelet does (``timestamps`` in the fixed
nine-digit form, ``since``, ``tailLines`` counted in records, ``limitBytes``); :class:`LogFollower` goes on from an
offset (``-f``, ``kubectl attach``), through a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import hashlib
import os
import re
import shutil
import time
from pathlib import Path

MAX_LINE = 16 * 1024  # containerd's max_container_log_line_size
MAX_SIZE = 10 * 1024 * 1024  # the kubelet's containerLogMaxSize (10Mi)
MAX_FILES = 5  # containerLogMaxFiles
RECORD = re.compile(rb"^(\S+) (stdout|stderr) ([FP]) ?(.*)$", re.S)


def node_log_dir(kube_state: Path, node: str) -> Path:
    """The node's ``/var/log`` in the sim (``<lab state>/kube/logs/<node>``)."""
    return kube_state / "logs" / node


def container_id(pod_uid: str, container: str, restart: int) -> str:
    """A container instance's 64-hex id (as containerd's)."""
    return hashlib.sha256(f"{pod_uid}/{container}/{restart}".encode()).hexdigest()


def pod_log_dir(node_dir: Path, namespace: str, pod: str, uid: str) -> Path:
    return node_dir / "pods" / f"{namespace}_{pod}_{uid}"


def link_path(node_dir: Path, namespace: str, pod: str, container: str, cid: str) -> Path:
    return node_dir / "containers" / f"{pod}_{namespace}_{container}-{cid}.log"


def timestamp(ns: int | None = None) -> bytes:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped), as containerd stamps a record."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    tail = f"{frac:09d}".rstrip("0")
    return f"{base}{'.' + tail if tail else ''}Z".encode()


class CriLog:
    """One container instance's log file, written in the CRI format, rotated by size."""

    def __init__(self, path: Path, max_size: int = MAX_SIZE, max_files: int = MAX_FILES,
                 max_line: int = MAX_LINE) -> None:
        self.path = path
        self.max_size, self.max_files, self.max_line = max_size, max_files, max_line
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial: dict[str, bytes] = {}
        self.closed = False

    def write(self, stream: str, data: bytes) -> None:
        """Output of ``stream`` (stdout or stderr): its complete lines become records now, the rest waits."""
        if self.closed:
            return
        buf = self.partial.pop(stream, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        ts = timestamp()
        head = ts + b" " + stream.encode() + b" "
        out = []
        for line in lines:
            while len(line) > self.max_line:
                out.append(head + b"P " + line[:self.max_line] + b"\n")
                line = line[self.max_line:]
            out.append(head + b"F " + line + b"\n")
        while len(rest) >= self.max_line:
            out.append(head + b"P " + rest[:self.max_line] + b"\n")
            rest = rest[self.max_line:]
        if rest:
            self.partial[stream] = rest
        if out:
            self._append(b"".join(out))

    def _append(self, blob: bytes) -> None:
        view = memoryview(blob)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(blob)
        if self.size >= self.max_size:
            self.rotate()

    def rotate(self) -> None:
        """Renames the file aside (``<n>.log.<YYYYMMDD-HHMMSS>``), gzips older rotated files, keeps
        ``max_files`` files, and goes on in a new one."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{stamp}")
        n = 1
        while target.exists() or target.with_name(target.name + ".gz").exists():
            target = self.path.with_name(f"{self.path.name}.{stamp}-{n}")
            n += 1
        os.rename(self.path, target)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = 0
        rotated = sorted((p for p in self.path.parent.glob(self.path.name + ".*")), key=_rotation_key)
        for old in rotated[:-1]:
            if old.suffix != ".gz":
                with open(old, "rb") as src, gzip.open(old.with_name(old.name + ".gz"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                old.unlink()
        rotated = sorted((p for p in self.path.parent.glob(self.path.name + ".*")), key=_rotation_key)
        for old in rotated[:max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        """The streams ended: output left without a newline is written as a last partial record."""
        if self.closed:
            return
        ts = timestamp()
        tail = b"".join(ts + b" " + s.encode() + b" P " + rest + b"\n" for s, rest in self.partial.items() if rest)
        self.partial.clear()
        if tail:
            self._append(tail)
        os.close(self.fd)
        self.closed = True


def _rotation_key(p: Path) -> str:
    return p.name.removesuffix(".gz")


class LogPump:
    """Copies a container's stdout and stderr pipes into its :class:`CriLog`, on the event loop (the shim's job)."""

    def __init__(self, log: CriLog, pipes: dict[str, int]) -> None:
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.open: dict[int, str] = {}
        for stream, fd in pipes.items():
            os.set_blocking(fd, False)
            self.open[fd] = stream
            self.loop.add_reader(fd, self._readable, fd)

    @property
    def done(self) -> bool:
        return not self.open

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 256 * 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.log.write(self.open[fd], data)
            return
        self._close_fd(fd)

    def _close_fd(self, fd: int) -> None:
        self.loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
        self.open.pop(fd, None)
        if not self.open:
            self.log.close()

    def close(self) -> None:
        """Takes what the pipes hold now and closes them and the log (the node stops, the pod is gone)."""
        for fd in list(self.open):
            while True:
                try:
                    data = os.read(fd, 256 * 1024)
                except OSError:
                    data = b""
                if not data:
                    break
                self.log.write(self.open[fd], data)
            self._close_fd(fd)


# -- reading ------------------------------------------------------------------------------------------------------
def parse_since(value: str) -> float:
    """An RFC 3339 time (``sinceTime``) as seconds since the epoch."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    m = re.match(r"(.*?\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if not m:
        raise ValueError(value)
    base = dt.datetime.fromisoformat(m.group(1) + (m.group(3) or "+00:00"))
    return base.timestamp() + (float("0" + m.group(2)) if m.group(2) else 0.0)


def record_time(ts: bytes) -> float:
    return parse_since(ts.decode())


def fixed_timestamp(ts: bytes) -> bytes:
    """The kubelet's ``--timestamps`` form: nine digits of fraction (``2006-01-02T15:04:05.000000000Z``)."""
    text = ts.decode()
    m = re.match(r"(.*?\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", text)
    if not m:
        return ts
    return f"{m.group(1)}.{(m.group(2) or '')[:9]:0<9}{m.group(3)}".encode()


class Renderer:
    """Turns CRI records into what ``kubectl logs`` shows (content, with a timestamp at each line's start)."""

    def __init__(self, timestamps: bool = False, since: float | None = None, limit: int | None = None) -> None:
        self.timestamps, self.since, self.limit = timestamps, since, limit
        self.at_line_start = True
        self.sent = 0

    @property
    def full(self) -> bool:
        return self.limit is not None and self.sent >= self.limit

    def render(self, lines: list[bytes]) -> bytes:
        out = []
        for raw in lines:
            m = RECORD.match(raw.rstrip(b"\n"))
            if m is None:
                continue
            ts, _, tag, content = m.groups()
            if self.since is not None and record_time(ts) < self.since:
                continue
            piece = content + (b"\n" if tag == b"F" else b"")
            if self.timestamps and self.at_line_start:
                piece = fixed_timestamp(ts) + b" " + piece
            self.at_line_start = tag == b"F"
            out.append(piece)
        blob = b"".join(out)
        if self.limit is not None:
            blob = blob[:max(0, self.limit - self.sent)]
        self.sent += len(blob)
        return blob


def read_log(path: Path, renderer: Renderer, tail: int | None = None) -> tuple[bytes, int]:
    """The file rendered, and the offset following it (where ``-f`` goes on)."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines(keepends=True)
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    return renderer.render(lines), end


class LogFollower:
    """New records of a container's log from ``offset`` on, through rotations (the new file is read from its
    start, as the kubelet's follower reopens it)."""

    def __init__(self, path: Path, offset: int, renderer: Renderer | None = None) -> None:
        self.path = path
        self.renderer = renderer or Renderer()
        self.f = open(path, "rb")  # noqa: SIM115 - kept open while following
        self.f.seek(offset)
        self.carry = b""

    def read(self) -> bytes:
        out = self._drain()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino:
                out += self._drain()  # the rest of the rotated file, then the new one
                self.f.close()
                self.f = open(self.path, "rb")  # noqa: SIM115
                self.carry = b""
                out += self._drain()
        return out

    def _drain(self) -> bytes:
        data = self.carry + self.f.read(4 * 1024 * 1024)
        end = data.rfind(b"\n") + 1
        self.carry = data[end:]
        return self.renderer.render(data[:end].splitlines(keepends=True)) if end else b""

    def close(self) -> None:
        self.f.close()
