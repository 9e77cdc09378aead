"""A trace's waterfall, drawn as the Jaeger UI's trace view draws it, from a trace in Jaeger's UI model (one item
of ``/api/traces``' ``data``): one bar per span on a shared time axis from the trace's start, rows in call order
(each child under its parent, by start time) with the operation indented by its depth, a colour per service and
erroneous spans (``error: true``) in red."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ERROR_COLOR = "#d62728"
SERVICE_COLORS = ("#17becf", "#9467bd", "#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                  "#1f77b4")


@dataclass(frozen=True)
class Row:
    """One span as the waterfall shows it: offset and duration in ms from the trace's start."""

    span_id: str
    service: str
    operation: str
    depth: int
    start_ms: float
    duration_ms: float
    error: bool


def _parent(span: dict[str, Any]) -> str:
    for ref in span.get("references", []):
        if ref.get("refType") == "CHILD_OF":
            return ref.get("spanID", "")
    refs = span.get("references", [])
    return refs[0].get("spanID", "") if refs else ""


def _is_error(span: dict[str, Any]) -> bool:
    return any(t.get("key") == "error" and t.get("value") in (True, "true") for t in span.get("tags", []))


def waterfall_rows(trace: dict[str, Any]) -> list[Row]:
    """The spans of a UI-model trace in waterfall order (depth-first, siblings by start time); a span whose
    parent is missing from the trace is shown as a root, as the UI does."""
    spans = {s["spanID"]: s for s in trace.get("spans", [])}
    if not spans:
        return []
    origin = min(s["startTime"] for s in spans.values())
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for span in spans.values():
        parent = _parent(span)
        (children.setdefault(parent, []) if parent in spans else roots).append(span)
    rows: list[Row] = []
    stack = [(s, 0) for s in sorted(roots, key=lambda s: s["startTime"], reverse=True)]
    while stack:
        span, depth = stack.pop()
        service = trace.get("processes", {}).get(span.get("processID", ""), {}).get("serviceName", "?")
        rows.append(Row(span["spanID"], service, span["operationName"], depth,
                        (span["startTime"] - origin) / 1000, span["duration"] / 1000, _is_error(span)))
        for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"], reverse=True):
            stack.append((child, depth + 1))
    return rows


def plot_waterfall(trace: dict[str, Any], ax: Axes | None = None, title: str | None = None) -> Figure:
    """Draw the waterfall of ``trace``; returns the Figure (a new one unless ``ax`` is given)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = waterfall_rows(trace)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(rows), 2) + 1.2))
    else:
        fig = ax.figure
    services = sorted({r.service for r in rows})
    colors = {s: SERVICE_COLORS[i % len(SERVICE_COLORS)] for i, s in enumerate(services)}
    for y, r in enumerate(rows):
        ax.barh(y, max(r.duration_ms, 0.01), left=r.start_ms, height=0.6,
                color=ERROR_COLOR if r.error else colors[r.service], edgecolor="black", linewidth=0.4)
        ax.annotate(f" {r.duration_ms:.2f} ms", (r.start_ms + r.duration_ms, y), va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [("    " * r.depth) + f"{r.service}: {r.operation}" for r in rows],
                  fontsize=8, ha="left")
    ax.tick_params(axis="y", pad=max((len(t.get_text()) for t in ax.get_yticklabels()), default=0) * 4.6)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the trace started")
    total = max((r.start_ms + r.duration_ms for r in rows), default=0.0)
    ax.set_xlim(0, total * 1.15 or 1)
    ax.set_title(title or f"trace {trace.get('traceID', '')} — {len(rows)} spans, {total:.1f} ms")
    handles = [Patch(color=colors[s], label=s) for s in services]
    if any(r.error for r in rows):
        handles.append(Patch(color=ERROR_COLOR, label="error"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
