"""An Application in pictures, as Argo CD's UI shows it: its sync and health over time (a timeline sampled from
the Application, one lane per status, coloured as the UI colours them, with a mark at every moment something
changed and at the moments a lesson made something happen), and its resource tree drawn as a graph
(Application → Deployment → ReplicaSet → Pod, Service → Endpoints), each node coloured by its health and, for
the resources Git declares, ringed by its sync status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

# Argo CD's UI colours (its health and sync status icons)
HEALTH_COLOURS = {"Healthy": "#18be94", "Progressing": "#0dadea", "Degraded": "#e96d76", "Suspended": "#766f94",
                  "Missing": "#f4c030", "Unknown": "#ccd6dd"}
SYNC_COLOURS = {"Synced": "#18be94", "OutOfSync": "#f4c030", "Unknown": "#ccd6dd"}
OPERATION_COLOURS = {"Running": "#0dadea", "Terminating": "#766f94", "Succeeded": "#18be94", "Failed": "#e96d76",
                     "Error": "#e96d76", "": "#ffffff"}
LANES = (("sync", SYNC_COLOURS), ("health", HEALTH_COLOURS), ("operation", OPERATION_COLOURS))
SAMPLE_COLUMNS = ["t", "sync", "health", "operation", "revision", "message"]
# the short names Argo CD's tree shows under each node's icon (kubectl's short names)
KIND_ABBREVIATIONS = {"Application": "app", "Deployment": "deploy", "ReplicaSet": "rs", "Pod": "pod",
                      "Service": "svc", "Endpoints": "ep", "EndpointSlice": "endpointslice", "ConfigMap": "cm",
                      "Secret": "secret", "Namespace": "ns", "StatefulSet": "sts", "DaemonSet": "ds", "Job": "job",
                      "Ingress": "ing", "PersistentVolumeClaim": "pvc", "ServiceAccount": "sa"}
TREE_COLUMNS = ["key", "kind", "namespace", "name", "parent", "depth", "health", "sync", "message"]


# -- the timeline ---------------------------------------------------------------------------------------------
def sample(app: dict[str, Any], t: float) -> dict[str, Any]:
    """One timeline row from an Application (as the API server or the Kubernetes API answers it) at ``t`` seconds."""
    status = app.get("status") or {}
    sync, health, op = status.get("sync") or {}, status.get("health") or {}, status.get("operationState") or {}
    conditions = "; ".join(f"{c.get('type')}: {c.get('message', '')}" for c in status.get("conditions") or [])
    return {"t": round(t, 3), "sync": sync.get("status") or "Unknown", "health": health.get("status") or "Unknown",
            "operation": op.get("phase") or "", "revision": (sync.get("revision") or "")[:8],
            "message": conditions or health.get("message") or op.get("message") or ""}


def changes(frame: pd.DataFrame) -> list[tuple[float, str]]:
    """The moments something happened: each row whose sync, health, operation or revision differs from the row
    before, as (seconds, "what became what")."""
    out: list[tuple[float, str]] = []
    previous: dict[str, Any] | None = None
    for row in frame.to_dict("records"):
        if previous is not None:
            moved = [f"{k}: {row[k] or '—'}" for k in ("sync", "health", "operation", "revision")
                     if row[k] != previous[k]]
            if moved:
                out.append((float(row["t"]), ", ".join(moved)))
        previous = row
    return out


def plot_timeline(frame: pd.DataFrame, title: str, marks: dict[str, float] | None = None) -> Figure:
    """Sync, health and the running operation as three lanes of coloured spans over time (a span lasts from one
    sample to the next), a dotted line at every change (labelled with the new revision where it changed) and a
    dashed one at each of ``marks`` (label → seconds: what the lesson did, e.g. ``kubectl scale``)."""
    fig, ax = plt.subplots(figsize=(10, 3.2))
    rows = frame.to_dict("records")
    end = float(rows[-1]["t"]) if rows else 1.0
    for lane, (column, colours) in enumerate(LANES):
        y = len(LANES) - 1 - lane
        for i, row in enumerate(rows):
            stop = float(rows[i + 1]["t"]) if i + 1 < len(rows) else end + max(end * 0.02, 0.2)
            value = row[column]
            ax.barh(y, stop - float(row["t"]), left=float(row["t"]), height=0.6,
                    color=colours.get(value, "#ccd6dd"), edgecolor="none")
    previous_revision = rows[0]["revision"] if rows else ""
    for t, _ in changes(frame):
        ax.axvline(t, color="#999999", linestyle=":", linewidth=0.8)
        row = frame[frame["t"] == t].iloc[0]
        if row["revision"] != previous_revision:
            ax.annotate(f"rev {row['revision']}", (t, len(LANES) - 0.55), fontsize=7, color="#555", ha="left")
            previous_revision = row["revision"]
    for label, t in (marks or {}).items():
        ax.axvline(t, color="black", linestyle="--", linewidth=1.1)
        ax.annotate(label, (t, -0.55), rotation=90, va="bottom", ha="right", fontsize=8)
    ax.set_yticks(range(len(LANES)), [name for name, _ in reversed(LANES)])
    ax.set_ylim(-0.6, len(LANES) - 0.4)
    ax.set_xlim(0, max(end * 1.04, 1.0))
    ax.set_xlabel("seconds since the watch started")
    ax.set_ylabel("Application status")
    last = rows[-1] if rows else {"sync": "Unknown", "health": "Unknown"}
    ax.set_title(f"{title} — {last['sync']} / {last['health']}", fontsize=10)
    seen = {v for column, _ in LANES for v in frame[column]} if rows else set()
    legend = {**SYNC_COLOURS, **HEALTH_COLOURS, **{k: v for k, v in OPERATION_COLOURS.items() if k}}
    ax.legend(handles=[Patch(color=c, label=s) for s, c in legend.items() if s in seen], loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=8, title="status", title_fontsize=8)
    fig.tight_layout()
    return fig


class LiveTimeline:
    """The timeline in the output of the cell that creates it, redrawn in place at every call (from any thread).
    In a notebook a person runs only: under papermill, nbval or plain Python it draws nothing until ``close``,
    which returns the final figure for the cell to show."""

    def __init__(self, title: str) -> None:
        from ..checks import interactive

        self.title = title
        self.handle: Any = None
        if interactive():
            from IPython.display import HTML, display

            self.handle = display(HTML(f"<b>{title}</b><br><i>waiting for the first sample…</i>"), display_id=True)

    def __call__(self, frame: pd.DataFrame, marks: dict[str, float] | None = None) -> None:
        if self.handle is None or frame.empty:
            return
        fig = plot_timeline(frame, self.title, marks)
        self.handle.update(fig)
        plt.close(fig)

    def close(self, final: Figure) -> Figure | None:
        """Show ``final`` in place of the live plot (interactive), or leave it for the cell to show; the figure to
        keep (None when it is already on the page)."""
        if self.handle is None:
            return final
        self.handle.update(final)
        plt.close(final)
        return None


# -- the resource tree ----------------------------------------------------------------------------------------
def _key(ref: dict[str, Any]) -> str:
    return "/".join((ref.get("group") or "", ref.get("kind") or "", ref.get("namespace") or "", ref.get("name") or ""))


def tree_frame(app: dict[str, Any], tree: dict[str, Any]) -> pd.DataFrame:
    """One row per node of the Application's tree: the Application itself (depth 0), the resources Git declares
    (``status.resources``, depth 1, with their sync status) and what the cluster made from them
    (``/resource-tree``'s nodes, placed under their ``parentRefs``), each with its health."""
    name = app["metadata"]["name"]
    status = app.get("status") or {}
    root = f"argoproj.io/Application/{app['metadata'].get('namespace', '')}/{name}"
    rows: dict[str, dict[str, Any]] = {root: {
        "key": root, "kind": "Application", "namespace": app["metadata"].get("namespace", ""), "name": name,
        "parent": "", "depth": 0, "health": (status.get("health") or {}).get("status", "Unknown"),
        "sync": (status.get("sync") or {}).get("status", "Unknown"), "message": ""}}
    for res in status.get("resources") or []:
        key = _key(res)
        rows[key] = {"key": key, "kind": res.get("kind", ""), "namespace": res.get("namespace") or "",
                     "name": res.get("name", ""), "parent": root, "depth": 1,
                     "health": (res.get("health") or {}).get("status", ""),  # none: a kind without health
                     "sync": res.get("status", ""), "message": (res.get("health") or {}).get("message", "")}
    nodes = {_key(n): n for n in tree.get("nodes") or []}
    for key, node in nodes.items():  # health from the tree for the declared ones too
        if key in rows and (node.get("health") or {}).get("status"):
            rows[key]["health"] = node["health"]["status"]
    pending = [k for k in nodes if k not in rows]
    while pending:  # children after their parents, however deep
        placed = False
        for key in list(pending):
            node = nodes[key]
            parents = [_key(p) for p in node.get("parentRefs") or []]
            parent = next((p for p in parents if p in rows), None)
            if parent is None and any(p in nodes and p in pending for p in parents):
                continue
            health = node.get("health") or {}
            rows[key] = {"key": key, "kind": node.get("kind", ""), "namespace": node.get("namespace") or "",
                         "name": node.get("name", ""), "parent": parent or root,
                         "depth": rows[parent or root]["depth"] + 1, "health": health.get("status", ""),
                         "sync": "", "message": health.get("message", "")}
            pending.remove(key)
            placed = True
        if not placed:  # parents that never appear: hang them under the Application
            for key in pending:
                node = nodes[key]
                rows[key] = {"key": key, "kind": node.get("kind", ""), "namespace": node.get("namespace") or "",
                             "name": node.get("name", ""), "parent": root, "depth": 1,
                             "health": (node.get("health") or {}).get("status", ""), "sync": "", "message": ""}
            pending = []
    return pd.DataFrame(list(rows.values()), columns=TREE_COLUMNS)


def _order(frame: pd.DataFrame) -> list[str]:
    """The nodes depth-first, children by kind and name: the rows each node takes in the drawing."""
    children: dict[str, list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        children.setdefault(row["parent"], []).append(row)
    out: list[str] = []

    def walk(key: str) -> None:
        out.append(key)
        for child in sorted(children.get(key, []), key=lambda r: (r["kind"], r["name"])):
            walk(child["key"])

    for top in frame[frame["parent"] == ""]["key"]:
        walk(top)
    return out


def plot_tree(frame: pd.DataFrame, title: str) -> Figure:
    """The resource tree as Argo CD's UI draws it: left to right by depth, one box per resource (its kind's short
    name and its name), filled with its health colour, its border the sync colour for the resources Git declares
    (OutOfSync: yellow), edges from each parent to its children."""
    order = _order(frame)
    rows = {r["key"]: r for r in frame.to_dict("records")}
    leaves: dict[str, float] = {}
    y_of: dict[str, float] = {}
    children: dict[str, list[str]] = {}
    for key in order:
        children.setdefault(rows[key]["parent"], []).append(key)
    for key in order:  # leaves get one row each; a parent sits in the middle of its children
        if not children.get(key):
            leaves[key] = float(len(leaves))
    for key in reversed(order):
        kids = children.get(key)
        y_of[key] = leaves[key] if not kids else sum(y_of[k] for k in kids) / len(kids)
    depth = int(frame["depth"].max()) if len(frame) else 0
    fig, ax = plt.subplots(figsize=(3.1 * (depth + 1) + 1.5, 0.55 * max(len(leaves), 3) + 1.2))
    width, height, gap = 2.3, 0.62, 3.1
    for key in order:
        row = rows[key]
        x, y = row["depth"] * gap, y_of[key]
        if row["parent"]:
            px, py = rows[row["parent"]]["depth"] * gap, y_of[row["parent"]]
            ax.plot([px + width, x], [py, y], color="#8fa4b1", linewidth=1, zorder=1)
        edge = SYNC_COLOURS.get(row["sync"], "#6d7f8b") if row["sync"] else "#6d7f8b"
        ax.add_patch(FancyBboxPatch((x, y - height / 2), width, height, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor=HEALTH_COLOURS.get(row["health"], "#ffffff"), edgecolor=edge,
                                    linewidth=2.4 if row["sync"] == "OutOfSync" else 1.2, zorder=2))
        kind = KIND_ABBREVIATIONS.get(row["kind"], row["kind"].lower())
        name = row["name"] if len(row["name"]) <= 26 else row["name"][:12] + "…" + row["name"][-12:]
        ax.text(x + 0.08, y + 0.1, kind, fontsize=6.5, color="#333", va="center", zorder=3)
        ax.text(x + 0.08, y - 0.12, name, fontsize=7.5, va="center", zorder=3, fontweight="bold")
    ax.set_xlim(-0.2, depth * gap + width + 0.2)
    ax.set_ylim(len(leaves) - 0.4 if leaves else 0.6, -0.6)
    ax.axis("off")
    seen_health = [s for s in HEALTH_COLOURS if (frame["health"] == s).any()]
    seen_sync = [s for s in SYNC_COLOURS if (frame["sync"] == s).any()]
    ax.legend(handles=[Patch(facecolor=HEALTH_COLOURS[s], label=f"health: {s}") for s in seen_health]
              + [Patch(facecolor="white", edgecolor=SYNC_COLOURS[s], linewidth=2, label=f"sync: {s}")
                 for s in seen_sync], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def history_frame(app: dict[str, Any]) -> pd.DataFrame:
    """``status.history`` as a table, newest first: the id a rollback names, the revision, when it was deployed
    and how long the sync took (seconds)."""
    rows = []
    for h in (app.get("status") or {}).get("history") or []:
        source = h.get("source") or {}
        started, deployed = h.get("deployStartedAt"), h.get("deployedAt")
        took = None
        if started and deployed:
            took = (datetime.fromisoformat(deployed.replace("Z", "+00:00"))
                    - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
        rows.append({"id": h.get("id"), "revision": (h.get("revision") or "")[:8], "deployed_at": deployed,
                     "seconds": took, "path": source.get("path", ""), "initiated_by":
                     ((h.get("initiatedBy") or {}).get("username") or
                      ("automated" if (h.get("initiatedBy") or {}).get("automated") else ""))})
    frame = pd.DataFrame(rows, columns=["id", "revision", "deployed_at", "seconds", "path", "initiated_by"])
    return frame.sort_values("id", ascending=False).reset_index(drop=True) if len(frame) else frame
