"""GitLab's records on disk: users, personal access tokens, groups, projects and webhooks, one SQLite file.

Each record is GitLab's own JSON object (the API returns it with little more than a filter), kept by kind
and id; ids count up per kind, as GitLab's do.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.store import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id INTEGER NOT NULL, doc TEXT NOT NULL,
                                    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS secrets (digest TEXT PRIMARY KEY, token_id INTEGER NOT NULL);
"""


def now(at: float | None = None) -> str:
    """A timestamp as GitLab writes them: ``2026-11-26T13:40:00.123Z`` (now, or the Unix time ``at``)."""
    stamp = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class GitLabStore:
    """Records by kind (``user``, ``token``, ``group``, ``project``, ``hook``) and id."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new record; its ``id`` is the next of its kind."""
        with self.db.transaction() as c:
            row = c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM records WHERE kind = ?", (kind,)).fetchone()
            doc = {"id": row[0], **doc}
            c.execute("INSERT INTO records (kind, id, doc) VALUES (?, ?, ?)", (kind, doc["id"], json.dumps(doc)))
        return doc

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.db.execute("UPDATE records SET doc = ? WHERE kind = ? AND id = ?", (json.dumps(doc), kind, doc["id"]))
        return doc

    def get(self, kind: str, id_: int) -> dict[str, Any] | None:
        rows = self.db.query("SELECT doc FROM records WHERE kind = ? AND id = ?", (kind, id_))
        return json.loads(rows[0]["doc"]) if rows else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(r["doc"]) for r in self.db.query("SELECT doc FROM records WHERE kind = ? ORDER BY id",
                                                            (kind,))]

    def find(self, kind_: str, **match: Any) -> list[dict[str, Any]]:
        return [d for d in self.all(kind_) if all(d.get(k) == v for k, v in match.items())]

    def delete(self, kind: str, id_: int) -> None:
        self.db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, id_))

    def remember_secret(self, secret: str, token_id: int) -> None:
        """A token's secret, by digest only (GitLab keeps digests too)."""
        self.db.execute("INSERT OR REPLACE INTO secrets (digest, token_id) VALUES (?, ?)", (digest(secret), token_id))

    def token_for(self, secret: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT token_id FROM secrets WHERE digest = ?", (digest(secret),))
        return self.get("token", rows[0]["token_id"]) if rows else None

    def wipe(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM records")
            c.execute("DELETE FROM secrets")
