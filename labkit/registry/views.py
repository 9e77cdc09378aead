"""The registry's contents as tables and plots: what a person looks at in Harbor's UI (projects, robot accounts,
artifacts), and image digests side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..images.client import RegistryClient

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def image_table(client: RegistryClient) -> pd.DataFrame:
    """One row per repository and tag: the manifest digest it points at, its layers and their size."""
    import json

    import pandas as pd

    rows = []
    for repo in client.catalog():
        for tag in client.tags(repo):
            body, _, digest = client.manifest(repo, tag)
            layers = json.loads(body).get("layers") or []
            rows.append({"repository": repo, "tag": tag, "digest": digest, "layers": len(layers),
                         "size_mb": round(sum(layer.get("size", 0) for layer in layers) / 2**20, 2)})
    return pd.DataFrame(rows, columns=["repository", "tag", "digest", "layers", "size_mb"])


def project_table(projects: list[dict[str, Any]]) -> pd.DataFrame:
    """Harbor's projects page: name, access level, repositories, creation time."""
    import pandas as pd

    rows = [{"project": p["name"], "public": (p.get("metadata") or {}).get("public") == "true",
             "repositories": p.get("repo_count", 0), "created": p.get("creation_time")} for p in projects]
    frame = pd.DataFrame(rows, columns=["project", "public", "repositories", "created"])
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def robot_table(robots: list[dict[str, Any]]) -> pd.DataFrame:
    """Robot accounts: name, level, the actions each has on repositories, disabled, expiry (-1: never)."""
    import pandas as pd

    rows = []
    for r in robots:
        access = [a for perm in r.get("permissions") or [] for a in perm.get("access") or []]
        rows.append({"name": r["name"], "level": r.get("level"), "disabled": bool(r.get("disable")),
                     "repository": sorted(a["action"] for a in access if a.get("resource") == "repository"),
                     "expires_at": r.get("expires_at"), "description": r.get("description", "")})
    return pd.DataFrame(rows, columns=["name", "level", "disabled", "repository", "expires_at", "description"])


def artifact_table(artifacts: list[dict[str, Any]]) -> pd.DataFrame:
    """A repository's artifacts: short digest, tags, size (MB), push and pull times (NaT: never pulled)."""
    import pandas as pd

    rows = [{"digest": a["digest"], "tags": sorted(t["name"] for t in a.get("tags") or []),
             "size_mb": round(a.get("size", 0) / 1e6, 2), "push_time": a.get("push_time"),
             "pull_time": None if str(a.get("pull_time", "")).startswith("0001") else a.get("pull_time")}
            for a in artifacts]
    frame = pd.DataFrame(rows, columns=["digest", "tags", "size_mb", "push_time", "pull_time"])
    for column in ("push_time", "pull_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def digest_plot(builds: list[tuple[str, str]], title: str = "Image digests: same content, same digest") -> Figure:
    """One row per build (label, image digest or ID), coloured by digest: builds of the same content share a colour
    and a short digest, a changed line gives a new one."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(builds) + 1.4))
    palette = plt.get_cmap("tab10")
    colours: dict[str, Any] = {}
    for i, (_, digest) in enumerate(builds):
        colour = colours.setdefault(digest, palette(len(colours) % 10))
        ax.barh(i, 1, color=colour)
        short = digest.split(":")[-1][:12]
        ax.text(0.5, i, f"{digest.split(':')[0]}:{short}", ha="center", va="center", color="white",
                fontweight="bold")
    ax.set_yticks(range(len(builds)), [label for label, _ in builds])
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_xlabel(f"{len(colours)} distinct digest(s) among {len(builds)} build(s)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
