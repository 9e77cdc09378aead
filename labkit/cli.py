"""The ``labkit`` command."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import control
from .control import resolve_backend
from .core.paths import LabPaths
from .notebooks import CELL_TIMEOUT

app = typer.Typer(help="MSA Lab: start, inspect and reset the workshop lab.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
notebooks_app = typer.Typer(help="Run the workshop notebooks.")
app.add_typer(notebooks_app, name="notebooks")
node_app = typer.Typer(help="Stop and start the lab's nodes (server-1..3, agent-1..2).")
app.add_typer(node_app, name="node")
console = Console(stderr=True)
out = Console()

Backend = Annotated[str | None, typer.Option("--backend", "-b", help="sim (default) or kind")]


def _paths() -> LabPaths:
    return LabPaths.resolve()


@contextmanager
def _step(title: str) -> Iterator[control.Progress]:
    """A spinner showing the current step of something slow; errors become a clean exit."""
    with console.status(title) as status:
        def progress(msg: str) -> None:
            status.update(f"{title}: {msg}")
        try:
            yield progress
        except (control.LabError, ValueError) as err:
            status.stop()
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None


@app.command()
def up(backend: Backend = None,
       jupyter: Annotated[bool | None, typer.Option(
           "--jupyter/--no-jupyter", help="also serve the notebooks with JupyterLab")] = None) -> None:
    """Start the lab and return when it is ready (idempotent)."""
    paths = _paths()
    start = time.perf_counter()
    with _step("labkit up") as progress:
        ep = control.up(paths, resolve_backend(backend, paths), jupyter=jupyter, progress=progress)
    console.print(f"[green]lab ready[/green] ({ep.backend}, {time.perf_counter() - start:.1f} s) "
                  f"home {paths.home}")
    if "jupyterlab" in ep.products:  # a lab already running gets the chapters a `git pull` brought, too
        from .jupyter.workspace import Workspace

        for line in Workspace.of(paths.workspace).sync():
            console.print(f"  workspace: {line}", markup=False, highlight=False, soft_wrap=True)
    for name, product in ep.products.items():  # soft_wrap: a URL (and its token) stays on one line in any width
        console.print(f"  {name:<12} {product.url or ', '.join(getattr(product, 'images', {}).values())}",
                      soft_wrap=True)
    console.print('Next: eval "$(labkit env)" to use kubectl with this lab.')


@app.command()
def down() -> None:
    """Stop the lab and every process it started."""
    with _step("labkit down") as progress:
        was = control.down(_paths(), progress=progress)
    console.print("lab stopped" if was else "the lab was not running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Every component, its endpoint and its health (exit 1 if down or unhealthy)."""
    paths = _paths()
    ep = control.endpoints(paths)
    rows = control.status(paths) if ep else []
    healthy = bool(ep) and all(r.healthy for r in rows)
    if as_json:
        out.print_json(json.dumps({"running": bool(ep), "healthy": healthy, "home": str(paths.home),
                                   "backend": ep.backend if ep else None,
                                   "products": [dataclasses.asdict(r) for r in rows]}))
    elif not ep:
        console.print(f"the lab in {paths.home} is [red]down[/red]: start it with `labkit up`")
    else:
        table = Table(title=f"lab ({ep.backend}) — {paths.home}")
        table.add_column("product")
        table.add_column("endpoint", overflow="fold")  # in a narrow terminal a URL folds, but loses nothing
        table.add_column("health")
        for r in rows:
            mark = "[green]ok[/green]" if r.healthy else f"[red]{r.detail or 'down'}[/red]"
            table.add_row(r.name, r.url or "", mark)
        (out if out.is_terminal else Console(width=1000)).print(table)  # piped or captured: every URL whole
    raise typer.Exit(0 if healthy else 1)


@app.command()
def env() -> None:
    """Shell exports for this lab: eval "$(labkit env)"."""
    from .endpoints import DockerEndpoint, RegistryEndpoint
    from .toolenv import tool_env

    paths = _paths()
    ep = control.endpoints(paths)
    registry = ep.products.get("registry") if ep else None
    docker = ep.products.get("docker") if ep else None
    exports = tool_env(paths, registry if isinstance(registry, RegistryEndpoint) else None,
                       docker if isinstance(docker, DockerEndpoint) else None)
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")


@app.command()
def reset(chapter: Annotated[int | None, typer.Option(
        help="then bring the lab to this chapter's start")] = None) -> None:
    """Forget the lab's state and start it fresh (learner progress is kept)."""
    paths = _paths()
    backend = resolve_backend(None, paths)
    with _step("labkit reset") as progress:
        control.reset(paths, progress=progress)
        control.up(paths, backend, progress=progress)
        if chapter is not None:
            from .lab import Lab

            progress(f"preparing chapter {chapter}")
            Lab.connect().chapter(chapter)
    console.print("lab reset" + (f" to chapter {chapter}" if chapter is not None else ""))


@app.command()
def logs(component: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
         lines: Annotated[int, typer.Option("--tail", "-n")] = 50) -> None:
    """Show a component's log (daemon, kube-apiserver, jupyterlab, …)."""
    path = _paths().logs / f"{component}.log"
    if not path.exists():
        known = sorted(p.stem for p in _paths().logs.glob("*.log"))
        console.print(f"[red]no log for {component!r}[/red]; logs exist for: {', '.join(known) or 'none'}")
        raise typer.Exit(1)
    with path.open(errors="replace") as f:
        for line in f.readlines()[-lines:]:  # as written: a log line is never wrapped to the terminal's width
            sys.stdout.write(line)
        sys.stdout.flush()
        while follow:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)


@app.command()
def doctor(backend: Backend = None) -> None:
    """Pre-flight checks, each failure with its fix."""
    from .doctor import run_checks

    results = run_checks(resolve_backend(backend, _paths()), _paths())
    table = Table(title="labkit doctor")
    for col in ("check", "result", "detail / fix"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, "[green]ok[/green]" if r.ok else "[red]FAIL[/red]",
                      r.detail if r.ok else f"{r.detail}\n[yellow]fix:[/yellow] {r.fix}")
    out.print(table)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command()
def progress(as_json: Annotated[bool, typer.Option("--json")] = False,
             html_file: Annotated[Path | None, typer.Option(
                 "--html", help="write a page for the projector (it reloads itself) to this file")] = None) -> None:
    """Learner check results per chapter: checks passed of the chapter's checks (what an instructor looks at)."""
    from .chapters import CHAPTERS
    from .checks import Progress, progress_html
    from .notebooks import checks_per_chapter

    prog = Progress(_paths())
    summary, latest = prog.summary(checks_per_chapter()), prog.latest()
    if as_json:
        out.print_json(json.dumps({"chapters": summary, "checks": latest}))
        return
    if html_file is not None:
        html_file.write_text(progress_html(summary, latest, {n: c.title for n, c in CHAPTERS.items()}))
        console.print(f"wrote {html_file} (open it in a browser; it reloads every 10 s)")
        return
    table = Table(title="workshop progress")
    for col in ("chapter", "passed", "failed", "failing checks", "last activity"):
        table.add_column(col)
    failing: dict[int, list[str]] = {}
    for r in latest:
        if not r["passed"]:
            failing.setdefault(r["chapter"], []).append(r["name"])
    for s in summary:
        ch = CHAPTERS.get(s["chapter"])
        table.add_row(f"{s['chapter']:02d} {ch.slug if ch else ''}", f"{s['passed']} of {s['checks']}",
                      str(s["failed"]), ", ".join(failing.get(s["chapter"], [])),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(s["last"])) if s["last"] else "—")
    out.print(table)


@node_app.command("stop")
def node_stop(name: str) -> None:
    """Stop a node: its pods' processes stop and it goes NotReady, as a real node would."""
    with _step(f"stopping node {name}"):
        console.print(control.action(_paths(), "kubernetes", "node-stop", name=name))


@node_app.command("start")
def node_start(name: str) -> None:
    """Start a stopped node again."""
    with _step(f"starting node {name}"):
        console.print(control.action(_paths(), "kubernetes", "node-start", name=name))


@notebooks_app.command("run")
def notebooks_run(names: Annotated[list[str] | None, typer.Argument(
                      help="notebooks (e.g. 00 or 00-welcome); default all")] = None,
                  backend: Backend = None,
                  out_dir: Annotated[Path, typer.Option("--out")] = Path("out/notebooks"),
                  cell_timeout: Annotated[float, typer.Option(
                      "--cell-timeout", help="seconds one cell may run before its notebook fails")] = CELL_TIMEOUT,
                  fresh: Annotated[bool, typer.Option(
                      "--fresh", help="each notebook alone on a fresh lab (a `labkit reset` before each)")] = False
                  ) -> None:
    """Execute notebooks in order with papermill (on one lab, or each on a fresh one); a summary table; exit 1 on
    any failure."""
    from .notebooks import run_notebooks

    results = run_notebooks(names or [], backend=resolve_backend(backend, _paths()), out_dir=out_dir,
                            progress=lambda msg: console.print(msg), cell_timeout=cell_timeout, fresh=fresh)
    table = Table(title="notebooks")
    for col in ("notebook", "seconds", "checks passed", "checks failed", "result"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, f"{r.seconds:.1f}", str(r.passed), str(r.failed),
                      "[green]ok[/green]" if r.ok else f"[red]{r.error or 'failed'}[/red]")
    out.print(table)
    raise typer.Exit(0 if results and all(r.ok for r in results) else 1)


@notebooks_app.command("reset")
def notebooks_reset(names: Annotated[list[str] | None, typer.Argument(
                        help="notebooks (e.g. 01 or 01-haproxy, both languages); default all")] = None) -> None:
    """Put a pristine copy of notebooks back in your workspace (what JupyterLab serves); a copy you changed is kept
    in the workspace's backups/ folder with the date and time in its name."""
    from .jupyter.workspace import Workspace

    workspace = Workspace.of(_paths().workspace)
    try:
        done = workspace.reset(names or [])
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from None
    for name, backup in done:
        kept = f"; yours is kept as {backup.relative_to(workspace.folder)}" if backup else " (it was unchanged)"
        console.print(f"{name}: pristine copy restored{kept}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"workspace: {workspace.folder}", soft_wrap=True)


@notebooks_app.command("sync-twins")
def notebooks_sync_twins(check: Annotated[bool, typer.Option(
                             "--check", help="only report differences (exit 1 when any); change nothing")] = False
                         ) -> None:
    """Copy the English notebooks' code cells into their Korean twins (notebooks/ko/), keeping the translation.

    If a notebook and its twin no longer have the same sequence of cell types, says which cell differs and leaves
    that twin alone: add or remove the markdown cell in the twin by hand, then sync again."""
    from .notebooks import sync_twins

    results = sync_twins(write=not check)
    if not results:
        console.print("no notebook has a twin in notebooks/ko/")
    for r in results:
        name = f"{r.twin.parent.name}/{r.twin.name}"
        if r.mismatch:
            console.print(f"[red]{name}: not synced[/red]: {r.mismatch}")
        elif r.differences:
            verb = "differs from" if check else "updated from"
            console.print(f"[yellow]{name}[/yellow] {verb} {r.english.name}:")
            for line in r.differences:
                console.print(f"  {line}", markup=False, highlight=False)
        else:
            console.print(f"{name}: code cells identical to {r.english.name}")
    raise typer.Exit(1 if any(r.mismatch for r in results) or (check and not all(r.ok for r in results)) else 0)


if __name__ == "__main__":
    app()
