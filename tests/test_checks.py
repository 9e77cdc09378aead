"""Learner checks and the progress an instructor reads."""

from __future__ import annotations

import json

import pytest

from labkit.checks import CheckFailed
from labkit.lab import Lab
from labkit.notebooks import checks_per_chapter

from .conftest import labkit


def test_check_passes_records_and_fails_loudly_when_not_interactive(lab: Lab) -> None:
    lab.chapter(0)
    assert lab.check("first", 1 + 1 == 2, hint="never shown")
    with pytest.raises(CheckFailed, match="second — hint: look again"):
        lab.check("second", False, hint="look again")
    df = lab.progress()
    assert list(df["name"]) == ["first", "second"]
    assert list(df["passed"]) == [True, False]
    assert (df["chapter"] == 0).all()


def test_progress_command_shows_latest_result_per_chapter(lab: Lab) -> None:
    lab.chapter(2)
    with pytest.raises(CheckFailed):
        lab.check("pods ready", False)
    lab.check("pods ready", True)  # a retry that passes replaces the failure
    lab.check("scaled", True)
    data = json.loads(labkit("progress", "--json", home=lab.paths).stdout)
    chapters = {c["chapter"]: c for c in data["chapters"]}
    in_notebook = checks_per_chapter()
    assert set(chapters) == set(in_notebook) and in_notebook[2] >= 10
    assert chapters[2] == {"chapter": 2, "passed": 2, "failed": 0, "attempts": 3, "checks": in_notebook[2],
                           "last": chapters[2]["last"]}
    assert chapters[1]["passed"] == 0 and chapters[1]["checks"] == in_notebook[1]
    table = " ".join(labkit("progress", home=lab.paths).stdout.split())
    assert f"02 kubernetes │ 2 of {in_notebook[2]}" in table
    page = lab.paths.home / "progress.html"
    labkit("progress", "--html", str(page), home=lab.paths)
    assert f"<td>2 of {in_notebook[2]}</td>" in page.read_text() and 'http-equiv="refresh"' in page.read_text()


def test_a_check_is_filed_under_its_own_notebooks_chapter(lab: Lab) -> None:
    ch1 = Lab.connect(home=lab.paths.home).chapter(0)
    Lab.connect(home=lab.paths.home).chapter(2)  # another notebook moves the lab on
    ch1.check("from chapter 0", True)
    assert lab.progress().set_index("name").loc["from chapter 0", "chapter"] == 0


def test_chapter_is_remembered_and_unknown_chapter_is_an_error(lab: Lab) -> None:
    lab.chapter(2)
    assert Lab.connect(home=lab.paths.home).current_chapter == 2
    with pytest.raises(ValueError, match="no chapter 42"):
        lab.chapter(42)
