"""Execute the workshop notebooks with papermill, as CI and instructors do."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checks import Progress, counts_since
from .core.paths import LabPaths
from .jupyter.component import notebooks_dir


@dataclass
class NotebookResult:
    name: str
    seconds: float
    passed: int
    failed: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.failed == 0


def checks_per_chapter(folder: Path | None = None) -> dict[int, int]:
    """How many learner checks each chapter's notebook has (``lab.check(`` calls outside ``solution`` cells)."""
    import nbformat

    counts = {}
    for path in sorted((folder or notebooks_dir()).glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        counts[int(path.name[:2])] = sum(c.source.count("lab.check(") for c in nb.cells if c.cell_type == "code"
                                         and "solution" not in c.get("metadata", {}).get("tags", []))
    return counts


def select(names: list[str], folder: Path | None = None) -> list[Path]:
    """Notebooks in order; ``names`` match by prefix (``02`` or ``02-kubernetes``)."""
    every = sorted((folder or notebooks_dir()).glob("[0-9][0-9]-*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        hits = [p for p in every if p.stem == name or p.name == name or p.stem.startswith(f"{name}-")]
        if not hits:
            raise ValueError(f"no notebook matches {name!r}; there are: {', '.join(p.stem for p in every)}")
        chosen.extend(hits)
    return chosen


CELL_TIMEOUT = 300.0  # seconds one cell may run under `labkit notebooks run` and nbval (scripts/test.sh)


def _stuck_cell(executed: Path) -> str:
    """The last cell papermill started, from the executed copy: ``cell 29 (`first line`)``, numbered as in the
    notebook itself (papermill's injected parameters cell left out)."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return "a cell"
    cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    started = [(c.metadata.get("papermill", {}).get("start_time") or "", i) for i, c in enumerate(cells)]
    when, index = max(started, default=("", -1))
    if not when:
        return "a cell"
    first = next((line for line in cells[index].source.splitlines() if line.strip()), "")
    return f"cell {index} (`{first[:60]}`)"


def run_notebooks(names: list[str], backend: str, out_dir: Path, progress: Callable[[str], None] = print,
                  cell_timeout: float = CELL_TIMEOUT) -> list[NotebookResult]:
    """Run the notebooks one after another against this home's lab; never raises on a failure.

    A cell that runs longer than ``cell_timeout`` seconds fails its notebook, named with the cell."""
    import papermill
    from nbclient.exceptions import CellTimeoutError

    paths = LabPaths.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["LABKIT_NONINTERACTIVE"] = "1"  # checks raise, live widgets refresh once
    os.environ["LABKIT_HOME"] = str(paths.home)
    paths.ensure()
    prog = Progress(paths)
    last, _, _ = counts_since(prog, 0)
    results = []
    for nb in select(names):
        progress(f"running {nb.name}")
        start = time.perf_counter()
        error = ""
        try:
            papermill.execute_notebook(
                str(nb), str(out_dir / nb.name), parameters={"backend": backend, "live": False},
                kernel_name="python3", cwd=str(nb.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout,
            )
        except CellTimeoutError:
            error = (f"{nb.stem}: {_stuck_cell(out_dir / nb.name)} did not finish in {cell_timeout:.0f} s "
                     "(the per-cell timeout)")
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's error
            where = f"{nb.stem}: cell {exc.cell_index}: " if hasattr(exc, "cell_index") else f"{nb.stem}: "
            error = where + getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc))[:200]
        last, passed, failed = counts_since(prog, last)
        results.append(NotebookResult(nb.stem, time.perf_counter() - start, passed, failed, error))
    return results
