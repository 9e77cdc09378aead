"""Content-addressed blob storage: ``blobs/<algorithm>/<first two hex>/<hex>``, written atomically, verified."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")


class InvalidDigest(ValueError):
    """A digest string that is malformed or uses an unsupported algorithm."""


def parse_digest(digest: str) -> tuple[str, str]:
    """``sha256:<hex>`` -> (algorithm, hex); raises InvalidDigest."""
    algorithm, _, encoded = digest.partition(":")
    if ALGORITHMS.get(algorithm) != len(encoded) or not _HEX.match(encoded):
        raise InvalidDigest(digest)
    return algorithm, encoded


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with path.open("rb") as f:
        return f"{algorithm}:{hashlib.file_digest(f, algorithm).hexdigest()}"


class BlobStore:
    """Immutable blobs by digest. A blob appears under its digest only once its content is verified."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algorithm, encoded = parse_digest(digest)
        return self.root / algorithm / encoded[:2] / encoded

    def exists(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except InvalidDigest:
            return False

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def temp_path(self) -> Path:
        """A fresh file name on the same filesystem, for content that is adopted later."""
        return self.tmp / uuid.uuid4().hex

    def adopt(self, source: Path, digest: str) -> None:
        """Move the verified file ``source`` into place as ``digest`` (a no-op move if it is already stored)."""
        target = self.path(digest)
        if target.exists():
            source.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def put(self, data: bytes, algorithm: str = "sha256") -> str:
        """Store ``data``; returns its digest."""
        digest = digest_of(data, algorithm)
        if not self.exists(digest):
            tmp = self.temp_path()
            tmp.write_bytes(data)
            self.adopt(tmp, digest)
        return digest

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        """Every stored digest (for garbage collection)."""
        return [f"{algo}:{p.name}" for algo in ALGORITHMS if (self.root / algo).is_dir()
                for p in (self.root / algo).glob("*/*")]
