"""Scan reports on disk (SQLite): one current report per artifact and scan type, with its job's status and log.

A report is Harbor's placeholder-then-data record: created ``Pending`` when a scan is asked for,
``Running`` while the scanner works, then ``Success`` (with the report data), ``Error`` (with the
scanner's own message in the log) or ``Stopped``. A new scan of the same artifact replaces the report.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....core.store import Database

PENDING, RUNNING, SUCCESS, ERROR, STOPPED = "Pending", "Running", "Success", "Error", "Stopped"
FINAL = (SUCCESS, ERROR, STOPPED)
VULNERABILITY, SBOM = "vulnerability", "sbom"
SCAN_TYPES = (VULNERABILITY, SBOM)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scan_reports (
  uuid TEXT PRIMARY KEY, repo TEXT, digest TEXT, scan_type TEXT, status TEXT, operator TEXT,
  created REAL, start_time REAL, end_time REAL, report TEXT, log TEXT, accessory TEXT);
CREATE INDEX IF NOT EXISTS scan_reports_artifact ON scan_reports (repo, digest, scan_type);
CREATE TABLE IF NOT EXISTS scan_all_schedule (
  id INTEGER PRIMARY KEY CHECK (id = 1), type TEXT NOT NULL, cron TEXT NOT NULL, creation_time REAL NOT NULL,
  update_time REAL NOT NULL);
"""


@dataclass(frozen=True)
class Report:
    uuid: str
    repo: str
    digest: str
    scan_type: str
    status: str
    operator: str
    created: float
    start_time: float | None
    end_time: float | None
    data: dict[str, Any] | None  # the vulnerability report, or the SBOM summary
    log: str
    accessory: str | None  # the SBOM accessory's digest

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def duration(self) -> int:
        start = self.start_time or self.created
        return max(int((self.end_time or start) - start), 0)


class ScanReports:
    """The ``scan_reports`` table."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    def create(self, repo: str, digest: str, scan_type: str, operator: str) -> Report:
        """A new Pending report, replacing the artifact's previous one of that type (which must be final)."""
        report_id = str(uuid.uuid4())
        now = time.time()
        with self.db.transaction() as c:
            c.execute("DELETE FROM scan_reports WHERE repo=? AND digest=? AND scan_type=?", (repo, digest, scan_type))
            c.execute("INSERT INTO scan_reports (uuid, repo, digest, scan_type, status, operator, created, log) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, '')", (report_id, repo, digest, scan_type, PENDING, operator, now))
        found = self.get(report_id)
        assert found is not None
        return found

    def get(self, report_id: str) -> Report | None:
        rows = self.db.query("SELECT * FROM scan_reports WHERE uuid=?", (report_id,))
        return _report(rows[0]) if rows else None

    def current(self, repo: str, digest: str, scan_type: str) -> Report | None:
        rows = self.db.query("SELECT * FROM scan_reports WHERE repo=? AND digest=? AND scan_type=? "
                             "ORDER BY created DESC LIMIT 1", (repo, digest, scan_type))
        return _report(rows[0]) if rows else None

    def unfinished(self) -> list[Report]:
        rows = self.db.query("SELECT * FROM scan_reports WHERE status IN (?, ?) ORDER BY created", (PENDING, RUNNING))
        return [_report(r) for r in rows]

    def requeue(self, report_id: str) -> None:
        """Back to Pending (its job was interrupted by a stop of the daemon)."""
        self.db.execute("UPDATE scan_reports SET status=?, start_time=NULL WHERE uuid=?", (PENDING, report_id))

    def start(self, report_id: str) -> None:
        self.db.execute("UPDATE scan_reports SET status=?, start_time=? WHERE uuid=?",
                        (RUNNING, time.time(), report_id))

    def finish(self, report_id: str, status: str, log: str, data: dict[str, Any] | None = None,
               accessory: str | None = None) -> None:
        self.db.execute("UPDATE scan_reports SET status=?, end_time=?, log=?, report=?, accessory=? WHERE uuid=?",
                        (status, time.time(), log, json.dumps(data) if data is not None else None, accessory,
                         report_id))

    def forget(self, repo: str, digest: str) -> list[Report]:
        """Drop an artifact's reports (it was deleted); returns them (their SBOM accessories go too)."""
        rows = self.db.query("SELECT * FROM scan_reports WHERE repo=? AND digest=?", (repo, digest))
        self.db.execute("DELETE FROM scan_reports WHERE repo=? AND digest=?", (repo, digest))
        return [_report(r) for r in rows]

    def wipe(self) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM scan_reports")
            c.execute("DELETE FROM scan_all_schedule")

    # -- the scan-all schedule (one) ---------------------------------------------------------
    def schedule(self) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM scan_all_schedule")
        return dict(rows[0]) if rows else None

    def set_schedule(self, kind: str, cron: str) -> None:
        now = time.time()
        self.db.execute("INSERT INTO scan_all_schedule VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                        "type=excluded.type, cron=excluded.cron, update_time=excluded.update_time",
                        (kind, cron, now, now))

    def drop_schedule(self) -> None:
        self.db.execute("DELETE FROM scan_all_schedule")


def _report(r: Any) -> Report:
    return Report(r["uuid"], r["repo"], r["digest"], r["scan_type"], r["status"], r["operator"] or "",
                  r["created"], r["start_time"], r["end_time"], json.loads(r["report"]) if r["report"] else None,
                  r["log"] or "", r["accessory"])
