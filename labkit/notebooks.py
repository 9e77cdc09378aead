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


def run_notebooks(names: list[str], backend: str, out_dir: Path,
                  progress: Callable[[str], None] = print) -> list[NotebookResult]:
    """Run the notebooks one after another against this home's lab; never raises on a failure."""
    import papermill

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
            )
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's error
            error = getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc))[:200]
        last, passed, failed = counts_since(prog, last)
        results.append(NotebookResult(nb.stem, time.perf_counter() - start, passed, failed, error))
    return results
