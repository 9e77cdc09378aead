"""Chapter 04 in pictures and tables: time per package of a cold and a warm ``pip install`` through the proxy,
coloured by where Nexus took each file from (a miss went to the upstream, a hit came from its store), and the
components REST API as a table."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

CACHE_COLOURS = {"miss": "#dd6b20", "hit": "#2f855a"}  # fetched from the upstream / served from Nexus' store
INSTALL_COLUMNS = ["run", "package", "version", "seconds", "files", "bytes", "cache"]
COMPONENT_COLUMNS = ["repository", "name", "version", "files", "bytes", "stored", "last_downloaded"]


def component_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per component of ``/v1/components`` items: its repository, name and version, how many files
    (assets) and bytes Nexus stores for it, when the first was stored (``blobCreated``) and last downloaded."""
    rows = []
    for item in items:
        assets = item.get("assets") or []
        created = [a["blobCreated"] for a in assets if a.get("blobCreated")]
        downloaded = [a["lastDownloaded"] for a in assets if a.get("lastDownloaded")]
        rows.append({"repository": item["repository"], "name": item["name"], "version": item.get("version"),
                     "files": len(assets), "bytes": sum(int(a.get("fileSize") or 0) for a in assets),
                     "stored": min(created) if created else None,
                     "last_downloaded": max(downloaded) if downloaded else None})
    df = pd.DataFrame(rows, columns=COMPONENT_COLUMNS)
    for column in ("stored", "last_downloaded"):
        df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
    return df.sort_values(["repository", "name", "version"], ignore_index=True)


def plot_install_times(runs: pd.DataFrame, title: str = "pip install through Nexus: time per package") -> Figure:
    """One row per package, a bar per run (cold above warm) as long as pip spent fetching it (its index page and
    files), coloured by whether Nexus had it already (hit) or fetched it from the upstream (miss); each run's
    total in the legend."""
    runs = runs.copy()
    order = list(dict.fromkeys(runs.sort_values("seconds", ascending=False)["package"]))
    labels = list(dict.fromkeys(runs["run"]))
    height = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(10, 0.38 * max(len(order), 4) + 1.6))
    hatches = ["", "//", "..", "xx"]
    for i, label in enumerate(labels):
        part = runs[runs["run"] == label].set_index("package").reindex(order)
        ys = [y + i * height for y in range(len(order))]
        colours = [CACHE_COLOURS.get(str(c), "#a0aec0") for c in part["cache"]]
        ax.barh(ys, part["seconds"].fillna(0), height=height * 0.95, color=colours, edgecolor="black",
                linewidth=0.4, hatch=hatches[i % len(hatches)],
                label=f"{label}: {runs[runs['run'] == label]['seconds'].sum():.2f} s fetching")
    ax.set_yticks([y + height * (len(labels) - 1) / 2 for y in range(len(order))], order, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds pip spent on the package (index page + files)")
    ax.set_ylabel("package (pip's order of need: slowest first)")
    ax.set_title(title, fontsize=10)
    runs_legend = ax.legend(loc="lower right", fontsize=8, title="run (hatching)", title_fontsize=8)
    ax.add_artist(runs_legend)
    where = {"miss": "miss: from the upstream", "hit": "hit: from the cache"}
    ax.legend(handles=[Patch(facecolor=c, edgecolor="black", label=where[k]) for k, c in CACHE_COLOURS.items()],
              loc="upper right", fontsize=8, title="Nexus", title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_totals(runs: pd.DataFrame, title: str = "cold vs warm: the whole install") -> Figure:
    """Each run's time spent fetching, split into misses and hits (stacked), in seconds."""
    totals = runs.pivot_table(index="run", columns="cache", values="seconds", aggfunc="sum", sort=False).fillna(0)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    left = pd.Series(0.0, index=totals.index)
    for cache in ("miss", "hit"):
        if cache in totals:
            ax.barh(totals.index, totals[cache], left=left, color=CACHE_COLOURS[cache], edgecolor="black",
                    linewidth=0.4, label=cache)
            left += totals[cache]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.2f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds fetching packages")
    ax.set_ylabel("run")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, title="Nexus", title_fontsize=8)
    fig.tight_layout()
    return fig
