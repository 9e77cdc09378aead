"""Content stored once: files named by their SHA-256 under ``blobs/ab/abcd…``, written while hashed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    """A file in the blob store with the checksums Nexus reports for an asset."""

    sha256: str
    sha1: str
    md5: str
    size: int


class _Hashes:
    def __init__(self) -> None:
        self.sha256, self.sha1, self.md5 = hashlib.sha256(), hashlib.sha1(), hashlib.md5()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        for h in (self.sha256, self.sha1, self.md5):
            h.update(chunk)
        self.size += len(chunk)

    def stored(self) -> Stored:
        return Stored(self.sha256.hexdigest(), self.sha1.hexdigest(), self.md5.hexdigest(), self.size)


class Blobs:
    """Immutable files by SHA-256; a file appears under its name only once it is complete."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():  # an interrupted download
            stale.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _adopt(self, tmp: Path, stored: Stored) -> Stored:
        target = self.path(stored.sha256)
        if target.exists():
            tmp.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        return stored

    async def write(self, chunks: AsyncIterator[bytes]) -> Stored:
        """Store a stream (an upstream download), hashing it as it is written."""
        tmp, hashes = self.tmp / uuid.uuid4().hex, _Hashes()
        try:
            with tmp.open("wb") as f:
                async for chunk in chunks:
                    hashes.update(chunk)
                    f.write(chunk)
                f.flush()
                await asyncio.to_thread(os.fsync, f.fileno())  # a big file's fsync must not stall the server
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._adopt(tmp, hashes.stored())

    def put(self, data: bytes) -> Stored:
        tmp, hashes = self.tmp / uuid.uuid4().hex, _Hashes()
        hashes.update(data)
        tmp.write_bytes(data)
        return self._adopt(tmp, hashes.stored())

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def digest(self, sha256: str, algorithm: str) -> str:
        """Another checksum of a stored file (``sha512``)."""
        with self.path(sha256).open("rb") as f:
            return hashlib.file_digest(f, algorithm).hexdigest()
