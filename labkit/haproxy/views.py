"""HAProxy in pictures: requests per server, latency per algorithm, server states over time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..core.live import LiveTable
from ..core.sampling import Sampler

GOING_DOWN, GOING_UP = "UP, going down", "DOWN, going up"  # HAProxy's stats page says it this way
STATE_COLOURS = {"UP": "#4caf50", GOING_DOWN: "#c0ca33", "DOWN": "#e53935", GOING_UP: "#ef9a9a",
                 "DRAIN": "#fb8c00", "MAINT": "#9e9e9e", "NOLB": "#fdd835"}
FAILED_COLOUR = "#b71c1c"


def state_of(status: str) -> str:
    """HAProxy's ``status`` column as one of :data:`STATE_COLOURS`: ``UP 1/2`` is UP but one check short of
    its full health (a failed check counting towards ``fall``, or a server just started or re-enabled),
    ``DOWN 1/2`` is DOWN with good checks counting towards ``rise``."""
    word, _, count = str(status).partition(" ")
    if count[:1].isdigit() and word in ("UP", "DOWN"):
        return GOING_DOWN if word == "UP" else GOING_UP
    return "no check" if status == "no check" else word  # "MAINT (via x/y)" -> "MAINT"


class StateSampler(Sampler):
    """Samples ``servers(backend)`` (HAProxy's own view) every ``every`` seconds in a thread until ``stop()``;
    ``on_tick`` sees each sample (one row per server: ``t``, ``server``, ``status``, ``raw``)."""

    def __init__(self, haproxy: Any, backend: str = "shop-gateway", every: float = 0.25,
                 on_tick: Callable[[pd.DataFrame], None] | None = None) -> None:
        super().__init__(every)
        self.haproxy, self.backend, self.on_tick = haproxy, backend, on_tick
        self.rows: list[dict[str, Any]] = []

    def sample(self, elapsed: float) -> None:
        try:
            servers = self.haproxy.servers(self.backend)
        except Exception:  # e.g. the Runtime API busy during a reload: the next tick tries again
            servers = pd.DataFrame(columns=["status"])
        tick = [{"t": round(elapsed, 1), "server": server, "status": state_of(row["status"]),
                 "raw": str(row["status"])} for server, row in servers.iterrows()]
        self.rows.extend(tick)
        if self.on_tick is not None and tick:
            self.on_tick(pd.DataFrame(tick))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=["t", "server", "status", "raw"])

    def first(self, server: str, status: str, after: float = 0.0) -> float | None:
        """Seconds (since the start) when ``server`` was first seen in ``status`` after ``after``."""
        df = self.frame()
        hit = df[(df["server"] == server) & (df["status"] == status) & (df["t"] >= after)]
        return float(hit["t"].iloc[0]) if len(hit) else None


def live_states(title: str) -> LiveTable:
    """A table of HAProxy's servers and their states in the current cell, refreshed at every tick: pass it as a
    ``StateSampler``'s ``on_tick``."""
    def shape(df: pd.DataFrame) -> pd.DataFrame:
        return df.rename(columns={"t": "seconds", "raw": "HAProxy says"}).set_index("server")
    return LiveTable(title, shape)


def requests_per(df: pd.DataFrame, column: str = "pod") -> pd.Series:
    """How many requests each pod (or other column) answered."""
    return df[df["ok"]].groupby(column).size().rename("requests")


def plot_per_pod(counts: pd.DataFrame | pd.Series, title: str) -> Figure:
    """Bars of requests per pod; a DataFrame gives one group per column (e.g. per algorithm)."""
    fig, ax = plt.subplots(figsize=(8, 3))
    frame = counts.to_frame() if isinstance(counts, pd.Series) else counts
    frame.plot.bar(ax=ax, rot=0, legend=not isinstance(counts, pd.Series))
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    ax.set_ylabel("requests")
    ax.set_xlabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_latency(by_algorithm: dict[str, pd.DataFrame], title: str, slow_pod: str | None = None) -> Figure:
    """Left: latency box plots per algorithm; right: the share of requests each algorithm sent to ``slow_pod``."""
    names = list(by_algorithm)
    fig, axes = plt.subplots(1, 2 if slow_pod else 1, figsize=(9, 3), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]} if slow_pod else None)
    ax = axes[0][0]
    ax.boxplot([by_algorithm[n]["latency_ms"] for n in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("latency (ms)")
    ax.set_title(title, fontsize=10)
    if slow_pod:
        share = [float((by_algorithm[n]["pod"] == slow_pod).mean()) for n in names]
        bars = axes[0][1].bar(names, share, color="#e53935")
        axes[0][1].bar_label(bars, labels=[f"{s:.0%}" for s in share], fontsize=8)
        axes[0][1].set_ylim(0, 1)
        axes[0][1].set_title("share sent to the slow pod", fontsize=10)
    fig.tight_layout()
    return fig


def _bands(ax: Any, states: pd.DataFrame, servers: list[str], end: float) -> None:
    for i, server in enumerate(servers):
        rows = states[states["server"] == server].sort_values("t")
        ts, ss = list(rows["t"]), list(rows["status"])
        for j, (t, s) in enumerate(zip(ts, ss, strict=True)):
            until = ts[j + 1] if j + 1 < len(ts) else end
            ax.broken_barh([(t, until - t)], (i + 0.6, 0.8), color=STATE_COLOURS.get(s, "#607d8b"))


def plot_timeline(states: pd.DataFrame, requests: pd.DataFrame | None = None, started: float = 0.0,
                  marks: dict[str, float] | None = None, title: str = "",
                  pod_labels: dict[str, str] | None = None, bin_seconds: float = 0.5) -> Figure:
    """Server states as coloured bands over time; with ``requests`` (a ``Traffic.result()``) a second panel
    shows the requests per second each pod answered, and the failed ones, on the same time axis."""
    servers = sorted(states["server"].unique())
    end = float(states["t"].max()) if len(states) else 1.0
    panels = 2 if requests is not None and len(requests) else 1
    fig, axes = plt.subplots(panels, 1, figsize=(9, 1.2 + 0.55 * len(servers) + 2.2 * (panels - 1)), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [0.55 * len(servers) + 0.6, 2.2][:panels]})
    ax = axes[0][0]
    _bands(ax, states, servers, end)
    ax.set_yticks(range(1, len(servers) + 1), servers)
    ax.set_ylim(0.4, len(servers) + 0.6)
    ax.set_title(title, pad=14)  # room for the marks' labels above the bands
    seen = set(states["status"])
    ax.legend(handles=[Patch(color=c, label=s) for s, c in STATE_COLOURS.items() if s in seen],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if panels == 2:
        assert requests is not None
        rq = axes[1][0]
        t = (requests["time"] - pd.Timestamp(started, unit="s")).dt.total_seconds()
        bins = (t // bin_seconds) * bin_seconds
        ok = requests["ok"]
        per = pd.crosstab(bins[ok], requests.loc[ok, "pod"].fillna("?")) / bin_seconds
        for pod in per.columns:
            rq.step(per.index, per[pod], where="post", label=(pod_labels or {}).get(pod, pod))
        failed = bins[~ok].value_counts().sort_index() / bin_seconds
        rq.bar(failed.index, failed.values, width=bin_seconds, align="edge", color=FAILED_COLOUR)
        handles, _ = rq.get_legend_handles_labels()
        handles.append(Patch(color=FAILED_COLOUR, label=f"failed ({int((~ok).sum())} requests)"))
        rq.set_ylabel("requests/s")
        rq.set_ylim(bottom=0)
        rq.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        end = max(end, float(t.max()))
    for row in axes:
        for at in (marks or {}).values():
            row[0].axvline(at, color="black", linestyle="--", linewidth=1)
    for label, at in (marks or {}).items():
        ax.annotate(label, (at, len(servers) + 0.6), fontsize=8, ha="left", va="bottom", annotation_clip=False)
    axes[-1][0].set_xlim(0, end)
    axes[-1][0].set_xlabel("seconds")
    fig.tight_layout()
    return fig
