"""HAProxy in pictures: requests per server, latency per algorithm, server states over time."""

from __future__ import annotations

import threading
import time
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

STATE_COLOURS = {"UP": "#4caf50", "DOWN": "#e53935", "DRAIN": "#fb8c00", "MAINT": "#9e9e9e",
                 "NOLB": "#fdd835"}


class StateSampler:
    """Samples ``servers(backend)`` (HAProxy's own view) every ``every`` seconds in a thread until ``stop()``."""

    def __init__(self, haproxy: Any, backend: str = "shop-gateway", every: float = 0.25) -> None:
        self.haproxy, self.backend, self.every = haproxy, backend, every
        self.rows: list[dict[str, Any]] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StateSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for server, row in self.haproxy.servers(self.backend).iterrows():
                self.rows.append({"t": now - self.started, "server": server,
                                  "status": str(row["status"]).split(" ")[0]})
            self._stop.wait(self.every)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["t", "server", "status"])

    def first(self, server: str, status: str, after: float = 0.0) -> float | None:
        """Seconds (since the start) when ``server`` was first seen in ``status`` after ``after``."""
        df = self.frame()
        hit = df[(df["server"] == server) & (df["status"] == status) & (df["t"] >= after)]
        return float(hit["t"].iloc[0]) if len(hit) else None


def requests_per(df: pd.DataFrame, column: str = "pod") -> pd.Series:
    """How many requests each pod (or other column) answered."""
    return df[df["ok"]].groupby(column).size().rename("requests")


def plot_per_pod(counts: pd.DataFrame | pd.Series, title: str) -> Figure:
    """Bars of requests per pod; a DataFrame gives one group per column (e.g. per algorithm)."""
    fig, ax = plt.subplots(figsize=(8, 3))
    (counts.to_frame() if isinstance(counts, pd.Series) else counts).plot.bar(ax=ax, rot=0)
    ax.set_ylabel("requests")
    ax.set_xlabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_latency(by_algorithm: dict[str, pd.DataFrame], title: str) -> Figure:
    """Latency distributions (box plots) per algorithm, from ``Traffic.result()`` frames."""
    fig, ax = plt.subplots(figsize=(8, 3))
    names = list(by_algorithm)
    ax.boxplot([by_algorithm[n]["latency_ms"] for n in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_timeline(states: pd.DataFrame, requests: pd.DataFrame | None = None, started: float = 0.0,
                  marks: dict[str, float] | None = None, title: str = "") -> Figure:
    """Server states as coloured bands over time; failed requests as red ticks below them."""
    servers = sorted(states["server"].unique())
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.6 * (len(servers) + 1)))
    end = float(states["t"].max()) if len(states) else 1.0
    for i, server in enumerate(servers):
        rows = states[states["server"] == server].sort_values("t")
        ts, ss = list(rows["t"]), list(rows["status"])
        for j, (t, s) in enumerate(zip(ts, ss, strict=True)):
            until = ts[j + 1] if j + 1 < len(ts) else end
            ax.broken_barh([(t, until - t)], (i + 0.6, 0.8), color=STATE_COLOURS.get(s, "#607d8b"))
    positions, labels = list(range(1, len(servers) + 1)), list(servers)
    if requests is not None and len(requests):
        t = (requests["time"] - pd.Timestamp(started, unit="s")).dt.total_seconds()
        bad = t[~requests["ok"]]
        ax.plot(bad, [0.3] * len(bad), "|", color="#b71c1c", markersize=14)
        positions, labels = [0.3, *positions], [f"failed requests ({len(bad)})", *labels]
    ax.set_yticks(positions, labels)
    for label, at in (marks or {}).items():
        ax.axvline(at, color="black", linestyle="--", linewidth=1)
        ax.annotate(label, (at, len(servers) + 0.5), fontsize=8, ha="left", va="bottom")
    ax.set_ylim(0, len(servers) + 1.2)
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds")
    ax.set_title(title)
    ax.legend(handles=[Patch(color=c, label=s) for s, c in STATE_COLOURS.items() if s in set(states["status"])],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
