"""An image in pictures: its layers as ``docker history`` lists them (oldest at the bottom), each bar the size of
the files that step added, steps that added none (ENV, CMD, ...) drawn as empty rows."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

COLUMNS = ["step", "created_by", "size", "empty", "id"]


def layer_frame(history: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per step of ``image.history()`` (the API lists newest first), oldest first here: ``step``
    (1 = the base), ``created_by``, ``size`` in bytes, ``empty`` (0 bytes, as a metadata-only step), ``id``
    (the image ID on the top row, ``<missing>`` below, as Docker shows a built image)."""
    rows = [{"step": i, "created_by": h.get("CreatedBy", ""), "size": int(h.get("Size") or 0),
             "empty": not h.get("Size"),
             "id": h.get("Id", "")}
            for i, h in enumerate(reversed(history), start=1)]
    return pd.DataFrame(rows, columns=COLUMNS)


def human_size(size: int) -> str:
    """Bytes as ``docker history`` prints them: ``0B``, ``21B``, ``4.1kB``, ``12.3MB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{size}B"


def layer_plot(frame: pd.DataFrame, title: str = "", ax: plt.Axes | None = None) -> Figure:
    """Horizontal bars: one per step, its size in KiB, labelled with its instruction; the base at the bottom."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * max(len(frame), 3) + 1))
    labels = [f"{row.step}. {row.created_by[:60]}" for row in frame.itertuples()]
    kib = frame["size"] / 1024
    colours = ["#bfbfbf" if empty else "#1d63ed" for empty in frame["empty"]]
    ax.barh(range(len(frame)), kib, color=colours)
    ax.set_yticks(range(len(frame)), labels, fontsize=8)
    for y, (value, size) in enumerate(zip(kib, frame["size"], strict=True)):
        ax.annotate(human_size(int(size)), (value, y), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8)
    ax.set_xlabel("layer size (KiB of files)")
    ax.set_title(title or "image layers (docker history)")
    ax.margins(x=0.2)
    ax.figure.tight_layout()
    return ax.figure
