"""Notebook hygiene, and the papermill runner instructors and CI use."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from labkit.core.paths import LabPaths

from .conftest import BIN, labkit

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_notebook_rules(path: Path) -> None:
    """The shape ../shared/NOTEBOOKS.md asks for, as far as it can be read off the file."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "store notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0] is code[0], "the first code cell is the `parameters` cell"
    assert "backend =" in params[0].source and "live =" in params[0].source
    assert f".chapter({int(path.name[:2])})" in code[1].source, "then one call brings the lab to the chapter's start"
    assert nb.cells[0].cell_type == "markdown" and "After this chapter you can" in nb.cells[0].source
    assert "**Time:**" in nb.cells[0].source, "the title cell says how long the chapter takes"
    solutions = [c for c in code if "solution" in c.metadata.get("tags", [])]
    assert solutions and all(c.source.lstrip().splitlines()[0].startswith("#") and "if not live" in c.source
                             for c in solutions), "solution cells do the attendee's part only when not live"
    checks = [c for c in code if "lab.check(" in c.source]
    assert len(checks) >= 3 and not any(c in solutions for c in checks)
    assert "lab.inject_fault()" in "".join(c.source for c in code), "a Diagnose section with a fault"
    assert not any(re.search(r"""["']rollout["'],\s*["']undo["']""", c.source) for c in checks), \
        "undo lives in its own cell, not in a check"
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any(h.startswith("## Summary") for h in headings) and any("## Your turn" in h for h in headings)


def test_notebooks_run_executes_and_summarises(lab_paths: LabPaths, tmp_path: Path) -> None:
    out = tmp_path / "executed"
    res = labkit("notebooks", "run", "00", "--out", str(out), home=lab_paths, timeout=300)
    assert "00-welcome" in res.stdout and "ok" in res.stdout
    # the kernel's sockets are encrypted (CurveZMQ keys from its manager): ipykernel has nothing to warn about
    assert "without encryption" not in res.stderr, res.stderr
    executed = nbformat.read(out / "00-welcome.ipynb", as_version=4)
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
    data = json.loads(labkit("progress", "--json", home=lab_paths).stdout)
    assert data["chapters"][0]["chapter"] == 0 and data["chapters"][0]["failed"] == 0
    bad = labkit("notebooks", "run", "99", "--out", str(out), home=lab_paths, check=False)
    assert bad.returncode != 0


def test_a_hanging_cell_fails_its_notebook_within_the_cell_timeout(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("backend = 'sim'\nlive = True", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('fine')"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(120)  # forced to hang")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "00-hang.ipynb")
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(folder), "LABKIT_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    started = time.monotonic()
    res = subprocess.run([str(BIN / "labkit"), "notebooks", "run", "--cell-timeout", "5", "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    took = time.monotonic() - started
    assert res.returncode == 1, res.stdout + res.stderr
    assert "00-hang: cell 2 (`import time`) did not finish in 5 s" in " ".join(res.stdout.split()), res.stdout
    assert took < 60, f"the timeout did not stop the run in time ({took:.0f} s)"


# The Korean twins (notebooks/ko/): the same cells, markdown translated, code identical (../shared/NOTEBOOKS.md).

TWINS = Path(__file__).parent.parent / "notebooks" / "ko"
HANGUL = re.compile("[\uac00-\ud7a3]")
KEPT_IN_ENGLISH = ("Summary", "Your turn", "Diagnose", "Clean-up")  # headings the twin keeps in parentheses


def _without_code(markdown: str) -> str:
    """A markdown cell without fenced code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", markdown, flags=re.S))


def _prose(markdown: str) -> str:
    """What a translator translates: the text without code and table rows."""
    return "\n".join(line for line in _without_code(markdown).splitlines() if not line.lstrip().startswith("|"))


def _headings(markdown: str) -> list[str]:
    return [line for line in _without_code(markdown).splitlines() if line.startswith("#")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_korean_twin_has_the_same_cells_with_the_markdown_translated(path: Path) -> None:
    twin_path = TWINS / path.name
    assert twin_path.is_file(), f"no Korean twin {twin_path.relative_to(path.parent.parent)}"
    english, twin = nbformat.read(path, as_version=4), nbformat.read(twin_path, as_version=4)
    nbformat.validate(twin)
    assert (twin.nbformat, twin.nbformat_minor) == (4, 5) and all(c.get("id") for c in twin.cells)
    assert [c.cell_type for c in twin.cells] == [c.cell_type for c in english.cells], \
        "the twin has the English notebook's cells in the same order (`labkit notebooks sync-twins` says where not)"
    for i, (e, t) in enumerate(zip(english.cells, twin.cells, strict=True)):
        if e.cell_type == "code":
            assert t.source == e.source, f"code cell {i} differs: run `labkit notebooks sync-twins`"
            assert t.metadata == e.metadata and t.metadata.get("tags", []) == e.metadata.get("tags", []), \
                f"code cell {i}'s metadata (tags) differ: run `labkit notebooks sync-twins`"
            assert not t.get("outputs") and t.get("execution_count") is None, "twins are stored without outputs"
            continue
        assert t.source != e.source, f"markdown cell {i} is not translated"
        if re.search(r"[A-Za-z]", _prose(e.source)):
            assert HANGUL.search(_prose(t.source)), f"markdown cell {i} has no Korean"
        e_heads, t_heads = _headings(e.source), _headings(t.source)
        assert [h.split()[0] for h in t_heads] == [h.split()[0] for h in e_heads], \
            f"markdown cell {i}: the twin has the same headings at the same levels"
        for eh, th in zip(e_heads, t_heads, strict=True):
            for word in KEPT_IN_ENGLISH:
                if word.lower() in eh.lower():
                    assert f"({word.lower()}" in th.lower(), f"cell {i}: {th!r} keeps ({word}) after the Korean"
    title = twin.cells[0].source
    assert "(After this chapter you can)" in title and "(Time)" in title, \
        "the title cell keeps the English objectives and time labels in parentheses"


def test_sync_twins_check_passes() -> None:
    res = labkit("notebooks", "sync-twins", "--check", check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    for path in NOTEBOOKS:
        assert f"ko/{path.name}: code cells identical" in " ".join(res.stderr.split()), res.stderr


def _sync_twins(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(folder), "COLUMNS": "200"}
    return subprocess.run([str(BIN / "labkit"), "notebooks", "sync-twins", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_sync_twins_copies_code_cells_and_stops_when_the_cells_no_longer_line_up(tmp_path: Path) -> None:
    english_path = NOTEBOOKS[0]
    folder = tmp_path / "notebooks"
    (folder / "ko").mkdir(parents=True)
    shutil.copy(english_path, folder / english_path.name)
    shutil.copy(TWINS / english_path.name, folder / "ko" / english_path.name)
    mine, twin_path = folder / english_path.name, folder / "ko" / english_path.name
    nb = nbformat.read(mine, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i > 3)
    nb.cells[index].source += "\nprint('changed')"
    nb.cells[index].metadata["tags"] = ["changed"]
    nbformat.write(nb, mine)
    markdown_before = [c.source for c in nbformat.read(twin_path, as_version=4).cells if c.cell_type == "markdown"]

    res = _sync_twins(folder, "--check")
    assert res.returncode == 1 and f"cell {index} " in res.stderr, res.stderr
    unchanged = nbformat.read(twin_path, as_version=4).cells[index]
    assert unchanged.source != nb.cells[index].source, "--check changes nothing"

    res = _sync_twins(folder)
    assert res.returncode == 0, res.stderr
    synced = nbformat.read(twin_path, as_version=4)
    nbformat.validate(synced)
    assert synced.cells[index].source == nb.cells[index].source
    assert synced.cells[index].metadata.get("tags") == ["changed"]
    assert [c.source for c in synced.cells if c.cell_type == "markdown"] == markdown_before, "the translation stays"
    assert _sync_twins(folder, "--check").returncode == 0

    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A new paragraph the translator has not seen yet."))
    nbformat.write(nb, mine)
    before = twin_path.read_bytes()
    for args in ((), ("--check",)):
        res = _sync_twins(folder, *args)
        said = " ".join(res.stderr.split())
        assert res.returncode == 1 and "differ from cell 3 on" in said and "3: markdown `A new paragraph" in said, \
            res.stderr
    assert twin_path.read_bytes() == before, "a twin whose cells no longer line up is left alone"


def test_runs_and_nbval_use_the_english_notebooks_only() -> None:
    from labkit.notebooks import checks_per_chapter, select

    folder = NOTEBOOKS[0].parent
    assert select([], folder) == NOTEBOOKS and all(p.parent == folder for p in select(["00"], folder))
    assert sorted(checks_per_chapter(folder)) == [int(p.name[:2]) for p in NOTEBOOKS]
    script = (folder.parent / "scripts" / "test.sh").read_text()
    assert re.search(r"pytest .*tests notebooks --ignore=notebooks/ko ", script), "nbval must not run the Korean twins"
