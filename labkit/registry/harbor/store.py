"""Harbor's state (SQLite, beside the registry's metadata): projects, members, users, robot accounts,
labels, repositories and artifacts (push/pull times), tag immutability rules, quotas and the audit log.

Every write commits before the API answers, so a SIGKILL of the daemon loses nothing that was acknowledged.
Times are Unix seconds here; the API formats them as Harbor does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.store import Database

ADMIN_ID = 1
# Harbor's project roles (role_id -> name) and what each may do to the project's repositories
ROLES = {1: "projectAdmin", 2: "developer", 3: "guest", 4: "maintainer", 5: "limitedGuest"}
ROLE_ACTIONS = {1: {"pull", "push", "delete"}, 4: {"pull", "push", "delete"}, 2: {"pull", "push"},
                3: {"pull"}, 5: {"pull"}}
ROBOT_PREFIX = "robot$"
UNLIMITED = -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
  project_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, owner_id INTEGER NOT NULL,
  public TEXT NOT NULL DEFAULT 'false', metadata TEXT NOT NULL DEFAULT '{}', storage_limit INTEGER NOT NULL DEFAULT -1,
  creation_time REAL NOT NULL, update_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  user_id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, email TEXT, realname TEXT,
  comment TEXT, salt TEXT NOT NULL, password TEXT NOT NULL, sysadmin INTEGER NOT NULL DEFAULT 0,
  creation_time REAL NOT NULL, update_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  role_id INTEGER NOT NULL, UNIQUE (project_id, user_id));
CREATE TABLE IF NOT EXISTS robots (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, description TEXT NOT NULL DEFAULT '',
  level TEXT NOT NULL, project_id INTEGER, secret TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
  duration INTEGER NOT NULL, expires_at INTEGER NOT NULL, permissions TEXT NOT NULL,
  creation_time REAL NOT NULL, update_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  color TEXT NOT NULL DEFAULT '', scope TEXT NOT NULL, project_id INTEGER NOT NULL DEFAULT 0,
  creation_time REAL NOT NULL, update_time REAL NOT NULL, UNIQUE (name, scope, project_id));
CREATE TABLE IF NOT EXISTS repositories (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, project_id INTEGER NOT NULL,
  description TEXT NOT NULL DEFAULT '', pull_count INTEGER NOT NULL DEFAULT 0,
  creation_time REAL NOT NULL, update_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
  size INTEGER NOT NULL, push_time REAL NOT NULL, pull_time REAL, UNIQUE (repo, digest));
CREATE TABLE IF NOT EXISTS tags (
  id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
  push_time REAL NOT NULL, pull_time REAL, UNIQUE (repo, name));
CREATE TABLE IF NOT EXISTS artifact_labels (
  repo TEXT NOT NULL, digest TEXT NOT NULL, label_id INTEGER NOT NULL, PRIMARY KEY (repo, digest, label_id));
CREATE TABLE IF NOT EXISTS immutable_rules (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0, tag_selectors TEXT NOT NULL, scope_selectors TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL DEFAULT 0, username TEXT NOT NULL,
  resource TEXT NOT NULL, resource_type TEXT NOT NULL, operation TEXT NOT NULL,
  operation_description TEXT NOT NULL DEFAULT '', operation_result INTEGER NOT NULL DEFAULT 1, op_time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit_log (op_time);
"""


def hash_password(password: str, salt: str) -> str:
    """Harbor's password hash: PBKDF2-SHA256, 4096 rounds, 16-byte key."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 4096, 16).hex()


def hash_secret(secret: str) -> str:
    """A robot secret is random and long: one SHA-256 keeps it from being read back."""
    return hashlib.sha256(secret.encode()).hexdigest()


def project_of(repo: str) -> str:
    """A repository's Harbor project: its first path segment (``shop/catalog`` -> ``shop``)."""
    return repo.partition("/")[0]


@dataclass(frozen=True)
class Robot:
    id: int
    name: str
    level: str
    project_id: int | None
    disabled: bool
    expires_at: int  # -1: never
    permissions: list[dict[str, Any]]

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at != UNLIMITED and (now or time.time()) >= self.expires_at

    def actions(self, project: str) -> set[str]:
        """What the robot may do to ``project``'s repositories (``*`` in a system robot's namespace: any)."""
        out: set[str] = set()
        for perm in self.permissions:
            if perm.get("kind") == "project" and perm.get("namespace") in (project, "*"):
                out |= {a["action"] for a in perm.get("access", []) if a.get("resource") == "repository"}
        return out


class HarborStore:
    """Harbor's tables; rows come back as ``sqlite3.Row`` (the API shapes them)."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = self.db.query(sql, params)
        return rows[0] if rows else None

    # -- seeding ------------------------------------------------------------------
    def seed(self, public_projects: tuple[str, ...]) -> None:
        """The admin (user 1, as in Harbor) and the projects the lab's own images live in, once."""
        now = time.time()
        with self.db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO users (user_id, username, realname, comment, salt, password, sysadmin,"
                      " creation_time, update_time) VALUES (?, 'admin', 'system admin', 'admin user', '', '', 1,"
                      " ?, ?)", (ADMIN_ID, now, now))
            for name in public_projects:
                if c.execute("SELECT 1 FROM projects WHERE name=?", (name,)).fetchone():
                    continue
                cur = c.execute("INSERT INTO projects (name, owner_id, public, creation_time, update_time) "
                                "VALUES (?, ?, 'true', ?, ?)", (name, ADMIN_ID, now, now))
                c.execute("INSERT INTO members (project_id, user_id, role_id) VALUES (?, ?, 1)",
                          (cur.lastrowid, ADMIN_ID))

    # -- projects -----------------------------------------------------------------
    def project(self, name_or_id: str | int) -> sqlite3.Row | None:
        if isinstance(name_or_id, int):
            return self.one("SELECT * FROM projects WHERE project_id=?", (name_or_id,))
        return self.one("SELECT * FROM projects WHERE name=?", (name_or_id,))

    def projects(self) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM projects ORDER BY name")

    def create_project(self, name: str, owner_id: int, public: bool, metadata: dict[str, str],
                       storage_limit: int) -> int:
        now = time.time()
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO projects (name, owner_id, public, metadata, storage_limit, creation_time,"
                            " update_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (name, owner_id, "true" if public else "false", json.dumps(metadata), storage_limit,
                             now, now))
            pid = int(cur.lastrowid or 0)
            c.execute("INSERT INTO members (project_id, user_id, role_id) VALUES (?, ?, 1)", (pid, owner_id))
        return pid

    def update_project(self, project_id: int, public: bool | None, metadata: dict[str, str]) -> None:
        with self.db.transaction() as c:
            if public is not None:
                c.execute("UPDATE projects SET public=? WHERE project_id=?", ("true" if public else "false",
                                                                               project_id))
            row = c.execute("SELECT metadata FROM projects WHERE project_id=?", (project_id,)).fetchone()
            merged = {**json.loads(row["metadata"]), **metadata}
            c.execute("UPDATE projects SET metadata=?, update_time=? WHERE project_id=?",
                      (json.dumps(merged), time.time(), project_id))

    def drop_project_metadata(self, project_id: int, key: str) -> None:
        """Remove one metadata key (``retention_id`` when the project's retention policy is deleted)."""
        with self.db.transaction() as c:
            row = c.execute("SELECT metadata FROM projects WHERE project_id=?", (project_id,)).fetchone()
            if row is not None:
                metadata = json.loads(row["metadata"])
                metadata.pop(key, None)
                c.execute("UPDATE projects SET metadata=?, update_time=? WHERE project_id=?",
                          (json.dumps(metadata), time.time(), project_id))

    def delete_project(self, project_id: int) -> None:
        with self.db.transaction() as c:
            for table in ("members", "immutable_rules", "robots"):
                c.execute(f"DELETE FROM {table} WHERE project_id=?", (project_id,))
            c.execute("DELETE FROM labels WHERE scope='p' AND project_id=?", (project_id,))
            c.execute("DELETE FROM projects WHERE project_id=?", (project_id,))

    def set_storage_limit(self, project_id: int, limit: int) -> None:
        self.db.execute("UPDATE projects SET storage_limit=?, update_time=? WHERE project_id=?",
                        (limit, time.time(), project_id))

    # -- users and members ----------------------------------------------------------------
    def user(self, name_or_id: str | int) -> sqlite3.Row | None:
        if isinstance(name_or_id, int):
            return self.one("SELECT * FROM users WHERE user_id=?", (name_or_id,))
        return self.one("SELECT * FROM users WHERE username=?", (name_or_id,))

    def users(self) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM users ORDER BY user_id")

    def create_user(self, username: str, password: str, email: str, realname: str, comment: str) -> int:
        salt, now = secrets.token_hex(16), time.time()
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO users (username, email, realname, comment, salt, password, creation_time,"
                            " update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (username, email, realname, comment, salt, hash_password(password, salt), now, now))
            return int(cur.lastrowid or 0)

    def update_user(self, user_id: int, email: str, realname: str, comment: str) -> None:
        self.db.execute("UPDATE users SET email=?, realname=?, comment=?, update_time=? WHERE user_id=?",
                        (email, realname, comment, time.time(), user_id))

    def set_password(self, user_id: int, password: str) -> None:
        salt = secrets.token_hex(16)
        self.db.execute("UPDATE users SET salt=?, password=?, update_time=? WHERE user_id=?",
                        (salt, hash_password(password, salt), time.time(), user_id))

    def delete_user(self, user_id: int) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM members WHERE user_id=?", (user_id,))
            c.execute("DELETE FROM users WHERE user_id=?", (user_id,))

    def check_user(self, username: str, password: str) -> bool:
        row = self.user(username)
        return bool(row and row["salt"] and hmac.compare_digest(row["password"],
                                                                 hash_password(password, row["salt"])))

    def members(self, project_id: int) -> list[sqlite3.Row]:
        return self.db.query("SELECT m.*, u.username FROM members m JOIN users u ON u.user_id=m.user_id "
                             "WHERE m.project_id=? ORDER BY m.id", (project_id,))

    def role(self, project_id: int, user_id: int) -> int | None:
        row = self.one("SELECT role_id FROM members WHERE project_id=? AND user_id=?", (project_id, user_id))
        return row["role_id"] if row else None

    def add_member(self, project_id: int, user_id: int, role_id: int) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO members (project_id, user_id, role_id) VALUES (?, ?, ?)",
                            (project_id, user_id, role_id))
            return int(cur.lastrowid or 0)

    def update_member(self, member_id: int, role_id: int) -> None:
        self.db.execute("UPDATE members SET role_id=? WHERE id=?", (role_id, member_id))

    def delete_member(self, member_id: int) -> None:
        self.db.execute("DELETE FROM members WHERE id=?", (member_id,))

    # -- robot accounts ----------------------------------------------------------------
    def robot(self, name_or_id: str | int) -> Robot | None:
        key = "id" if isinstance(name_or_id, int) else "name"
        row = self.one(f"SELECT * FROM robots WHERE {key}=?", (name_or_id,))
        return _robot(row) if row else None

    def robot_row(self, robot_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM robots WHERE id=?", (robot_id,))

    def robots(self) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM robots ORDER BY id")

    def create_robot(self, name: str, description: str, level: str, project_id: int | None, duration: int,
                     permissions: list[dict[str, Any]], disabled: bool = False) -> tuple[int, str, int]:
        """A new robot: (id, its secret (shown once), expires_at)."""
        secret, now = secrets.token_urlsafe(24), time.time()
        expires_at = UNLIMITED if duration == UNLIMITED else int(now) + duration * 86400
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO robots (name, description, level, project_id, secret, disabled, duration,"
                            " expires_at, permissions, creation_time, update_time) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (name, description, level, project_id, hash_secret(secret), int(disabled), duration,
                             expires_at, json.dumps(permissions), now, now))
            return int(cur.lastrowid or 0), secret, expires_at

    def update_robot(self, robot_id: int, description: str, disabled: bool, duration: int,
                     permissions: list[dict[str, Any]]) -> None:
        row = self.robot_row(robot_id)
        assert row is not None
        expires_at = UNLIMITED if duration == UNLIMITED else int(row["creation_time"]) + duration * 86400
        self.db.execute("UPDATE robots SET description=?, disabled=?, duration=?, expires_at=?, permissions=?, "
                        "update_time=? WHERE id=?", (description, int(disabled), duration, expires_at,
                                                      json.dumps(permissions), time.time(), robot_id))

    def refresh_robot_secret(self, robot_id: int, secret: str | None = None) -> str:
        secret = secret or secrets.token_urlsafe(24)
        self.db.execute("UPDATE robots SET secret=?, update_time=? WHERE id=?",
                        (hash_secret(secret), time.time(), robot_id))
        return secret

    def delete_robot(self, robot_id: int) -> None:
        self.db.execute("DELETE FROM robots WHERE id=?", (robot_id,))

    def check_robot(self, name: str, secret: str) -> Robot | None:
        row = self.one("SELECT * FROM robots WHERE name=?", (name,))
        if row is None or not hmac.compare_digest(row["secret"], hash_secret(secret)):
            return None
        return _robot(row)

    # -- labels ------------------------------------------------------------------------
    def label(self, label_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM labels WHERE id=?", (label_id,))

    def labels(self, scope: str, project_id: int = 0) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM labels WHERE scope=? AND project_id=? ORDER BY id", (scope, project_id))

    def create_label(self, name: str, description: str, color: str, scope: str, project_id: int) -> int:
        now = time.time()
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO labels (name, description, color, scope, project_id, creation_time,"
                            " update_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (name, description, color, scope, project_id, now, now))
            return int(cur.lastrowid or 0)

    def update_label(self, label_id: int, name: str, description: str, color: str) -> None:
        self.db.execute("UPDATE labels SET name=?, description=?, color=?, update_time=? WHERE id=?",
                        (name, description, color, time.time(), label_id))

    def delete_label(self, label_id: int) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM artifact_labels WHERE label_id=?", (label_id,))
            c.execute("DELETE FROM labels WHERE id=?", (label_id,))

    def artifact_labels(self, repo: str, digest: str) -> list[sqlite3.Row]:
        return self.db.query("SELECT l.* FROM artifact_labels a JOIN labels l ON l.id=a.label_id "
                             "WHERE a.repo=? AND a.digest=? ORDER BY l.id", (repo, digest))

    def attach_label(self, repo: str, digest: str, label_id: int) -> bool:
        with self.db.transaction() as c:
            return c.execute("INSERT OR IGNORE INTO artifact_labels VALUES (?, ?, ?)",
                             (repo, digest, label_id)).rowcount > 0

    def detach_label(self, repo: str, digest: str, label_id: int) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM artifact_labels WHERE repo=? AND digest=? AND label_id=?",
                             (repo, digest, label_id)).rowcount > 0

    # -- repositories, artifacts, tags ----------------------------------------------------------
    def repository(self, name: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM repositories WHERE name=?", (name,))

    def repositories(self, project_id: int) -> list[sqlite3.Row]:
        return self.db.query("SELECT r.*, (SELECT COUNT(*) FROM artifacts a WHERE a.repo=r.name) AS artifact_count"
                             " FROM repositories r WHERE project_id=? ORDER BY name", (project_id,))

    def repo_count(self, project_id: int) -> int:
        row = self.one("SELECT COUNT(*) AS n FROM repositories WHERE project_id=?", (project_id,))
        return int(row["n"]) if row else 0

    def delete_repository(self, name: str) -> None:
        with self.db.transaction() as c:
            for table in ("artifacts", "tags", "artifact_labels"):
                c.execute(f"DELETE FROM {table} WHERE repo=?", (name,))
            c.execute("DELETE FROM repositories WHERE name=?", (name,))

    def pushed(self, repo: str, project_id: int, digest: str, media_type: str, size: int, tags: list[str]) -> None:
        """A manifest was pushed: the repository, the artifact and its tags get their push time."""
        now = time.time()
        with self.db.transaction() as c:
            c.execute("INSERT INTO repositories (name, project_id, creation_time, update_time) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (name) DO UPDATE SET update_time=excluded.update_time", (repo, project_id, now, now))
            c.execute("INSERT INTO artifacts (repo, digest, media_type, size, push_time) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (repo, digest) DO UPDATE SET push_time=excluded.push_time",
                      (repo, digest, media_type, size, now))
            for tag in tags:
                c.execute("INSERT INTO tags (repo, name, digest, push_time) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (repo, name) DO UPDATE SET digest=excluded.digest, "
                          "push_time=excluded.push_time, pull_time=NULL", (repo, tag, digest, now))

    def pulled(self, repo: str, digest: str, tag: str | None) -> None:
        now = time.time()
        with self.db.transaction() as c:
            c.execute("UPDATE artifacts SET pull_time=? WHERE repo=? AND digest=?", (now, repo, digest))
            c.execute("UPDATE repositories SET pull_count=pull_count+1 WHERE name=?", (repo,))
            if tag:
                c.execute("UPDATE tags SET pull_time=? WHERE repo=? AND name=?", (now, repo, tag))

    def artifact(self, repo: str, digest: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM artifacts WHERE repo=? AND digest=?", (repo, digest))

    def artifacts(self, repo: str) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM artifacts WHERE repo=? ORDER BY push_time DESC, id DESC", (repo,))

    def tags(self, repo: str, digest: str | None = None) -> list[sqlite3.Row]:
        if digest is None:
            return self.db.query("SELECT * FROM tags WHERE repo=? ORDER BY push_time DESC, id DESC", (repo,))
        return self.db.query("SELECT * FROM tags WHERE repo=? AND digest=? ORDER BY push_time DESC, id DESC",
                             (repo, digest))

    def tag(self, repo: str, name: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM tags WHERE repo=? AND name=?", (repo, name))

    def delete_tag(self, repo: str, name: str) -> None:
        self.db.execute("DELETE FROM tags WHERE repo=? AND name=?", (repo, name))

    def delete_artifact(self, repo: str, digest: str) -> None:
        with self.db.transaction() as c:
            for table in ("tags", "artifact_labels", "artifacts"):
                c.execute(f"DELETE FROM {table} WHERE repo=? AND digest=?", (repo, digest))

    # -- tag immutability rules ------------------------------------------------------------
    def immutable_rules(self, project_id: int) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM immutable_rules WHERE project_id=? ORDER BY priority, id", (project_id,))

    def immutable_rule(self, rule_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM immutable_rules WHERE id=?", (rule_id,))

    def save_immutable_rule(self, project_id: int, rule: dict[str, Any], rule_id: int | None = None) -> int:
        values = (int(rule.get("priority") or 0), int(bool(rule.get("disabled"))),
                  json.dumps(rule.get("tag_selectors") or []), json.dumps(rule.get("scope_selectors") or {}))
        with self.db.transaction() as c:
            if rule_id is None:
                cur = c.execute("INSERT INTO immutable_rules (project_id, priority, disabled, tag_selectors,"
                                " scope_selectors) VALUES (?, ?, ?, ?, ?)", (project_id, *values))
                return int(cur.lastrowid or 0)
            c.execute("UPDATE immutable_rules SET priority=?, disabled=?, tag_selectors=?, scope_selectors=? "
                      "WHERE id=?", (*values, rule_id))
            return rule_id

    def delete_immutable_rule(self, rule_id: int) -> None:
        self.db.execute("DELETE FROM immutable_rules WHERE id=?", (rule_id,))

    # -- the audit log --------------------------------------------------------------------
    def record(self, username: str, resource: str, resource_type: str, operation: str, project_id: int = 0,
               description: str = "", result: bool = True) -> None:
        """One audit entry, committed before the caller answers."""
        self.db.execute("INSERT INTO audit_log (project_id, username, resource, resource_type, operation,"
                        " operation_description, operation_result, op_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (project_id, username, resource, resource_type, operation, description, int(result),
                         time.time()))

    def audit_log(self, project_id: int | None = None) -> list[sqlite3.Row]:
        if project_id is None:
            return self.db.query("SELECT * FROM audit_log ORDER BY op_time DESC, id DESC")
        return self.db.query("SELECT * FROM audit_log WHERE project_id=? ORDER BY op_time DESC, id DESC",
                             (project_id,))


def _robot(row: sqlite3.Row) -> Robot:
    return Robot(row["id"], row["name"], row["level"], row["project_id"], bool(row["disabled"]), row["expires_at"],
                 json.loads(row["permissions"]))
