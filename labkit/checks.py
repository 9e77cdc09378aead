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


class CheckResult:
    """What ``lab.check`` returns: true when the check passed. The check has shown itself already, so a cell that
    ends with one shows nothing more (no bare ``True``)."""

    def __init__(self, name: str, passed: bool) -> None:
        self.name, self.passed = name, passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Nothing: ``show`` displayed the result when the check ran."""


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

    def summary(self, checks: dict[int, int] | None = None) -> list[dict[str, Any]]:
        """Per chapter: checks passed and failed (latest result each), of ``checks[chapter]`` in the chapter,
        attempts, last activity; chapters in ``checks`` are listed even before any check ran."""
        checks = checks or {}
        by: dict[int, dict[str, Any]] = {n: {"chapter": n, "passed": 0, "failed": 0, "attempts": 0, "last": 0.0,
                                             "checks": total} for n, total in checks.items()}
        for r in self.latest():
            s = by.setdefault(r["chapter"], {"chapter": r["chapter"], "passed": 0, "failed": 0, "attempts": 0,
                                             "last": 0.0, "checks": 0})
            s["passed" if r["passed"] else "failed"] += 1
            s["attempts"] += r["attempts"]
            s["last"] = max(s["last"], r["at"])
        for s in by.values():
            s["checks"] = max(s["checks"], s["passed"] + s["failed"])
        return [by[n] for n in sorted(by)]


def progress_html(summary: list[dict[str, Any]], latest: list[dict[str, Any]], titles: dict[int, str],
                  refresh: int = 10) -> str:
    """A page an instructor puts on the projector: a bar per chapter (checks passed of the chapter's checks)
    and the failing checks with their hints; it reloads itself every ``refresh`` seconds."""
    failing: dict[int, list[str]] = {}
    for r in latest:
        if not r["passed"]:
            failing.setdefault(r["chapter"], []).append(r["name"])
    rows = []
    for s in summary:
        share = s["passed"] / s["checks"] if s["checks"] else 0.0
        last = time.strftime("%H:%M", time.localtime(s["last"])) if s["last"] else "—"
        fails = "".join(f"<li>{html.escape(name)}</li>" for name in failing.get(s["chapter"], []))
        rows.append(
            f'<tr><td>{s["chapter"]:02d} {html.escape(titles.get(s["chapter"], ""))}</td>'
            f'<td><div class="bar"><div style="width:{share:.0%}"></div></div></td>'
            f'<td>{s["passed"]} of {s["checks"]}</td><td>{last}</td><td><ul>{fails}</ul></td></tr>')
    return (f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh}">'
            "<title>MSA Lab progress</title><style>body{font:20px sans-serif;margin:2em}"
            "td{padding:.3em 1em;vertical-align:top}.bar{width:16em;height:1em;background:#eee}"
            ".bar div{height:1em;background:#1a7f37}ul{margin:0;color:#cf222e;font-size:16px}</style></head>"
            "<body><h1>MSA Lab — checks passed per chapter</h1><table><tr><th>chapter</th><th></th>"
            "<th>passed</th><th>last</th><th>failing</th></tr>" + "".join(rows) + "</table></body></html>")


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
