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

from ..core.errors import LabError
from ..core.live import LiveTable
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


def live_pods(title: str) -> LiveTable:
    """A table of the sampled pods (node, phase, ready, reason) in the current cell, refreshed at every tick: pass it
    as a ``Sampler``'s ``on_tick``."""
    return LiveTable(title, lambda df: df[["pod", "node", "phase", "ready", "terminating", "reason"]].set_index("pod"))


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


def hpa_history(lab: Any, namespace: str, name: str, until: Callable[[dict[str, Any]], bool],
                timeout: float, every: float = 2.0) -> pd.DataFrame:
    """Poll HorizontalPodAutoscaler ``name`` until ``until(row)`` is true or ``timeout`` seconds pass: one row per
    poll with ``t`` (seconds), ``cpu`` (the pods' average CPU, % of request), ``target`` (%), ``current`` and
    ``desired`` replicas, as the HPA's status says."""
    import time

    import kubernetes

    objects = kubernetes.client.CustomObjectsApi(lab.kubernetes.api_client())
    started, rows = time.monotonic(), []
    while True:
        try:
            hpa = objects.get_namespaced_custom_object("autoscaling", "v2", namespace, "horizontalpodautoscalers", name)
        except kubernetes.client.ApiException as err:
            if err.status != 404:
                raise
            raise LabError(f"there is no HorizontalPodAutoscaler {name} in {namespace}: create it first "
                           f"(`kubectl apply -f -` with its YAML; `kubectl get hpa -n {namespace}`)") from None
        status, spec = hpa.get("status") or {}, hpa["spec"]
        cpu = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                    if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"), None)
        target = next((m["resource"]["target"].get("averageUtilization") for m in spec.get("metrics") or []
                       if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"), None)
        row = {"t": round(time.monotonic() - started, 1), "cpu": cpu, "target": target,
               "current": status.get("currentReplicas", 0), "desired": status.get("desiredReplicas", 0)}
        rows.append(row)
        if until(row) or time.monotonic() - started > timeout:
            return pd.DataFrame(rows)
        time.sleep(every)


def plot_hpa(history: pd.DataFrame, title: str, marks: dict[str, float] | None = None) -> Figure:
    """The pods' CPU against the HPA's target (top) and the replicas it set (bottom), over time, with vertical
    lines at the ``marks`` (label -> seconds)."""
    fig, (cpu, replicas) = plt.subplots(2, 1, figsize=(9, 4.4), sharex=True)
    for label, t in (marks or {}).items():
        for ax in (cpu, replicas):
            ax.axvline(t, color="grey", linestyle="--", linewidth=1)
        replicas.annotate(label, (t, 0), xytext=(3, 3), textcoords="offset points", fontsize=8, color="grey")
    cpu.plot(history["t"], history["cpu"], marker="o", label="average CPU (% of request)")
    if history["target"].notna().any():
        cpu.axhline(history["target"].dropna().iloc[0], color="red", linestyle="--", label="target")
    cpu.set_ylabel("CPU (% of request)")
    cpu.legend(loc="upper left", fontsize=8)
    cpu.set_title(title)
    replicas.step(history["t"], history["current"], where="post", label="current replicas", linewidth=2)
    replicas.step(history["t"], history["desired"], where="post", label="desired replicas", linestyle="--")
    replicas.set_xlabel("seconds")
    replicas.set_ylabel("replicas")
    replicas.yaxis.get_major_locator().set_params(integer=True)
    replicas.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
