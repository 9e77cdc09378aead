"""What lives in which repository (SQLite): blob links, manifests, tags, upload sessions."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.store import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (repo TEXT, digest TEXT, PRIMARY KEY (repo, digest));
CREATE TABLE IF NOT EXISTS manifests (
  repo TEXT, digest TEXT, media_type TEXT, size INTEGER, subject TEXT, artifact_type TEXT,
  annotations TEXT, PRIMARY KEY (repo, digest));
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject);
CREATE TABLE IF NOT EXISTS tags (repo TEXT, tag TEXT, digest TEXT, PRIMARY KEY (repo, tag));
CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, repo TEXT, started REAL);
"""


@dataclass(frozen=True)
class ManifestRow:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    subject: str | None = None

    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor of this manifest (as listed by the referrers API)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


class Metadata:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- blob links -----------------------------------------------------------
    def linked(self, repo: str, digest: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM links WHERE repo=? AND digest=?", (repo, digest)))

    def link(self, repo: str, digest: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO links (repo, digest) VALUES (?, ?)", (repo, digest))

    def unlink(self, repo: str, digest: str) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM links WHERE repo=? AND digest=?", (repo, digest)).rowcount > 0

    def referenced(self, digest: str) -> bool:
        """True while any repository still links the blob or holds it as a manifest."""
        return bool(self.db.query("SELECT 1 FROM links WHERE digest=? UNION ALL "
                                  "SELECT 1 FROM manifests WHERE digest=? LIMIT 1", (digest, digest)))

    def any_repo_with(self, digest: str) -> str | None:
        rows = self.db.query("SELECT repo FROM links WHERE digest=? LIMIT 1", (digest,))
        return rows[0]["repo"] if rows else None

    # -- manifests and tags -----------------------------------------------------
    def put_manifest(self, repo: str, row: ManifestRow, tags: list[str]) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (repo, row.digest, row.media_type, row.size, row.subject, row.artifact_type,
                       json.dumps(row.annotations) if row.annotations else None))
            c.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [(repo, t, row.digest) for t in tags])

    def resolve(self, repo: str, reference: str) -> str | None:
        """A tag's digest (or the digest itself) if the repository holds that manifest."""
        if ":" not in reference:
            rows = self.db.query("SELECT digest FROM tags WHERE repo=? AND tag=?", (repo, reference))
            if not rows:
                return None
            reference = rows[0]["digest"]
        return reference if self.manifest(repo, reference) else None

    def manifest(self, repo: str, digest: str) -> ManifestRow | None:
        rows = self.db.query("SELECT * FROM manifests WHERE repo=? AND digest=?", (repo, digest))
        return _row(rows[0]) if rows else None

    def referrers(self, repo: str, subject: str) -> list[ManifestRow]:
        rows = self.db.query("SELECT * FROM manifests WHERE repo=? AND subject=? ORDER BY digest", (repo, subject))
        return [_row(r) for r in rows]

    def delete_manifest(self, repo: str, digest: str) -> bool:
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE repo=? AND digest=?", (repo, digest))
            return c.execute("DELETE FROM manifests WHERE repo=? AND digest=?", (repo, digest)).rowcount > 0

    def delete_tag(self, repo: str, tag: str) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM tags WHERE repo=? AND tag=?", (repo, tag)).rowcount > 0

    def tags(self, repo: str) -> list[str]:
        return [r["tag"] for r in self.db.query("SELECT tag FROM tags WHERE repo=? ORDER BY tag", (repo,))]

    def repo_exists(self, repo: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM manifests WHERE repo=? UNION ALL "
                                  "SELECT 1 FROM links WHERE repo=? LIMIT 1", (repo, repo)))

    def repositories(self) -> list[str]:
        rows = self.db.query("SELECT repo FROM manifests UNION SELECT repo FROM links ORDER BY repo")
        return [r["repo"] for r in rows]

    # -- upload sessions --------------------------------------------------------
    def add_upload(self, upload: str, repo: str) -> None:
        self.db.execute("INSERT INTO uploads VALUES (?, ?, ?)", (upload, repo, time.time()))

    def upload_repo(self, upload: str) -> str | None:
        rows = self.db.query("SELECT repo FROM uploads WHERE id=?", (upload,))
        return rows[0]["repo"] if rows else None

    def remove_upload(self, upload: str) -> None:
        self.db.execute("DELETE FROM uploads WHERE id=?", (upload,))

    def stale_uploads(self, older_than: float) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM uploads WHERE started < ?", (older_than,))]


def _row(r: Any) -> ManifestRow:
    return ManifestRow(r["digest"], r["media_type"], r["size"], r["artifact_type"],
                       json.loads(r["annotations"]) if r["annotations"] else None, r["subject"])
