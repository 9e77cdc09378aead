"""Drawings of the mesh chapter: the traffic split over time (the canary's progress, from ``istio_requests_total``);
Kiali's graph is drawn by ``kiali_view`` and a trace's waterfall by ``jaeger.views``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass
class SplitTimeline:
    """Samples of the share of requests per version, with marks for the moments something was changed."""

    sample: Callable[[], pd.DataFrame]  # lab.mesh.split(): version, rps, share
    started: float = field(default_factory=time.monotonic)
    rows: list[dict[str, float | str]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic() - self.started, what))

    def take(self) -> pd.DataFrame:
        """One sample now; the sample itself."""
        frame = self.sample()
        at = time.monotonic() - self.started
        for row in frame.itertuples():
            self.rows.append({"t": at, "version": str(row.version), "share": float(row.share), "rps": float(row.rps)})
        return frame

    def follow(self, seconds: float, every: float = 2.0, until: Callable[[pd.DataFrame], bool] | None = None,
               progress: Callable[[str], None] | None = print) -> pd.DataFrame:
        """Sample for ``seconds`` (or until ``until(sample)`` holds); the last sample."""
        deadline = time.monotonic() + seconds
        while True:
            frame = self.take()
            if progress is not None:
                shares = ", ".join(f"{r.version}: {r.share:.0%}" for r in frame.itertuples()) or "no traffic yet"
                progress(f"{time.monotonic() - self.started:5.1f} s  {shares}")
            if (until is not None and until(frame)) or time.monotonic() + every > deadline:
                return frame
            time.sleep(every)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["t", "version", "share", "rps"])

    def plot(self, title: str = "share of requests by version") -> Figure:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3.2))
        frame = self.frame()
        if not frame.empty:
            wide = frame.pivot_table(index="t", columns="version", values="share", aggfunc="last").fillna(0)
            ax.stackplot(wide.index, *[wide[c] for c in wide.columns], labels=list(wide.columns), alpha=0.8)
            ax.legend(loc="upper left", fontsize=8)
        for at, what in self.marks:
            ax.axvline(at, color="black", lw=0.8, ls="--")
            ax.annotate(what, (at, 1.0), rotation=90, va="top", ha="right", fontsize=7)
        ax.set(xlabel="seconds", ylabel="share", ylim=(0, 1), title=title)
        fig.tight_layout()
        plt.close(fig)
        return fig
