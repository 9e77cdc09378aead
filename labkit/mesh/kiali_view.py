"""Kiali's graph drawn with matplotlib: nodes left to right in the order traffic flows (Kiali's shapes: app
circle, service triangle, workload square, unknown diamond), each edge labelled with its request rate, error ratio
(and response time when the graph has it) and coloured as Kiali colours edges (green, orange with errors, red at
20 % or more), service nodes with their VirtualService badges (traffic shifting, fault injection, timeout,
routing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

SHAPES = {"app": "o", "service": "^", "workload": "s", "unknown": "D"}
BADGES = (("hasTrafficShifting", "split"), ("hasFaultInjection", "fault"), ("hasRequestTimeout", "timeout"),
          ("hasMirroring", "mirror"), ("hasRequestRouting", "routing"))
OK, DEGRADED, FAILURE = "#3f9c35", "#ec7a08", "#cc0000"
FAILURE_PERCENT = 20.0


def node_label(data: Mapping[str, Any]) -> str:
    """What Kiali writes under a node: the app (and version), the workload or the service."""
    if data["nodeType"] == "service":
        name = data.get("service", "")
    elif data["nodeType"] == "app":
        name = f"{data.get('app', '')} {data.get('version', '')}".strip()
    elif data["nodeType"] == "unknown":
        name = "unknown"
    else:
        name = data.get("workload", "")
    badges = [text for key, text in BADGES if data.get(key)]
    return name + (f"\n[{', '.join(badges)}]" if badges else "")


def edge_label(data: Mapping[str, Any]) -> str:
    rates = data.get("traffic", {}).get("rates", {})
    if not rates:
        return ""
    label = f"{float(rates.get('http', 0)):.2f} rps\n{float(rates.get('httpPercentErr', 0)):.1f}% err"
    return label + (f"\n{data['responseTime']} ms" if data.get("responseTime") else "")


def edge_colour(data: Mapping[str, Any]) -> str:
    err = float(data.get("traffic", {}).get("rates", {}).get("httpPercentErr", 0))
    return FAILURE if err >= FAILURE_PERCENT else DEGRADED if err > 0 else OK


def layout(graph: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(x, y) per node id: x is the longest path from a node nothing calls, y spreads a column."""
    nodes = [n["data"] for n in graph["elements"]["nodes"] if n["data"]["nodeType"] != "box"]
    edges = [e["data"] for e in graph["elements"]["edges"]]
    depth = {n["id"]: 0 for n in nodes}
    for _ in range(len(nodes)):  # relax: a node sits one column right of its deepest caller
        changed = False
        for e in edges:
            if e["source"] in depth and e["target"] in depth and depth[e["target"]] < depth[e["source"]] + 1 \
                    and depth[e["source"]] < len(nodes):
                depth[e["target"]], changed = depth[e["source"]] + 1, True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    order = sorted(nodes, key=lambda n: (n.get("app") or n.get("service") or "", n.get("version") or ""))
    for n in order:
        columns.setdefault(depth[n["id"]], []).append(n["id"])
    return {nid: (float(x), (len(ids) - 1) / 2 - i) for x, ids in columns.items() for i, nid in enumerate(ids)}


def draw_graph(graph: Mapping[str, Any], ax: Axes | None = None, title: str = "") -> Figure:
    """Draw Kiali's graph JSON (``Kiali.graph``); the figure."""
    if ax is None:
        fig = Figure(figsize=(10, 5))
        ax = fig.add_subplot()
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    pos = layout(graph)
    for wrapper in graph["elements"]["edges"]:
        e = wrapper["data"]
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        colour = edge_colour(e)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "-|>", "color": colour, "lw": 1.6, "shrinkA": 14, "shrinkB": 14})
        label = edge_label(e)
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, label, ha="center", va="center", fontsize=8, color=colour,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour, "lw": 0.5})
    for wrapper in graph["elements"]["nodes"]:
        n = wrapper["data"]
        if n["nodeType"] == "box":
            continue
        x, y = pos[n["id"]]
        ax.scatter([x], [y], s=420, marker=SHAPES.get(n["nodeType"], "o"), c="white", edgecolors="#313131",
                   linewidths=1.5, zorder=3)
        ax.text(x, y - 0.22, node_label(n), ha="center", va="top", fontsize=9)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.5)
    ax.set_axis_off()
    ax.set_title(title or f"Kiali graph ({graph.get('graphType')}, last {graph.get('duration')} s)")
    return fig
