"""Nexus' metadata in SQLite (``core.store``): repositories, components, assets, upstream links, settings."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.store import Database
from .blobs import Blobs, Stored

SCHEMA = """
CREATE TABLE IF NOT EXISTS repositories (
  name TEXT PRIMARY KEY COLLATE NOCASE, format TEXT NOT NULL, type TEXT NOT NULL, config TEXT NOT NULL,
  position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS components (
  id INTEGER PRIMARY KEY, repository TEXT NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
  created REAL NOT NULL, UNIQUE (repository, grp, name, version));
CREATE TABLE IF NOT EXISTS assets (
  id INTEGER PRIMARY KEY, repository TEXT NOT NULL, path TEXT NOT NULL, component INTEGER,
  sha256 TEXT NOT NULL, sha1 TEXT NOT NULL, md5 TEXT NOT NULL, size INTEGER NOT NULL, content_type TEXT NOT NULL,
  created REAL NOT NULL, modified REAL NOT NULL, verified REAL NOT NULL, downloaded REAL,
  etag TEXT, last_modified TEXT, uploader TEXT, UNIQUE (repository, path));
CREATE INDEX IF NOT EXISTS assets_component ON assets (component);
CREATE TABLE IF NOT EXISTS remote_links (
  repository TEXT NOT NULL, path TEXT NOT NULL, url TEXT NOT NULL, PRIMARY KEY (repository, path));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Asset:
    """A stored file of a repository (Nexus' asset): where its content is and how fresh it is."""

    id: int
    repository: str
    path: str
    component: int | None
    sha256: str
    sha1: str
    md5: str
    size: int
    content_type: str
    created: float
    modified: float
    verified: float
    downloaded: float | None
    etag: str | None
    last_modified: str | None
    uploader: str | None


@dataclass(frozen=True)
class ComponentRow:
    id: int
    repository: str
    group: str
    name: str
    version: str


class NexusStore:
    """``blobs/`` (content once, by SHA-256) and ``nexus.db`` under the component's state folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open()

    def _open(self) -> None:
        self.blobs = Blobs(self.root / "blobs")
        self.db = Database(self.root / "nexus.db", SCHEMA)

    def close(self) -> None:
        self.db.close()

    def wipe(self) -> None:
        """Forget everything (``labkit reset``)."""
        self.close()
        shutil.rmtree(self.root / "blobs", ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            (self.root / f"nexus.db{suffix}").unlink(missing_ok=True)
        self._open()

    # -- repositories ------------------------------------------------------------------------------
    def repositories(self) -> list[dict[str, Any]]:
        return [json.loads(r["config"]) for r in self.db.query("SELECT config FROM repositories ORDER BY position")]

    def repository(self, name: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT config FROM repositories WHERE name = ?", (name,))
        return json.loads(rows[0]["config"]) if rows else None

    def save_repository(self, config: dict[str, Any]) -> None:
        with self.db.transaction() as c:
            row = c.execute("SELECT position FROM repositories WHERE name = ?", (config["name"],)).fetchone()
            position = row["position"] if row else \
                c.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM repositories").fetchone()[0]
            c.execute("INSERT OR REPLACE INTO repositories (name, format, type, config, position) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (config["name"], config["format"], config["type"], json.dumps(config), position))

    def delete_repository(self, name: str) -> None:
        with self.db.transaction() as c:
            for table in ("assets", "components", "remote_links"):
                c.execute(f"DELETE FROM {table} WHERE repository = ?", (name,))
            c.execute("DELETE FROM repositories WHERE name = ?", (name,))

    # -- assets and components ---------------------------------------------------------------------
    def asset(self, repository: str, path: str) -> Asset | None:
        rows = self.db.query("SELECT * FROM assets WHERE repository = ? AND path = ?", (repository, path))
        return Asset(**dict(rows[0])) if rows else None

    def asset_by_id(self, asset_id: int) -> Asset | None:
        rows = self.db.query("SELECT * FROM assets WHERE id = ?", (asset_id,))
        return Asset(**dict(rows[0])) if rows else None

    def put_asset(self, repository: str, path: str, stored: Stored, content_type: str,
                  component: tuple[str, str, str] | None = None, etag: str | None = None,
                  last_modified: str | None = None, uploader: str | None = None) -> Asset:
        """Record ``path`` as the stored file (a new asset or new content of an existing one)."""
        now = time.time()
        with self.db.transaction() as c:
            component_id = None
            if component is not None:
                group, name, version = component
                c.execute("INSERT OR IGNORE INTO components (repository, grp, name, version, created) "
                          "VALUES (?, ?, ?, ?, ?)", (repository, group, name, version, now))
                component_id = c.execute("SELECT id FROM components WHERE repository = ? AND grp = ? AND name = ? "
                                         "AND version = ?", (repository, group, name, version)).fetchone()[0]
            c.execute(
                "INSERT INTO assets (repository, path, component, sha256, sha1, md5, size, content_type, created, "
                "modified, verified, etag, last_modified, uploader) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (repository, path) DO UPDATE SET component = excluded.component, "
                "sha256 = excluded.sha256, sha1 = excluded.sha1, md5 = excluded.md5, size = excluded.size, "
                "content_type = excluded.content_type, modified = excluded.modified, verified = excluded.verified, "
                "etag = excluded.etag, last_modified = excluded.last_modified",
                (repository, path, component_id, stored.sha256, stored.sha1, stored.md5, stored.size, content_type,
                 now, now, now, etag, last_modified, uploader))
        asset = self.asset(repository, path)
        assert asset is not None
        return asset

    def verified(self, asset: Asset, at: float) -> Asset:
        """The upstream confirmed ``asset`` is current (a 304)."""
        self.db.execute("UPDATE assets SET verified = ? WHERE id = ?", (at, asset.id))
        return self.asset_by_id(asset.id) or asset

    def downloaded(self, asset: Asset, at: float) -> None:
        self.db.execute("UPDATE assets SET downloaded = ? WHERE id = ?", (at, asset.id))

    def assets_page(self, repository: str, after: int, limit: int) -> list[Asset]:
        rows = self.db.query("SELECT * FROM assets WHERE repository = ? AND id > ? ORDER BY id LIMIT ?",
                             (repository, after, limit))
        return [Asset(**dict(r)) for r in rows]

    def component(self, component_id: int) -> ComponentRow | None:
        rows = self.db.query("SELECT id, repository, grp, name, version FROM components WHERE id = ?",
                             (component_id,))
        return ComponentRow(*rows[0]) if rows else None

    def components_page(self, after: int, limit: int, repositories: list[str] | None = None,
                        **equal: str) -> list[ComponentRow]:
        """Components with id > ``after`` in id order; ``equal`` filters on grp/name/version (case-insensitive,
        ``*`` a wildcard)."""
        where, params = ["id > ?"], [after]
        if repositories is not None:
            where.append(f"repository IN ({','.join('?' * len(repositories))})")
            params += repositories
        for column, value in equal.items():
            if "*" in value:  # Nexus' search wildcard
                escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                where.append(f"{column} LIKE ? ESCAPE '\\'")
                params.append(escaped.replace("*", "%"))
            else:
                where.append(f"{column} = ? COLLATE NOCASE")
                params.append(value)
        rows = self.db.query(f"SELECT id, repository, grp, name, version FROM components WHERE {' AND '.join(where)} "
                             "ORDER BY id LIMIT ?", (*params, limit))
        return [ComponentRow(*r) for r in rows]

    def delete_component(self, component_id: int) -> None:
        """Forget a component and its assets; files no other asset uses leave the blob store."""
        with self.db.transaction() as c:
            digests = [r[0] for r in c.execute("SELECT sha256 FROM assets WHERE component = ?", (component_id,))]
            c.execute("DELETE FROM assets WHERE component = ?", (component_id,))
            c.execute("DELETE FROM components WHERE id = ?", (component_id,))
            unused = [d for d in digests if not c.execute("SELECT 1 FROM assets WHERE sha256 = ?", (d,)).fetchone()]
        for digest in unused:
            self.blobs.path(digest).unlink(missing_ok=True)

    def component_assets(self, component_id: int) -> list[Asset]:
        return [Asset(**dict(r)) for r in self.db.query("SELECT * FROM assets WHERE component = ? ORDER BY id",
                                                        (component_id,))]

    def hosted_files(self, repository: str, name: str) -> list[Asset]:
        """The assets of a hosted PyPI project (components named ``name``)."""
        rows = self.db.query("SELECT a.* FROM assets a JOIN components c ON a.component = c.id "
                             "WHERE c.repository = ? AND c.name = ? ORDER BY a.id", (repository, name))
        return [Asset(**dict(r)) for r in rows]

    def component_names(self, repository: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT DISTINCT name FROM components WHERE repository = ? ORDER BY name",
                                            (repository,))]

    def stats(self, repository: str) -> tuple[int, int]:
        """(assets, bytes) of a repository."""
        row = self.db.query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM assets WHERE repository = ?",
                            (repository,))[0]
        return int(row[0]), int(row[1])

    # -- where a rewritten link points upstream ----------------------------------------------------
    def link(self, repository: str, path: str) -> str | None:
        rows = self.db.query("SELECT url FROM remote_links WHERE repository = ? AND path = ?", (repository, path))
        return rows[0][0] if rows else None

    def save_links(self, repository: str, links: dict[str, str]) -> None:
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO remote_links (repository, path, url) VALUES (?, ?, ?)",
                          [(repository, path, url) for path, url in links.items()])

    # -- settings ------------------------------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        rows = self.db.query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))
