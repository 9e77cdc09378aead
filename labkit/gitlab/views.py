"""A pipeline in pictures: its jobs by stage over time (a Gantt chart of the DAG GitLab ran), coloured by status,
drawn live in the output of the cell that follows it and once more when it ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# GitLab's own colours for its statuses, roughly (its pipeline graph's icons)
STATUS_COLOURS = {"success": "#2da160", "failed": "#dd2b0e", "running": "#1f75cb", "pending": "#c17d10",
                  "created": "#bfbfbf", "waiting_for_resource": "#c17d10", "preparing": "#c17d10",
                  "canceled": "#333238", "skipped": "#dcdcde", "manual": "#737278", "scheduled": "#737278"}
COLUMNS = ["job", "stage", "status", "queued", "start", "end", "allow_failure", "failure_reason", "id"]


def _seconds(stamp: str | None, zero: datetime) -> float | None:
    if not stamp:
        return None
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - zero).total_seconds()


def job_frame(pipeline: dict[str, Any], jobs: list[dict[str, Any]], now: datetime | None = None) -> pd.DataFrame:
    """One row per job: its stage and status, and in seconds since the pipeline was created: ``queued`` (created),
    ``start`` and ``end`` (a running job ends now; one that never started has neither)."""
    zero = datetime.fromisoformat(pipeline["created_at"].replace("Z", "+00:00"))
    at = now or datetime.now(zero.tzinfo)
    rows = []
    for j in sorted(jobs, key=lambda j: j["id"]):
        start = _seconds(j.get("started_at"), zero)
        end = _seconds(j.get("finished_at"), zero)
        if start is not None and end is None:
            end = (at - zero).total_seconds()
        rows.append({"job": j["name"], "stage": j["stage"], "status": j["status"],
                     "queued": _seconds(j.get("created_at"), zero), "start": start, "end": end,
                     "allow_failure": bool(j.get("allow_failure")), "failure_reason": j.get("failure_reason") or "",
                     "id": j["id"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _stage_order(jobs: pd.DataFrame, stages: list[str]) -> list[str]:
    """The stages in the pipeline's order (``stages``), the jobs' own first-seen order for any not listed."""
    seen = list(dict.fromkeys(jobs["stage"])) if len(jobs) else []
    return [s for s in stages if s in seen] + [s for s in seen if s not in stages]


def plot_pipeline(jobs: pd.DataFrame, title: str, stages: list[str] | None = None, status: str = "",
                  marks: dict[str, float] | None = None) -> Figure:
    """A Gantt chart of a pipeline's jobs: one row per job, grouped by stage in the pipeline's order, a bar from
    its start to its end coloured by status (a job that never ran: a hollow marker at the time it was created);
    vertical lines at the ``marks`` (label -> seconds)."""
    order = _stage_order(jobs, stages or [])
    ranked = jobs.assign(_stage=jobs["stage"].map({s: i for i, s in enumerate(order)})).sort_values(
        ["_stage", "id"]) if len(jobs) else jobs
    fig, ax = plt.subplots(figsize=(10, 0.42 * max(len(ranked), 3) + 1.4))
    labels = []
    right = 1.0
    for y, row in enumerate(ranked.itertuples()):
        colour = STATUS_COLOURS.get(row.status, "#bfbfbf")
        labels.append(f"{row.stage} · {row.job}")
        if row.start is not None and not pd.isna(row.start):
            width = max(float(row.end) - float(row.start), 0.15)
            ax.barh(y, width, left=row.start, color=colour, edgecolor="black", linewidth=0.5,
                    hatch="//" if row.status == "running" else None)
            ax.text(row.start + width + 0.2, y, f"{row.status} {width:.1f} s", va="center", fontsize=7)
            right = max(right, row.start + width)
        else:
            x = float(row.queued) if row.queued is not None and not pd.isna(row.queued) else 0.0
            ax.plot([x], [y], marker="o", markersize=7, markerfacecolor="white", markeredgecolor=colour)
            ax.text(x + 0.3, y, row.status, va="center", fontsize=7, color="#555")
    for i, stage in enumerate(order):  # a band per stage
        rows = [y for y, r in enumerate(ranked.itertuples()) if r.stage == stage]
        if rows and i % 2 == 0:
            ax.axhspan(min(rows) - 0.5, max(rows) + 0.5, color="#f2f2f2", zorder=0)
    for label, t in (marks or {}).items():
        ax.axvline(t, color="grey", linestyle="--", linewidth=1)
        ax.annotate(label, (t, -0.5), rotation=90, va="bottom", ha="right", fontsize=8, color="grey")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5 if labels else 0.5, -0.5)
    ax.set_xlim(0, right * 1.18 + 1)
    ax.set_xlabel("seconds since the pipeline was created")
    ax.set_ylabel("stage · job")
    ax.set_title(title + (f" — {status}" if status else ""), fontsize=10)
    present = [s for s in STATUS_COLOURS if len(ranked) and (ranked["status"] == s).any()]
    ax.legend(handles=[Patch(facecolor=STATUS_COLOURS[s], edgecolor="black", label=s) for s in present],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="job status", title_fontsize=8)
    fig.tight_layout()
    return fig


class LivePipeline:
    """The pipeline's Gantt chart in the output of the cell that creates it, redrawn in place at every call (from
    any thread). In a notebook a person runs only: under papermill, nbval or plain Python it draws nothing until
    ``close``, which returns the final figure for the cell to show."""

    def __init__(self, title: str, stages: list[str] | None = None) -> None:
        from ..checks import interactive

        self.title, self.stages = title, stages or []
        self.handle: Any = None
        if interactive():
            from IPython.display import HTML, display

            self.handle = display(HTML(f"<b>{title}</b><br><i>waiting for its jobs…</i>"), display_id=True)

    def __call__(self, jobs: pd.DataFrame, status: str) -> None:
        if self.handle is None or jobs.empty:
            return
        fig = plot_pipeline(jobs, self.title, self.stages, status)
        self.handle.update(fig)
        plt.close(fig)

    def close(self, final: Figure) -> Figure | None:
        """Show ``final`` in place of the live chart (interactive), or leave it for the cell to show; the figure
        to keep (None when it is already on the page)."""
        if self.handle is None:
            return final
        self.handle.update(final)
        plt.close(final)
        return None
