"""The registry's state under its state folder: blobs by digest, metadata in SQLite, upload sessions."""

from __future__ import annotations

import shutil
from pathlib import Path

from .blobs import BlobStore
from .manifests import Manifest
from .metadata import ManifestRow, Metadata
from .uploads import Uploads


class RegistryStorage:
    """``blobs/sha256/ab/abcd…`` (content-addressed), ``metadata.sqlite``, ``uploads/<session>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open()

    def _open(self) -> None:
        root = self.root
        self.blobs = BlobStore(root / "blobs")
        self.meta = Metadata(root / "metadata.sqlite")
        self.uploads = Uploads(root / "uploads", self.blobs, self.meta)

    def close(self) -> None:
        self.meta.close()

    def wipe(self) -> None:
        """Forget everything (``labkit reset``)."""
        self.close()
        for name in ("blobs", "uploads", "metadata.sqlite", "metadata.sqlite-wal", "metadata.sqlite-shm"):
            path = self.root / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        self._open()

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.meta.linked(repo, digest) and self.blobs.exists(digest)

    def collect(self, digest: str) -> None:
        """Delete a blob's file once no repository references it any more."""
        if not self.meta.referenced(digest):
            self.blobs.delete(digest)

    def delete_blob(self, repo: str, digest: str) -> bool:
        if not self.meta.unlink(repo, digest):
            return False
        self.collect(digest)
        return True

    def put_manifest(self, repo: str, body: bytes, manifest: Manifest, tags: list[str]) -> str:
        digest = self.blobs.put(body)
        self.meta.put_manifest(repo, ManifestRow(digest, manifest.media_type, len(body), manifest.artifact_type,
                                                 manifest.annotations, manifest.subject), tags)
        return digest

    def delete_manifest(self, repo: str, digest: str) -> bool:
        if not self.meta.delete_manifest(repo, digest):
            return False
        self.collect(digest)
        return True
