"""Learner checks: a friendly pass/fail in the notebook, recorded for the instructor."""

from __future__ import annotations

import html
import os
import time
from typing import Any

from .core.paths import LabPaths
from .core.store import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  chapter INTEGER NOT NULL,
  name TEXT NOT NULL,
  passed INTEGER NOT NULL,
  hint TEXT NOT NULL DEFAULT '',
  at REAL NOT NULL
);
"""


class CheckFailed(AssertionError):
    """A learner check failed in a non-interactive run (papermill, nbval, CI)."""


def interactive() -> bool:
    """True in a Jupyter kernel a person is using; False under papermill/nbval/CI or plain Python."""
    if os.environ.get("LABKIT_NONINTERACTIVE") or os.environ.get("CI"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """Check results of one lab home (kept across ``labkit reset``)."""

    def __init__(self, paths: LabPaths) -> None:
        self.db = Database(paths.progress, _SCHEMA)

    def record(self, chapter: int, name: str, passed: bool, hint: str = "") -> None:
        self.db.execute("INSERT INTO checks (chapter, name, passed, hint, at) VALUES (?,?,?,?,?)",
                        (chapter, name, int(passed), hint, time.time()))

    def latest(self) -> list[dict[str, Any]]:
        """The latest result of every check, by chapter then name."""
        rows = self.db.query(
            "SELECT chapter, name, passed, hint, MAX(at) AS at, COUNT(*) AS attempts "
            "FROM checks GROUP BY chapter, name ORDER BY chapter, name")
        return [dict(r) for r in rows]

    def summary(self) -> list[dict[str, Any]]:
        """Per chapter: checks passed, failed, attempts, last activity."""
        by: dict[int, dict[str, Any]] = {}
        for r in self.latest():
            s = by.setdefault(r["chapter"], {"chapter": r["chapter"], "passed": 0, "failed": 0,
                                             "attempts": 0, "last": 0.0})
            s["passed" if r["passed"] else "failed"] += 1
            s["attempts"] += r["attempts"]
            s["last"] = max(s["last"], r["at"])
        return list(by.values())


def show(name: str, passed: bool, hint: str) -> None:
    """Display a check result: HTML in a notebook, a line elsewhere."""
    mark, colour = ("✅", "#1a7f37") if passed else ("❌", "#cf222e")
    text = f"{mark} {name}" + ("" if passed or not hint else f" — hint: {hint}")
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            extra = "" if passed or not hint else f"<br><small>💡 {html.escape(hint)}</small>"
            display(HTML(f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                         f"<b>{mark} {html.escape(name)}</b>{extra}</div>"))
            return
    except ImportError:
        pass
    print(text)


def counts_since(progress: Progress, after_id: int) -> tuple[int, int, int]:
    """(last id, passed, failed) for the checks recorded after ``after_id``."""
    row = progress.db.query(
        "SELECT COALESCE(MAX(id), ?) AS last, COALESCE(SUM(passed), 0) AS ok, "
        "COALESCE(SUM(1 - passed), 0) AS bad FROM checks WHERE id > ?", (after_id, after_id))[0]
    return row["last"], row["ok"], row["bad"]
