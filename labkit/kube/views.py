"""Pods over time, for the Kubernetes chapter: where they run, which ReplicaSet serves, shown live or as plots.

A ``Sampler`` polls the Kubernetes API in a background thread (one LIST per tick) while a lesson
does something (a rolling update, a node stop); ``.frame()`` gives one row per pod per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..core.sampling import Sampler as BaseSampler
from ..kubeclient import is_ready


def pod_rows(core: Any, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """One row per pod: name, node, phase, ready, the ReplicaSet that owns it, image, restarts."""
    rows = []
    for p in core.list_namespaced_pod(namespace, label_selector=selector).items:
        owner = next((o.name for o in p.metadata.owner_references or [] if o.kind == "ReplicaSet"), "")
        statuses = p.status.container_statuses or []
        rows.append({
            "pod": p.metadata.name, "node": p.spec.node_name or "(pending)", "phase": p.status.phase,
            "ready": is_ready(p),
            "terminating": p.metadata.deletion_timestamp is not None, "replicaset": owner,
            "image": p.spec.containers[0].image, "restarts": sum(s.restart_count for s in statuses),
            "reason": next((s.state.waiting.reason for s in statuses if s.state and s.state.waiting), ""),
        })
    return rows


class Sampler(BaseSampler):
    """Samples the pods of ``namespace`` every ``every`` seconds until ``stop()``; ``on_tick`` sees each sample."""

    def __init__(self, core: Any, namespace: str, selector: str = "", every: float = 0.5,
                 on_tick: Callable[[pd.DataFrame], None] | None = None) -> None:
        super().__init__(every)
        self.core, self.namespace, self.selector = core, namespace, selector
        self.on_tick = on_tick
        self.samples: list[pd.DataFrame] = []

    def sample(self, elapsed: float) -> None:
        df = pd.DataFrame(pod_rows(self.core, self.namespace, self.selector))
        df["t"] = round(elapsed, 2)
        self.samples.append(df)
        if self.on_tick is not None:
            self.on_tick(df)

    def frame(self) -> pd.DataFrame:
        """Every sample: one row per pod per tick, with ``t`` in seconds since the start."""
        return pd.concat(self.samples, ignore_index=True) if self.samples else pd.DataFrame()


def per_tick(df: pd.DataFrame, column: str, ready_only: bool = True) -> pd.DataFrame:
    """Count pods per ``column`` value (node, replicaset) at each tick: a wide table indexed by ``t``."""
    if df.empty:
        return df
    rows = df[df["ready"] & ~df["terminating"]] if ready_only else df[~df["terminating"]]
    wide = rows.groupby(["t", column]).size().unstack(fill_value=0)
    return wide.reindex(sorted(df["t"].unique()), fill_value=0)


def plot_counts(wide: pd.DataFrame, title: str, ylabel: str = "ready pods",
                marks: dict[str, float] | None = None) -> Figure:
    """A step plot of ``per_tick`` counts, with vertical lines at the ``marks`` (label -> seconds)."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for column in wide.columns:
        ax.step(wide.index, wide[column], where="post", label=str(column), linewidth=2)
    for label, t in (marks or {}).items():
        ax.axvline(t, color="grey", linestyle="--", linewidth=1)
        ax.annotate(label, (t, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8, color="grey")
    ax.set_xlabel("seconds")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
