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


def kernel_manager_class() -> type:
    """The kernels' manager: it provisions CurveZMQ keys for a kernel whose kernelspec supports them (jupyter_client's
    ``transport_encryption``), so the kernel's loopback TCP sockets are encrypted and ipykernel has no "running over
    TCP without encryption" warning to print; without CurveZMQ in pyzmq, the default manager."""
    import zmq
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    if not zmq.has("curve"):
        return AsyncKernelManager

    class EncryptedKernelManager(AsyncKernelManager):
        transport_encryption = CaselessStrEnum(["disabled", "auto", "required"], default_value="auto", config=True)

    return EncryptedKernelManager


def run_notebooks(names: list[str], backend: str, out_dir: Path, progress: Callable[[str], None] = print,
                  cell_timeout: float = CELL_TIMEOUT, fresh: bool = False) -> list[NotebookResult]:
    """Run the notebooks one after another against this home's lab; never raises on a failure.

    A cell that runs longer than ``cell_timeout`` seconds fails its notebook, named with the cell. ``fresh``: each
    notebook alone on a fresh lab (``labkit reset`` before it; its time includes the reset and start)."""
    import papermill
    from nbclient.exceptions import CellTimeoutError

    from . import control

    paths = LabPaths.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["LABKIT_NONINTERACTIVE"] = "1"  # checks raise, live widgets refresh once
    os.environ["LABKIT_HOME"] = str(paths.home)
    paths.ensure()
    prog = Progress(paths)
    last, _, _ = counts_since(prog, 0)
    results = []
    manager = kernel_manager_class()
    for nb in select(names):
        progress(f"running {nb.name}" + (" on a fresh lab" if fresh else ""))
        start = time.perf_counter()
        error = ""
        try:
            if fresh:
                control.reset(paths)
                control.up(paths, backend)
            papermill.execute_notebook(
                str(nb), str(out_dir / nb.name), parameters={"backend": backend, "live": False},
                kernel_name="python3", cwd=str(nb.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout, kernel_manager_class=manager,
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


# The Korean twins (notebooks/ko/NN-slug.ipynb): the same cells as the English notebook, markdown translated,
# code cells identical. CI runs the English notebooks only, so the twins' code must not drift from them.

TWINS = "ko"
_CODE_FIELDS = ("source", "metadata", "outputs", "execution_count")  # what a twin's code cell copies


@dataclass
class TwinSync:
    """What ``sync_twins`` found (and, unless checking, fixed) in one twin."""

    english: Path
    twin: Path
    differences: list[str]  # one line per code cell that differed from the English one
    mismatch: str = ""  # the cell sequences differ: the twin was left untouched, a translator must fix it

    @property
    def ok(self) -> bool:
        return not self.differences and not self.mismatch


def twin_pairs(folder: Path | None = None) -> list[tuple[Path, Path]]:
    """Every ``NN-*.ipynb`` of the notebooks folder that has a twin in ``ko/``, with that twin."""
    folder = folder or notebooks_dir()
    return [(p, folder / TWINS / p.name) for p in sorted(folder.glob("[0-9][0-9]-*.ipynb"))
            if (folder / TWINS / p.name).is_file()]


def _first_line(cell) -> str:
    line = next((s for s in cell.source.splitlines() if s.strip()), "")
    return f"`{line[:60]}`" if line else "(empty)"


def _runs(nb) -> list[tuple[list[int], int | None]]:
    """The notebook as runs of text (markdown) cells, each ended by a code cell or by the notebook's end:
    ``[(indexes of the text cells, index of the code cell or None)]``."""
    runs, text = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            runs.append((text, i))
            text = []
        else:
            text.append(i)
    if text:
        runs.append((text, None))
    return runs


def _sequence_mismatch(english, twin) -> str:
    """Where the two notebooks' sequences of cell types part, said so a translator can fix it; "" if they agree.

    Markdown cannot be matched across languages, so the answer is the first run of markdown cells (up to the next
    code cell) that differs, with the first line of each cell on both sides."""
    if [c.cell_type for c in english.cells] == [c.cell_type for c in twin.cells]:
        return ""
    e_runs, t_runs = _runs(english), _runs(twin)

    def kinds(nb, run):
        return None if run is None else ([nb.cells[i].cell_type for i in run[0]], run[1] is None)

    def describe(nb, run) -> str:
        if run is None:
            return "no more cells"
        text, code = run
        end = f"code cell {code} ({_first_line(nb.cells[code])})" if code is not None else "the end"
        return f"{len(text) or 'no'} markdown cell(s) before {end}" + "".join(
            f"; {i}: {nb.cells[i].cell_type} {_first_line(nb.cells[i])}" for i in text)

    for k in range(max(len(e_runs), len(t_runs))):
        e, t = (e_runs[k] if k < len(e_runs) else None), (t_runs[k] if k < len(t_runs) else None)
        if kinds(english, e) != kinds(twin, t):
            break
    text, code = e or t
    return (f"the cells differ from cell {text[0] if text else code} on. The English notebook has "
            f"{describe(english, e)}. The twin has {describe(twin, t)}. Add or remove the markdown cell in the twin "
            "by hand (for a new code cell, an empty code cell: sync fills it in), then sync again")


def sync_twin(english_path: Path, twin_path: Path, write: bool = True) -> TwinSync:
    """Copy each code cell of the English notebook (source, metadata, and its outputs and execution count, which
    are stored empty) into the twin at the same position, keeping the twin's markdown and cell ids.

    Nothing is written if the two notebooks' sequences of cell types differ (``mismatch`` says where)."""
    import nbformat

    english = nbformat.read(english_path, as_version=4)
    twin = nbformat.read(twin_path, as_version=4)
    result = TwinSync(english_path, twin_path, [])
    result.mismatch = _sequence_mismatch(english, twin)
    if result.mismatch:
        return result
    for i, (e, t) in enumerate(zip(english.cells, twin.cells, strict=True)):
        if e.cell_type != "code":
            continue
        differ = [f for f in _CODE_FIELDS if t.get(f) != e.get(f)]
        if differ:
            result.differences.append(f"cell {i} ({_first_line(e)}): {', '.join(differ)} differ")
            for f in _CODE_FIELDS:
                t[f] = nbformat.from_dict(e.get(f))  # a copy
    if result.differences and write:
        nbformat.validate(twin)
        nbformat.write(twin, twin_path)
    return result


def sync_twins(folder: Path | None = None, write: bool = True) -> list[TwinSync]:
    """``sync_twin`` for every English notebook with a twin; a twin whose cells no longer line up is left alone."""
    return [sync_twin(english, twin, write=write) for english, twin in twin_pairs(folder)]
