"""Retention policies, their executions and tasks (one task per repository) in SQLite."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ....core.store import Database

RUNNING, SUCCESS, ERROR, STOPPED, PENDING = "Running", "Success", "Error", "Stopped", "Pending"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retention_policies (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, policy TEXT NOT NULL,
  creation_time REAL NOT NULL, update_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS retention_executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, policy_id INTEGER NOT NULL, status TEXT NOT NULL, trigger TEXT NOT NULL,
  dry_run INTEGER NOT NULL, operator TEXT NOT NULL, start_time REAL NOT NULL, end_time REAL);
CREATE TABLE IF NOT EXISTS retention_tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, execution_id INTEGER NOT NULL, repository TEXT NOT NULL,
  status TEXT NOT NULL, start_time REAL, end_time REAL, total INTEGER NOT NULL DEFAULT 0,
  retained INTEGER NOT NULL DEFAULT 0, log TEXT NOT NULL DEFAULT '');
"""


class RetentionStore:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- policies ----------------------------------------------------------------------
    def create(self, project_id: int, policy: dict[str, Any]) -> int:
        now = time.time()
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO retention_policies (project_id, policy, creation_time, update_time) "
                            "VALUES (?, ?, ?, ?)", (project_id, json.dumps(policy), now, now))
            return int(cur.lastrowid or 0)

    def policy(self, policy_id: int) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM retention_policies WHERE id=?", (policy_id,))
        return {**json.loads(rows[0]["policy"]), "id": policy_id} if rows else None

    def for_project(self, project_id: int) -> int | None:
        rows = self.db.query("SELECT id FROM retention_policies WHERE project_id=?", (project_id,))
        return int(rows[0]["id"]) if rows else None

    def scheduled(self) -> dict[int, str]:
        """Policy id -> cron, for the policies a schedule triggers."""
        out = {}
        for row in self.db.query("SELECT id, policy FROM retention_policies"):
            trigger = json.loads(row["policy"]).get("trigger") or {}
            cron = (trigger.get("settings") or {}).get("cron")
            if trigger.get("kind") == "Schedule" and cron:
                out[int(row["id"])] = str(cron)
        return out

    def update(self, policy_id: int, policy: dict[str, Any]) -> None:
        self.db.execute("UPDATE retention_policies SET policy=?, update_time=? WHERE id=?",
                        (json.dumps(policy), time.time(), policy_id))

    def delete(self, policy_id: int) -> None:
        with self.db.transaction() as c:
            executions = [r["id"] for r in c.execute("SELECT id FROM retention_executions WHERE policy_id=?",
                                                     (policy_id,))]
            c.executemany("DELETE FROM retention_tasks WHERE execution_id=?", [(e,) for e in executions])
            c.execute("DELETE FROM retention_executions WHERE policy_id=?", (policy_id,))
            c.execute("DELETE FROM retention_policies WHERE id=?", (policy_id,))

    # -- executions and tasks ----------------------------------------------------------------
    def start_execution(self, policy_id: int, trigger: str, dry_run: bool, operator: str) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO retention_executions (policy_id, status, trigger, dry_run, operator,"
                            " start_time) VALUES (?, ?, ?, ?, ?, ?)",
                            (policy_id, RUNNING, trigger, int(dry_run), operator, time.time()))
            return int(cur.lastrowid or 0)

    def end_execution(self, execution_id: int, status: str) -> None:
        self.db.execute("UPDATE retention_executions SET status=?, end_time=? WHERE id=?",
                        (status, time.time(), execution_id))

    def execution(self, execution_id: int) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM retention_executions WHERE id=?", (execution_id,))
        return dict(rows[0]) if rows else None

    def executions(self, policy_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM retention_executions WHERE policy_id=? "
                                               "ORDER BY id DESC", (policy_id,))]

    def interrupted(self) -> list[int]:
        """Executions a stop of the daemon left Running."""
        return [r["id"] for r in self.db.query("SELECT id FROM retention_executions WHERE status=?", (RUNNING,))]

    def add_task(self, execution_id: int, repository: str) -> int:
        with self.db.transaction() as c:
            cur = c.execute("INSERT INTO retention_tasks (execution_id, repository, status) VALUES (?, ?, ?)",
                            (execution_id, repository, PENDING))
            return int(cur.lastrowid or 0)

    def start_task(self, task_id: int) -> None:
        self.db.execute("UPDATE retention_tasks SET status=?, start_time=? WHERE id=?", (RUNNING, time.time(), task_id))

    def end_task(self, task_id: int, status: str, total: int, retained: int, log: str) -> None:
        self.db.execute("UPDATE retention_tasks SET status=?, end_time=?, total=?, retained=?, log=? WHERE id=?",
                        (status, time.time(), total, retained, log, task_id))

    def task(self, task_id: int) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM retention_tasks WHERE id=?", (task_id,))
        return dict(rows[0]) if rows else None

    def tasks(self, execution_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM retention_tasks WHERE execution_id=? ORDER BY id",
                                               (execution_id,))]

    def wipe(self) -> None:
        with self.db.transaction() as c:
            for table in ("retention_tasks", "retention_executions", "retention_policies"):
                c.execute(f"DELETE FROM {table}")
