"""Learner checks and the progress an instructor reads."""

from __future__ import annotations

import json

import pytest

from labkit.checks import CheckFailed
from labkit.lab import Lab

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
    assert data["chapters"] == [
        {"chapter": 2, "passed": 2, "failed": 0, "attempts": 3, "last": data["chapters"][0]["last"]}]
    table = labkit("progress", home=lab.paths).stdout
    assert "02 kubernetes" in table


def test_chapter_is_remembered_and_unknown_chapter_is_an_error(lab: Lab) -> None:
    lab.chapter(2)
    assert Lab.connect(home=lab.paths.home).current_chapter == 2
    with pytest.raises(ValueError, match="no chapter 42"):
        lab.chapter(42)
