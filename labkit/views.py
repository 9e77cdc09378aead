"""The platform drawn as a picture: boxes per product, arrows for the flows of the talk."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# name -> (x, y, label, chapter); the canvas is 16 x 9
_BOXES: dict[str, tuple[float, float, str, int]] = {
    "developer": (0.3, 6.6, "Developer\ngit push", 3),
    "gitlab": (3.0, 6.6, "GitLab\n+ Runner CI/CD", 3),
    "nexus": (3.0, 4.6, "Nexus\ndependency cache", 4),
    "harbor": (5.8, 6.6, "Harbor\nimage registry", 5),
    "manifests": (5.8, 4.6, "Manifest repo\n(GitLab)", 6),
    "argocd": (8.6, 6.6, "Argo CD\nGitOps", 6),
    "users": (0.3, 2.2, "Users\nHTTP traffic", 1),
    "haproxy": (3.0, 2.2, "HAProxy\nL4/L7 LB", 1),
    "prometheus": (12.4, 6.9, "Prometheus\n+ Grafana", 7),
    "efk": (12.4, 4.6, "Fluent Bit → ES\n+ Kibana", 8),
    "tracing": (12.4, 2.3, "Istio · Jaeger\n· Kiali", 9),
}
_EDGES = [
    ("developer", "gitlab"), ("gitlab", "nexus"), ("gitlab", "harbor"), ("gitlab", "manifests"),
    ("manifests", "argocd"), ("harbor", "cluster"), ("argocd", "cluster"), ("users", "haproxy"),
    ("haproxy", "cluster"), ("cluster", "prometheus"), ("cluster", "efk"), ("cluster", "tracing"),
]
_PART_OF = {"gitlab": "gitlab", "manifests": "gitlab", "nexus": "nexus", "harbor": "registry",
            "argocd": "argocd", "haproxy": "haproxy", "prometheus": "prometheus",
            "efk": "logging", "tracing": "mesh", "cluster": "kubernetes"}  # box -> product (labkit.products)
_W, _H = 2.3, 1.3
_CLUSTER = (5.8, 0.6, 5.6, 3.0)  # x, y, w, h


def _anchor(name: str, other: str) -> tuple[float, float]:
    """Where an arrow between ``name`` and ``other`` meets ``name``: the cluster's nearest edge."""
    if name == "cluster":
        x, y, w, h = _CLUSTER
        ox, oy = _anchor(other, name)
        if ox < x:
            return x, y + h * 0.45
        if ox > x + w:
            return x + w, min(max(oy, y + 0.3), y + h - 0.3)
        return min(max(ox, x + 0.5), x + w - 0.5), y + h + 0.15
    x, y, _, _ = _BOXES[name]
    return x + _W / 2, y + _H / 2


def draw(running: Iterable[str] = ()) -> Figure:
    """The architecture; components the lab runs now are drawn solid, the rest faded."""
    on = set(running)
    fig, ax = plt.subplots(figsize=(13, 7.3))
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 9)
    ax.axis("off")
    cmap = plt.get_cmap("tab10")

    def box(x: float, y: float, w: float, h: float, label: str, chapter: int, live: bool) -> None:
        colour = cmap(chapter % 10)
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                    fc=colour, ec="black", alpha=0.85 if live else 0.25, lw=1.2))
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=10,
                fontweight="bold" if live else "normal")
        ax.text(x + w - 0.08, y + h - 0.1, f"{chapter:02d}", ha="right", va="top", fontsize=8)

    for name, (x, y, label, chapter) in _BOXES.items():
        live = name in ("developer", "users") or _PART_OF.get(name) in on
        box(x, y, _W, _H, label, chapter, live)
    cx, cy, cw, ch = _CLUSTER
    cluster_live = "kubernetes" in on
    ax.add_patch(FancyBboxPatch((cx, cy), cw, ch, boxstyle="round,pad=0.05", fc="white",
                                ec="#326ce5", lw=2, alpha=1.0 if cluster_live else 0.4))
    ax.text(cx + 0.15, cy - 0.15, "Kubernetes (RKE2 in the talk) — 02", va="top", fontsize=10,
            color="#326ce5", fontweight="bold")
    for i in range(3):
        box(cx + 0.2 + i * 1.8, cy + 1.75, 1.6, 0.95, f"server-{i + 1}\nAPI server", 2, cluster_live)
    for i in range(2):
        box(cx + 0.2 + i * 2.7, cy + 0.3, 2.4, 1.05, f"agent-{i + 1}\nshop pods", 2, cluster_live)
    for a, b in _EDGES:
        ax.add_patch(FancyArrowPatch(_anchor(a, b), _anchor(b, a), arrowstyle="-|>", mutation_scale=14,
                                     shrinkA=0 if a == "cluster" else 45,
                                     shrinkB=0 if b == "cluster" else 45, color="#444", lw=1.2))
    ax.set_title("MSA Full Stack Demo — the lab's platform (number = chapter)", fontsize=13)
    fig.tight_layout()
    return fig
