"""Kibana-style views drawn with matplotlib from the Elasticsearch API of either backend: Discover (query bar,
time range, hits histogram, hits table), the log count by level over time as a stacked plot, and saved searches
as JSON (Kibana's ``search`` saved-object attributes: title, columns, sort and the query with its language)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .lab import LoggingView, TimeLike

LEVEL_COLORS = {"error": "#bd271e", "warn": "#d6bf57", "warning": "#d6bf57", "info": "#6092c0",
                "debug": "#a0a0a0"}


@dataclass
class SavedSearch:
    """A Discover search as Kibana saves it."""

    title: str
    query: str = ""
    language: str = "kql"
    columns: list[str] = field(default_factory=list)
    sort: list[list[str]] = field(default_factory=lambda: [["@timestamp", "desc"]])

    def to_json(self) -> str:
        attributes = asdict(self)
        query = {"query": attributes.pop("query"), "language": attributes.pop("language")}
        attributes["kibanaSavedObjectMeta"] = {"searchSourceJSON": json.dumps({"query": query, "filter": []})}
        return json.dumps({"type": "search", "attributes": attributes}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SavedSearch:
        attributes = json.loads(text)["attributes"]
        source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        return cls(attributes["title"], source["query"]["query"], source["query"]["language"],
                   list(attributes.get("columns", [])), [list(s) for s in attributes.get("sort", [])])

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(self.to_json())
        return target

    @classmethod
    def load(cls, path: str | Path) -> SavedSearch:
        return cls.from_json(Path(path).read_text())


def discover(view: LoggingView, query: str, language: str, start: TimeLike, end: TimeLike,
             fields: list[str] | None, size: int) -> pd.DataFrame:
    """Draw the hits histogram with the query and its total as title; return the hits table."""
    import matplotlib.pyplot as plt

    counts = view.count_by_level(query, language, start, end)
    total = int(counts.to_numpy().sum()) if not counts.empty else 0
    fig, ax = plt.subplots(figsize=(10, 2.5))
    if not counts.empty:
        ax.bar(counts.index, counts.sum(axis=1), width=bar_width(counts), align="edge", color="#54b399")
    ax.set_title(f"{total} hits — {language.upper()}: {query or '*'}")
    ax.set_ylabel("Count")
    fig.autofmt_xdate()
    plt.show()
    return view.search(query, language, start, end, fields, size)


def plot_levels(counts: pd.DataFrame, title: str = "Log count by level",
                marks: dict[str, float] | None = None) -> Any:
    """A stacked bar plot of ``count_by_level``'s table (levels coloured as Kibana's palette); ``marks``: moments
    to draw as labelled vertical lines (label → Unix time), such as when a replica was made to fail. A figure of
    its own (not pyplot's), so a cell shows it once, where it is displayed."""
    import pandas as pd
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2))
    ax = fig.subplots()
    bottom = None
    for level in counts.columns:
        values = counts[level]
        ax.bar(counts.index, values, width=bar_width(counts), bottom=bottom, align="edge", label=str(level),
               color=LEVEL_COLORS.get(str(level).lower()))
        bottom = values if bottom is None else bottom + values
    for label, at in (marks or {}).items():
        moment = pd.Timestamp(at, unit="s", tz="UTC")
        ax.axvline(moment, color="#333333", linestyle="--", linewidth=1)
        ax.annotate(label, (moment, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", va="top", fontsize=8, rotation=90,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "linewidth": 0})
    ax.set_title(title)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("log lines per bucket")
    if len(counts.columns):
        ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return fig


def watch_levels(view: LoggingView, query: str, minutes: float, seconds: float, every: float, live: bool,
                 marks: dict[str, float] | None) -> Any:
    """The log count by level of ``query`` over the last ``minutes``, redrawn in place every ``every`` seconds for
    ``seconds`` (drawn once with ``live`` false)."""
    from ..core.live import refresh_in_place

    def render() -> Any:
        counts = view.count_by_level(query, start=f"now-{int(minutes * 60)}s")
        return plot_levels(counts, f"Log count by level — {query or '*'} (last {minutes:g} min)", marks)

    return refresh_in_place(render, seconds, every, live)


def bar_width(counts: pd.DataFrame) -> float:
    """A bar's width in days (matplotlib's date unit): the bucket interval, less a gap."""
    if len(counts.index) < 2:
        return 1 / 86400
    step = (counts.index[1] - counts.index[0]).total_seconds()
    return 0.9 * step / 86400
