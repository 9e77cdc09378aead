"""Registry storage: blobs by digest on disk, upload sessions, repositories' manifests and tags in SQLite."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from ..core.store import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (repo TEXT, digest TEXT, media_type TEXT, PRIMARY KEY (repo, digest));
CREATE TABLE IF NOT EXISTS tags (repo TEXT, tag TEXT, digest TEXT, PRIMARY KEY (repo, tag));
CREATE TABLE IF NOT EXISTS links (repo TEXT, digest TEXT, PRIMARY KEY (repo, digest));
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "uploads").mkdir(parents=True, exist_ok=True)
        self.db = Database(root / "registry.sqlite", _SCHEMA)

    # -- blobs --------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexa = digest.partition(":")
        if algo != "sha256" or len(hexa) != 64 or not all(c in "0123456789abcdef" for c in hexa):
            raise ValueError(digest)
        return self.root / "blobs" / algo / hexa[:2] / hexa

    def has_blob(self, repo: str, digest: str) -> bool:
        try:
            path = self.blob_path(digest)
        except ValueError:
            return False
        return path.exists() and bool(self.db.query("SELECT 1 FROM links WHERE repo=? AND digest=?", (repo, digest)))

    def link(self, repo: str, digest: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO links (repo, digest) VALUES (?, ?)", (repo, digest))

    def unlink(self, repo: str, digest: str) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM links WHERE repo=? AND digest=?", (repo, digest)).rowcount > 0

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        path = self.blob_path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self.link(repo, digest)
        return digest

    # -- uploads ------------------------------------------------------------
    def new_upload(self) -> str:
        upload = uuid.uuid4().hex
        (self.root / "uploads" / upload).touch()
        return upload

    def upload_path(self, upload: str) -> Path | None:
        path = self.root / "uploads" / upload
        return path if len(upload) == 32 and path.exists() else None

    def finish_upload(self, repo: str, upload: str, digest: str) -> bool:
        """Move a finished upload into place if its content has ``digest``; False if it does not."""
        path = self.upload_path(upload)
        assert path is not None
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            return False
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            path.unlink()
        else:
            shutil.move(path, target)
        self.link(repo, digest)
        return True

    # -- manifests and tags ---------------------------------------------------
    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        digest = self.put_blob(repo, body)
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?)", (repo, digest, media_type))
            if not ref.startswith("sha256:"):
                c.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", (repo, ref, digest))
        return digest

    def manifest(self, repo: str, ref: str) -> tuple[str, str, bytes] | None:
        digest = ref
        if not ref.startswith("sha256:"):
            rows = self.db.query("SELECT digest FROM tags WHERE repo=? AND tag=?", (repo, ref))
            if not rows:
                return None
            digest = rows[0]["digest"]
        rows = self.db.query("SELECT media_type FROM manifests WHERE repo=? AND digest=?", (repo, digest))
        if not rows:
            return None
        return digest, rows[0]["media_type"], self.blob_path(digest).read_bytes()

    def delete_manifest(self, repo: str, digest: str) -> bool:
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE repo=? AND digest=?", (repo, digest))
            return c.execute("DELETE FROM manifests WHERE repo=? AND digest=?", (repo, digest)).rowcount > 0

    def tags(self, repo: str) -> list[str]:
        return [r["tag"] for r in self.db.query("SELECT tag FROM tags WHERE repo=? ORDER BY tag", (repo,))]

    def repositories(self) -> list[str]:
        return [r["repo"] for r in self.db.query("SELECT DISTINCT repo FROM manifests ORDER BY repo")]
