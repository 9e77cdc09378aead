"""Grafana's panels drawn with matplotlib: each panel at its ``gridPos`` on Grafana's 24-column grid, with its
unit, thresholds, legend and reduce options; a dashboard refreshed in place while traffic runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.live import refresh_in_place as refresh_in_place  # shared by the lessons' live views
from .grafana import Raw

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .grafana import PanelResult, TimeRange

ROW_INCHES, WIDTH_INCHES = 0.36, 16.0
GRAFANA_COLOURS = {"green": "#73bf69", "red": "#f2495c", "yellow": "#fade2a", "orange": "#ff9830",
                   "blue": "#5794f2", "purple": "#b877d9", "text": "#444444", "transparent": "none"}
UNITS: dict[str, tuple[str, float]] = {  # Grafana unit → (suffix, factor)
    "s": (" s", 1), "ms": (" ms", 1), "percent": ("%", 1), "percentunit": ("%", 100), "reqps": (" req/s", 1),
    "ops": (" ops/s", 1), "bytes": (" B", 1), "decbytes": (" B", 1), "short": ("", 1), "none": ("", 1),
    "cps": (" c/s", 1), "rps": (" rd/s", 1)}


def colour(name: str) -> str:
    """A Grafana colour name (``green``, ``dark-red``, ``#ff0000``) as matplotlib takes it."""
    base = name
    for prefix in ("super-light-", "light-", "semi-dark-", "dark-"):
        base = base.removeprefix(prefix)
    return GRAFANA_COLOURS.get(base, name if name.startswith("#") else "#73bf69")


def format_value(value: float, unit: str = "", decimals: int | None = None) -> str:
    """A value with its Grafana unit: ``0.25`` s → ``250 ms``, ``0.031`` percentunit → ``3.10%``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "No data"
    if unit == "s" and abs(value) < 1 and value != 0:
        value, unit = value * 1000, "ms"
    if unit in ("bytes", "decbytes"):
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:.{1 if decimals is None else decimals}f} {suffix}"
            value /= 1024
    suffix, factor = UNITS.get(unit, (f" {unit}" if unit else "", 1))
    value *= factor
    if decimals is None:
        decimals = 0 if value == int(value) and abs(value) >= 1 else (1 if abs(value) >= 10 else 2)
    return f"{value:.{decimals}f}{suffix}"


def threshold_colour(value: float, field_config: dict[str, Any]) -> str:
    """The colour of ``value`` by the panel's absolute thresholds (the highest step it reaches)."""
    steps = ((field_config.get("thresholds") or {}).get("steps")) or [{"color": "green", "value": None}]
    chosen = steps[0].get("color", "green")
    for step in steps[1:]:
        if step.get("value") is not None and not math.isnan(value) and value >= float(step["value"]):
            chosen = step.get("color", chosen)
    return colour(chosen)


def reduce(values: pd.Series, calc: str) -> float:
    """Grafana's reducer (``reduceOptions.calcs[0]``) over a series' points."""
    clean = values.dropna()
    if clean.empty:
        return math.nan
    reducers: dict[str, Callable[[], float]] = {
        "lastNotNull": lambda: float(clean.iloc[-1]), "last": lambda: float(values.iloc[-1]),
        "firstNotNull": lambda: float(clean.iloc[0]), "first": lambda: float(values.iloc[0]),
        "mean": lambda: float(clean.mean()), "max": lambda: float(clean.max()), "min": lambda: float(clean.min()),
        "sum": lambda: float(clean.sum()), "count": lambda: float(clean.count()),
        "range": lambda: float(clean.max() - clean.min()), "delta": lambda: float(clean.diff().clip(lower=0).sum()),
        "diff": lambda: float(clean.iloc[-1] - clean.iloc[0])}
    if calc not in reducers:
        raise ValueError(f"reducer {calc!r} is not supported by the labkit renderer ({', '.join(reducers)})")
    return reducers[calc]()


def reduced(result: PanelResult) -> list[tuple[str, float]]:
    """A stat or gauge panel's values: each series reduced with the panel's calc (default ``lastNotNull``)."""
    calcs = ((result.panel.get("options") or {}).get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    frame = result.frame
    if frame.empty:
        return []
    return [(str(name), reduce(group.sort_values("time")["value"], calcs[0]))
            for name, group in frame.groupby("legend", sort=True)]


def defaults(panel: dict[str, Any]) -> dict[str, Any]:
    return dict((panel.get("fieldConfig") or {}).get("defaults") or {})


def draw_timeseries(ax: Axes, result: PanelResult, span: TimeRange, marks: dict[str, float]) -> None:
    import matplotlib.dates as mdates
    import pandas as pd

    unit = defaults(result.panel).get("unit", "")
    frame = result.frame
    for name, group in (frame.groupby("legend", sort=True) if not frame.empty else []):
        group = group.sort_values("time")
        ax.plot(group["time"], group["value"] * UNITS.get(unit, ("", 1))[1], label=str(name), lw=1.4)
    for label, at in marks.items():
        when = pd.to_datetime(at, unit="s")
        ax.axvline(when, color="#f2495c", ls="--", lw=1)
        ax.annotate(label, (when, 1), xycoords=("data", "axes fraction"), fontsize=7, color="#c4162a",
                    rotation=90, va="top", ha="right")
    ax.set_xlim(pd.to_datetime(span.start, unit="s"), pd.to_datetime(span.end, unit="s"))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_xlabel("time (UTC)", fontsize=7)
    ax.set_ylabel(UNITS.get(unit, (unit, 1))[0].strip() or unit or "value", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if 0 < frame["legend"].nunique() <= 12 and (result.panel.get("options") or {}).get(
            "legend", {}).get("showLegend", True):
        ax.legend(fontsize=6, loc="upper left")


def draw_stat(ax: Axes, result: PanelResult) -> None:
    config = defaults(result.panel)
    values = reduced(result)
    ax.axis("off")
    if not values:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", fontsize=14, color="#888888")
        return
    width = 1 / len(values)
    for i, (name, value) in enumerate(values):
        ax.text(width * (i + 0.5), 0.5, format_value(value, config.get("unit", ""), config.get("decimals")),
                ha="center", va="center", fontsize=20 if len(values) < 4 else 11, fontweight="bold",
                color=threshold_colour(value, config))
        if len(values) > 1:
            ax.text(width * (i + 0.5), 0.12, name, ha="center", va="center", fontsize=7)


def draw_gauge(ax: Axes, result: PanelResult) -> None:
    from matplotlib.patches import Wedge

    config = defaults(result.panel)
    low, high = float(config.get("min", 0)), float(config.get("max", 100))
    values = reduced(result)[:4] or [("", math.nan)]
    ax.axis("off")
    ax.set_xlim(0, 2.2 * len(values))
    ax.set_ylim(-0.3, 1.1)
    ax.set_aspect("equal")
    for i, (name, value) in enumerate(values):
        cx = 1.1 + 2.2 * i
        ax.add_patch(Wedge((cx, 0), 1, 0, 180, width=0.25, fc="#e0e0e0"))
        if not math.isnan(value):
            share = min(max((value - low) / (high - low or 1), 0), 1)
            ax.add_patch(Wedge((cx, 0), 1, 180 - 180 * share, 180, width=0.25, fc=threshold_colour(value, config)))
        ax.text(cx, 0.15, format_value(value, config.get("unit", ""), config.get("decimals")), ha="center",
                fontsize=12, fontweight="bold")
        if name and len(values) > 1:
            ax.text(cx, -0.2, name, ha="center", fontsize=7)


def table_frame(result: PanelResult) -> pd.DataFrame:
    """A table panel's rows: the series' labels and ``Value`` (the last point of a range query)."""
    frame = result.frame
    if frame.empty:
        return frame
    last = frame.sort_values("time").groupby("series", sort=True).tail(1)
    labels = [c for c in last.columns if c not in ("series", "time", "value", "ref", "legend", "__name__")]
    return last[[*labels, "value"]].rename(columns={"value": "Value"}).reset_index(drop=True)


def draw_table(ax: Axes, result: PanelResult) -> None:
    ax.axis("off")
    table = table_frame(result)
    if table.empty:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", fontsize=12, color="#888888")
        return
    unit = defaults(result.panel).get("unit", "")
    cells = [[format_value(v, unit) if c == "Value" else ("" if not isinstance(v, str) else v)
              for c, v in row.items()] for row in table.head(12).to_dict("records")]
    drawn = ax.table(cellText=cells, colLabels=list(table.columns), loc="upper center", cellLoc="left")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(7)


def heatmap_buckets(result: PanelResult) -> pd.DataFrame:
    """A heatmap's cells: time by bucket. Prometheus' cumulative ``le`` buckets become per-bucket counts (as
    Grafana does for the ``heatmap`` format), ordered by their upper bound."""
    import pandas as pd

    frame = result.frame
    if frame.empty:
        return pd.DataFrame()
    wide = frame.pivot_table(index="time", columns="legend", values="value", aggfunc="sum")
    def bound(name: str) -> float:
        try:
            return float(name)
        except ValueError:
            return math.inf
    wide = wide[sorted(wide.columns, key=bound)]
    cumulative = all(t.get("format") == "heatmap" for t in result.panel.get("targets") or [])
    if cumulative:
        wide = wide.diff(axis=1).fillna(wide).clip(lower=0)
    return wide


def draw_heatmap(ax: Axes, result: PanelResult, span: TimeRange) -> None:
    import matplotlib.dates as mdates
    import numpy as np

    wide = heatmap_buckets(result)
    if wide.empty:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes, color="#888888")
        return
    times = mdates.date2num(wide.index.to_pydatetime())
    step = (times[1] - times[0]) if len(times) > 1 else 1 / 1440
    edges = np.append(times, times[-1] + step)
    mesh = ax.pcolormesh(edges, np.arange(len(wide.columns) + 1), wide.to_numpy().T, cmap="Oranges",
                         shading="flat")
    ax.set_yticks(np.arange(len(wide.columns)) + 0.5, [str(c) for c in wide.columns], fontsize=6)
    ax.xaxis_date()
    ax.set_xlim(mdates.date2num(datetime.fromtimestamp(span.start, UTC)),
                mdates.date2num(datetime.fromtimestamp(span.end, UTC)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_xlabel("time (UTC)", fontsize=7)
    ax.set_ylabel("bucket (le)", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.figure.colorbar(mesh, ax=ax, pad=0.01).ax.tick_params(labelsize=6)


def draw_note(ax: Axes, text: str, colour_: str = "#444444") -> None:
    ax.axis("off")
    ax.text(0.02, 0.95, text, ha="left", va="top", fontsize=8, color=colour_, wrap=True, transform=ax.transAxes)


def draw_panel(ax: Axes, result: PanelResult, span: TimeRange, marks: dict[str, float]) -> None:
    """One panel into its axes, titled as on the dashboard; a query error is shown on the panel."""
    kind = result.type
    ax.set_title(result.title, fontsize=9, loc="left", fontweight="bold")
    if result.error:
        draw_note(ax, f"query error: {result.error}", "#c4162a")
    elif kind in ("timeseries", "graph"):
        draw_timeseries(ax, result, span, marks)
    elif kind == "stat":
        draw_stat(ax, result)
    elif kind == "gauge":
        draw_gauge(ax, result)
    elif kind == "table":
        draw_table(ax, result)
    elif kind == "heatmap":
        draw_heatmap(ax, result, span)
    elif kind == "text":
        draw_note(ax, str((result.panel.get("options") or {}).get("content", "")))
    else:
        draw_note(ax, f"panel type {kind!r} is not supported by the labkit renderer", "#c4162a")
    if result.panel.get("transformations"):
        ax.text(1, -0.02, "transformations are not supported by the labkit renderer", fontsize=6, ha="right",
                va="top", color="#c4162a", transform=ax.transAxes)


def draw_dashboard(model: dict[str, Any], results: list[PanelResult], values: dict[str, list[str]],
                   span: TimeRange, marks: dict[str, float]) -> Figure:
    """The dashboard as one figure: each panel at its ``gridPos`` (24 columns, rows of 30 px)."""
    from matplotlib.figure import Figure

    bottom = max([(r.panel.get("gridPos") or {}).get("y", 0) + (r.panel.get("gridPos") or {}).get("h", 8)
                  for r in results] or [8])
    header = 1.5  # grid rows for the title and the variables
    rows = bottom + header
    fig = Figure(figsize=(WIDTH_INCHES, rows * ROW_INCHES))
    start = datetime.fromtimestamp(span.start, UTC).strftime("%H:%M:%S")
    end = datetime.fromtimestamp(span.end, UTC).strftime("%H:%M:%S UTC")
    chosen = "   ".join(f"{k}={'All' if any(isinstance(x, Raw) for x in v) else ','.join(v)}"
                       for k, v in values.items())
    fig.text(0.01, 1 - 0.6 / rows, f"{model.get('title', 'dashboard')}   {start} to {end}", fontsize=13,
             fontweight="bold", va="center")
    if chosen:
        fig.text(0.01, 1 - 1.2 / rows, chosen, fontsize=8, va="center", color="#555555")
    for result in results:
        grid = result.panel.get("gridPos") or {"x": 0, "y": 0, "w": 24, "h": 8}
        x, y, w, h = (grid.get(k, d) for k, d in (("x", 0), ("y", 0), ("w", 12), ("h", 8)))
        if result.type == "row":
            fig.text(x / 24 + 0.005, 1 - (header + y + 0.5) / rows, result.title, fontsize=11,
                     fontweight="bold", va="center")
            continue
        pad_x, pad_top, pad_bottom = 0.035, 1.0, 1.0 if result.type in ("timeseries", "graph", "heatmap") else 0.3
        ax = fig.add_axes((x / 24 + pad_x, 1 - (header + y + h - pad_bottom) / rows, w / 24 - pad_x * 1.4,
                           (h - pad_top - pad_bottom) / rows))
        draw_panel(ax, result, span, marks)
    return fig
