"""Notebook hygiene, and the papermill runner instructors and CI use."""

from __future__ import annotations

import json
import os
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
    assert all("rollout undo" not in c.source for c in checks), "undo lives in its own cell, not in a check"
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any(h.startswith("## Summary") for h in headings) and any("## Your turn" in h for h in headings)


def test_notebooks_run_executes_and_summarises(lab_paths: LabPaths, tmp_path: Path) -> None:
    out = tmp_path / "executed"
    res = labkit("notebooks", "run", "00", "--out", str(out), home=lab_paths, timeout=300)
    assert "00-welcome" in res.stdout and "ok" in res.stdout
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
