"""``lab.gitlab``, the GitLab chapter's view, on a sim lab: ``repair()`` after an interrupted lesson (through
``lab.chapter(3)``), the chapter's Diagnose fault as GitLab shows it, and the pipeline plot."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib
import pytest

from labkit.core.checkout import Checkout
from labkit.gitlab.views import STATUS_COLOURS, job_frame, plot_pipeline
from labkit.lab import Lab

matplotlib.use("Agg")


def test_chapter_3_repairs_the_shop_project_and_the_fault_is_found_by_ci_lint(lab: Lab) -> None:
    lab.chapter(3)
    gitlab = lab.gitlab
    project = gitlab.project()
    started = time.perf_counter()
    assert gitlab.repair() == [] and time.perf_counter() - started < 3, "nothing to repair should be quick"
    seeded_ci = (Checkout.find().root / "apps" / ".gitlab-ci.yml").read_text()

    # an interrupted lesson: a change whose pipeline is still running, then a broken .gitlab-ci.yml and a stray file
    def change(work: Path) -> None:
        (work / "catalog" / "__init__.py").write_text((work / "catalog" / "__init__.py").read_text() + "\n# wip\n")

    running = gitlab.pipeline_for(gitlab.commit(change, "catalog: wip"))
    assert running["source"] == "push"

    def break_it(work: Path) -> None:
        (work / ".gitlab-ci.yml").write_text("build:\n  script: [make\n")
        (work / "scratch.txt").write_text("notes")

    broken = project.pipelines.get(gitlab.pipeline_for(gitlab.commit(break_it, "ci: wip"))["id"])
    assert broken.status == "failed" and broken.yaml_errors

    lab.chapter(3)
    assert f"pipeline {running['id']} of shop/shop cancelled" in lab.repaired
    assert "shop/shop restored as the lab seeded it" in lab.repaired
    assert project.pipelines.get(running["id"]).status == "canceled"
    head = gitlab.head()
    assert project.files.raw(".gitlab-ci.yml", ref=head).decode() == seeded_ci
    assert "scratch.txt" not in {t["path"] for t in project.repository_tree(ref=head, get_all=True)}
    assert project.commits.get(head).title.endswith("[skip ci]")
    assert all(p.status == "skipped" for p in project.pipelines.list(sha=head, get_all=True))
    assert gitlab.repair() == []

    # the chapter's Diagnose fault: a pushed commit whose pipeline fails with yaml_errors, as CI lint says
    lab.inject_fault()
    faulty = project.pipelines.get(gitlab.pipeline_for(gitlab.head())["id"])
    assert faulty.status == "failed" and faulty.source == "push"
    lint = project.ci_lint.get()
    assert not lint.valid and faulty.yaml_errors in lint.errors
    assert "chosen stage tests does not exist" in faulty.yaml_errors
    lab.chapter(3)
    assert project.ci_lint.get().valid


def test_the_pipeline_plot_has_jobs_by_stage_over_time_coloured_by_status() -> None:
    zero = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds: float | None) -> str | None:
        return None if seconds is None else (zero + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    pipeline = {"created_at": at(0)}
    jobs = [{"id": 1, "name": "build", "stage": "build", "status": "success", "created_at": at(0), "started_at": at(1),
             "finished_at": at(5)},
            {"id": 2, "name": "test", "stage": "test", "status": "failed", "created_at": at(0), "started_at": at(1),
             "finished_at": at(9), "failure_reason": "script_failure"},
            {"id": 3, "name": "deploy", "stage": "deploy", "status": "skipped", "created_at": at(0),
             "started_at": None, "finished_at": None},
            {"id": 4, "name": "scan", "stage": "security", "status": "running", "created_at": at(0),
             "started_at": at(6), "finished_at": None}]
    frame = job_frame(pipeline, jobs, now=zero + timedelta(seconds=12))
    rows = frame.set_index("job")
    assert rows.loc["test", "end"] - rows.loc["test", "start"] == 8
    assert rows.loc["scan", "end"] == 12, "a running job ends now"
    assert rows.loc["deploy", "start"] is None or rows["start"].isna()["deploy"]
    fig = plot_pipeline(frame, "shop/shop pipeline #1", [".pre", "build", "test", "security", "deploy", ".post"],
                        "failed")
    ax = fig.axes[0]
    assert ax.get_title() == "shop/shop pipeline #1 — failed"
    assert "seconds" in ax.get_xlabel() and ax.get_ylabel() == "stage · job"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["build · build", "test · test", "security · scan",
                                                           "deploy · deploy"]
    bars = {round(p.get_width(), 1): p.get_facecolor() for p in ax.patches if hasattr(p, "get_width")}
    assert matplotlib.colors.to_hex(bars[8.0]) == STATUS_COLOURS["failed"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"success", "failed", "running", "skipped"}


def test_the_live_plot_refreshes_in_place_in_its_own_cell_output(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """In a kernel a person uses (not CI), ``LivePipeline`` shows one output in the cell that creates it and
    replaces it at every call: the chart while the pipeline runs, then the final one."""
    import nbformat
    from nbclient import NotebookClient

    source = '''
from datetime import UTC, datetime, timedelta
from labkit.gitlab.views import LivePipeline, job_frame, plot_pipeline
zero = datetime(2026, 1, 1, tzinfo=UTC)
at = lambda s: (zero + timedelta(seconds=s)).isoformat()
jobs = [{"id": 1, "name": "build", "stage": "build", "status": "running", "created_at": at(0), "started_at": at(1),
         "finished_at": None}]
live = LivePipeline("pipeline #1", ["build"])
live(job_frame({"created_at": at(0)}, jobs, now=zero + timedelta(seconds=3)), "running")
jobs[0].update(status="success", finished_at=at(4))
final = job_frame({"created_at": at(0)}, jobs)
kept = live.close(plot_pipeline(final, "pipeline #1", ["build"], "success"))
print("kept:", kept)
'''
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    for name in ("LABKIT_NONINTERACTIVE", "CI"):  # the kernel inherits these: a person's kernel has neither
        monkeypatch.delenv(name, raising=False)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1, outputs
    assert "image/png" in shown[0].data, "the live HTML placeholder was replaced by the chart, in place"
    assert any(o.output_type == "stream" and "kept: None" in o.text for o in outputs)
