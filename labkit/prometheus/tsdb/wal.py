"""The write-ahead log: numbered segment files of checksummed records (series definitions and sample batches),
written with one ``os.write`` per batch so that whatever was acknowledged is in the kernel's page cache and
survives a SIGKILL of the process; a torn last record (a crash mid-write) is dropped on replay."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HEADER = struct.Struct("<BII")  # record type, payload length, crc32 of the payload
SERIES, SAMPLES = 1, 2
SAMPLE_DTYPE = np.dtype([("ref", "<u4"), ("t", "<i8"), ("v", "<f8")])


def encode_series(ref: int, labels: dict[str, str]) -> bytes:
    return _record(SERIES, struct.pack("<I", ref) + json.dumps(labels, separators=(",", ":")).encode())


def encode_samples(refs: list[int], ts: list[int], vs: list[float]) -> bytes:
    batch = np.empty(len(refs), SAMPLE_DTYPE)
    batch["ref"], batch["t"], batch["v"] = refs, ts, vs
    return _record(SAMPLES, batch.tobytes())


def _record(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload), zlib.crc32(payload)) + payload


def _records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The whole records of a segment; a torn tail (a crash mid-write) ends it."""
    pos = 0
    while pos + HEADER.size <= len(data):
        kind, length, crc = HEADER.unpack_from(data, pos)
        payload = data[pos + HEADER.size: pos + HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        pos += HEADER.size + length
        yield kind, payload


def _valid_length(data: bytes) -> int:
    return sum(HEADER.size + len(payload) for _, payload in _records(data))


class WAL:
    """Segments ``<dir>/00000001``, ``00000002``…; appends go to the newest."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        segments = self.segments()
        self.current = segments[-1] if segments else 1
        last = self._path(self.current)
        if last.exists():  # repair: cut a torn last record, so that new records follow whole ones
            data = last.read_bytes()
            valid = _valid_length(data)
            if valid < len(data):
                os.truncate(last, valid)
        self._fd = os.open(self._path(self.current), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _path(self, number: int) -> Path:
        return self.dir / f"{number:08d}"

    def segments(self) -> list[int]:
        return sorted(int(p.name) for p in self.dir.iterdir() if p.name.isdigit())

    def write(self, data: bytes) -> None:
        if data:
            os.write(self._fd, data)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def replay(self) -> Iterator[tuple[int, object]]:
        """Every whole record of every segment, oldest first: ``(SERIES, (ref, labels))`` or
        ``(SAMPLES, structured array)``."""
        for number in self.segments():
            data = self._path(number).read_bytes()
            for kind, payload in _records(data):
                if kind == SERIES:
                    yield SERIES, (struct.unpack_from("<I", payload)[0], json.loads(payload[4:]))
                elif kind == SAMPLES:
                    yield SAMPLES, np.frombuffer(payload, SAMPLE_DTYPE)

    def checkpoint(self, data: bytes) -> None:
        """Start a new segment holding ``data`` (the live state) and drop the older ones."""
        number = self.current + 1
        tmp = self.dir / f"{number:08d}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(number))
        os.close(self._fd)
        self._fd = os.open(self._path(number), os.O_WRONLY | os.O_APPEND)
        old, self.current = self.segments(), number
        for n in old:
            if n < number:
                self._path(n).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
