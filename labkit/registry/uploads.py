"""Blob upload sessions: a file per session that chunks are appended to, hashed as they arrive."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blobs import BlobStore, InvalidDigest, file_digest, parse_digest
from .metadata import Metadata

STALE_AFTER = 24 * 3600.0  # unfinished uploads older than this are removed at start, like the registry's purge


class DigestMismatch(ValueError):
    """The uploaded content does not have the digest the client claimed."""


@dataclass
class _Hash:
    """A running sha256 of the session file, valid while ``offset`` equals the file's size."""

    offset: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)


class Uploads:
    def __init__(self, root: Path, blobs: BlobStore, meta: Metadata) -> None:
        self.root = root
        self.blobs = blobs
        self.meta = meta
        self._hashes: dict[str, _Hash] = {}
        root.mkdir(parents=True, exist_ok=True)

    def start(self, repo: str) -> str:
        upload = uuid.uuid4().hex
        (self.root / upload).touch()
        self.meta.add_upload(upload, repo)
        self._hashes[upload] = _Hash()
        return upload

    def path(self, repo: str, upload: str) -> Path | None:
        """The session file, if ``upload`` is an open session of ``repo``."""
        if self.meta.upload_repo(upload) != repo:
            return None
        path = self.root / upload
        return path if path.exists() else None

    @staticmethod
    def size(path: Path) -> int:
        return path.stat().st_size

    async def append(self, path: Path, chunks: AsyncIterator[bytes]) -> int:
        """Append a request body to the session; returns the new size."""
        state = self._hashes.get(path.name)
        if state is not None and state.offset != self.size(path):
            state = None
        with path.open("ab") as f:
            async for chunk in chunks:
                f.write(chunk)
                if state is not None:
                    state.hasher.update(chunk)
                    state.offset += len(chunk)
        if state is None:  # e.g. a session resumed after a restart: hash from the file when finishing
            self._hashes.pop(path.name, None)
        return self.size(path)

    def finish(self, repo: str, path: Path, digest: str) -> None:
        """Verify the session against ``digest`` and store it as a blob of ``repo``; the session ends either way.

        Raises InvalidDigest or DigestMismatch.
        """
        upload = path.name
        try:
            algorithm, _ = parse_digest(digest)
            state = self._hashes.get(upload)
            if algorithm == "sha256" and state is not None and state.offset == self.size(path):
                actual = "sha256:" + state.hasher.hexdigest()
            else:
                actual = file_digest(path, algorithm)
            if actual != digest:
                raise DigestMismatch(actual)
            self.blobs.adopt(path, digest)
            self.meta.link(repo, digest)
        finally:
            self.cancel(path)

    async def monolithic(self, repo: str, chunks: AsyncIterator[bytes], digest: str) -> None:
        """A whole blob in one request (``POST ?digest=``): verified, stored and linked, no session kept.

        Raises InvalidDigest or DigestMismatch.
        """
        algorithm, _ = parse_digest(digest)
        hasher = hashlib.new(algorithm)
        tmp = self.blobs.temp_path()
        try:
            with tmp.open("wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    hasher.update(chunk)
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatch(actual)
            self.blobs.adopt(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        self.meta.link(repo, digest)

    def cancel(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.meta.remove_upload(path.name)
        self._hashes.pop(path.name, None)

    def purge_stale(self, now: float | None = None) -> int:
        """Remove sessions abandoned for longer than STALE_AFTER; returns how many."""
        stale = self.meta.stale_uploads((now or time.time()) - STALE_AFTER)
        for upload in stale:
            self.cancel(self.root / upload)
        return len(stale)


__all__ = ["DigestMismatch", "InvalidDigest", "Uploads"]
