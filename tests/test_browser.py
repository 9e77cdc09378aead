"""The workshop as an attendee meets it, in a real browser: the URL ``scripts/workshop.sh`` prints, Run All on 00 and
01 in JupyterLab, the 01 widget clicked, a long cell watched while it runs, and the checkout left as it was.

Screenshots and the cells' times (from JupyterLab's own timing metadata) are kept in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest

from labkit.core.paths import LabPaths

from .jupyter_page import JupyterPage, browser_missing, wait_for

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
MISSING = browser_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

BARE = re.compile(r"^(True|False|None|-?[\d.]+(e-?\d+)?|CompletedProcess\(.*|<__main__\..*>)$", re.S)


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture
def workshop(lab_paths: LabPaths) -> str:
    """The URL ``scripts/workshop.sh`` prints for a lab in a fresh home (``lab_paths`` stops the lab after)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_INDEX", "PIP_FIND_LINKS")}  # conftest's, for builds
    res = subprocess.run([str(ROOT / "scripts" / "workshop.sh")], capture_output=True, text=True, timeout=900,
                         env={**env, "LABKIT_HOME": str(lab_paths.home)})
    assert res.returncode == 0, res.stdout + res.stderr
    found = re.search(r"Open the workshop: (\S+)", res.stdout)
    assert found, res.stdout
    assert f"jupyterlab   {found.group(1)}" in res.stderr, "`labkit up` split the URL:\n" + res.stderr
    status = subprocess.run([str(ROOT / ".venv" / "bin" / "labkit"), "status"], capture_output=True, text=True,
                            timeout=60, env={**env, "LABKIT_HOME": str(lab_paths.home)})
    assert found.group(1) in status.stdout, "`labkit status` split the URL:\n" + status.stdout
    return found.group(1)


@pytest.fixture
def page() -> Any:
    browser = JupyterPage(ARTIFACTS)
    yield browser
    browser.close()


def _cell_index(nb: Any, marker: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if marker in c.source)


def _seconds(cell: Any) -> float | None:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def _check_saved(path: Path) -> list[dict[str, Any]]:
    """The saved working copy: no cell ended in an error or a bare value; returns each code cell's time."""
    nb = nbformat.read(path, as_version=4)
    times = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{path.name} cell {i}: {errors[0].ename}: {errors[0].evalue}"
        bare = [o.data.get("text/plain", "") for o in cell.outputs if o.output_type == "execute_result"
                and "text/html" not in o.data and "image/png" not in o.data
                and BARE.match(o.data.get("text/plain", "").strip())]
        assert not bare, f"{path.name} cell {i} ends in a bare value: {bare[0]!r}"
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        times.append({"cell": i, "seconds": _seconds(cell), "first line": first[:70]})
    return times


@pytest.mark.timeout(1200)
def test_run_all_of_00_and_01_in_chromium(workshop: str, page: JupyterPage, lab_paths: LabPaths) -> None:
    before = _git_status()
    workspace = lab_paths.workspace
    report: dict[str, Any] = {"url": re.sub(r"token=\w+", "token=…", workshop)}

    # 00 opens directly, with the lab's kernel, nothing over it and nothing to save
    report["00 opened, kernel idle (s)"] = round(page.open(workshop), 1)
    assert page.title().startswith("00-welcome"), page.title()
    time.sleep(3)  # the news pop-up and an unsaved-changes mark would show by now
    assert not page.dialogs(), page.dialogs()
    assert not page.dirty(), "00 shows unsaved changes as soon as it opens"
    assert "MSA Lab" in page.js("return document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                                ".jp-KernelName')?.innerText || ''")
    page.screenshot("00-opened")
    report["00 run all (s)"] = round(page.run_all(180), 1)
    page.save()

    # 01: the failover cell's live table changes while the cell runs
    nb01 = nbformat.read(workspace / "01-haproxy.ipynb", as_version=4)
    long_cell, panel_cell = _cell_index(nb01, "StateSampler(lab.haproxy"), _cell_index(nb01, "class Panel")
    snapshots: list[tuple[float, str]] = []

    def watch(prompts: list[str]) -> None:
        if prompts[long_cell] != "[*]:" or len(snapshots) >= 2:
            return
        html = page.output_html(long_cell)
        if "labkit-live" in html and (not snapshots or time.monotonic() - snapshots[0][0] > 2):
            snapshots.append((time.monotonic(), html))
            if len(snapshots) == 2:
                page.scroll_to(long_cell)
                page.screenshot("01-long-cell-running")

    report["01 opened, kernel idle (s)"] = round(page.open(workshop.replace("00-welcome", "01-haproxy")), 1)
    assert not page.dirty(), "01 shows unsaved changes as soon as it opens"
    report["01 run all (s)"] = round(page.run_all(600, watch), 1)
    assert len(snapshots) == 2, "the failover cell showed no live table while it ran"
    assert snapshots[0][1] != snapshots[1][1], "the failover cell's output did not change while it ran"
    images = page.js("return document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                     ".jp-RenderedImage img').length")
    assert images >= 3, f"01 shows {images} plots"

    # 01's widget: drain changes the servers table (found afresh each time: JupyterLab may re-render the cell)
    from selenium.webdriver.common.by import By

    def buttons() -> dict[str, Any]:
        cell = page.driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook "
                                         ".jp-Cell")[panel_cell]
        return {b.text: b for b in cell.find_elements(By.CSS_SELECTOR, ".jupyter-widgets button")}

    def table() -> str:
        html = page.output_html(panel_cell)
        return html[html.find("<table"):html.find("</table>")] if "<table" in html else ""

    page.scroll_to(panel_cell)
    assert {"drain", "disable", "enable"} <= set(buttons()), list(buttons())
    shown = table()
    assert "agent-1" in shown and "agent-2" in shown, "the widget shows no servers table"
    clicked = time.monotonic()
    buttons()["drain"].click()
    wait_for("the widget's table shows the drained server", lambda: "DRAIN" in table(), 15, every=0.05)
    report["01 widget: drain to table updated (s)"] = round(time.monotonic() - clicked, 2)
    assert table() != shown
    page.screenshot("01-widget-after-drain")
    buttons()["enable"].click()
    wait_for("the widget's table shows no drained server", lambda: "DRAIN" not in table(), 15, every=0.05)
    page.save()

    errors = page.console_errors()
    assert not errors, "the browser console has errors:\n" + "\n".join(errors)

    # what JupyterLab saved is the attendee's copy: each cell's time, no error, no bare value; the checkout unchanged
    report["cells"] = {name: _check_saved(workspace / name) for name in ("00-welcome.ipynb", "01-haproxy.ipynb")}
    report["screenshots"] = [str(p.relative_to(ROOT)) for p in page.screenshots]
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    assert _git_status() == before, "Run All in JupyterLab changed the tracked notebooks"
