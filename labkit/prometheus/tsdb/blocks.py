"""Compacted blocks: immutable files holding every series' samples of one time range ``[mint, maxt)``, written
atomically (temporary file, fsync, rename) as compressed NumPy archives; deleted whole by retention."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Block:
    path: Path
    mint: int
    maxt: int


def block_path(directory: Path, mint: int, maxt: int) -> Path:
    return directory / f"{mint:015d}-{maxt:015d}.npz"


def list_blocks(directory: Path) -> list[Block]:
    directory.mkdir(parents=True, exist_ok=True)
    blocks = []
    for p in directory.glob("*.npz"):
        mint, maxt = (int(x) for x in p.stem.split("-"))
        blocks.append(Block(p, mint, maxt))
    return sorted(blocks, key=lambda b: b.mint)


def write_block(directory: Path, mint: int, maxt: int,
                series: list[tuple[dict[str, str], np.ndarray, np.ndarray]]) -> Block:
    """Write one block of ``(labels, timestamps, values)`` triples."""
    path = block_path(directory, mint, maxt)
    tmp = path.with_suffix(".tmp")
    counts = np.array([len(t) for _, t, _ in series], dtype=np.int64)
    ts = np.concatenate([t for _, t, _ in series]) if series else np.empty(0, np.int64)
    vs = np.concatenate([v for _, _, v in series]) if series else np.empty(0, np.float64)
    labels = np.frombuffer(json.dumps([lbl for lbl, _, _ in series]).encode(), dtype=np.uint8)
    with open(tmp, "wb") as f:
        np.savez_compressed(f, labels=labels, counts=counts, t=ts.astype(np.int64), v=vs.astype(np.float64))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return Block(path, mint, maxt)


def read_block(block: Block) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
    with np.load(block.path, allow_pickle=False) as data:
        labels = json.loads(data["labels"].tobytes())
        counts, ts, vs = data["counts"], data["t"], data["v"]
    out, pos = [], 0
    for lbl, n in zip(labels, counts, strict=True):
        out.append((lbl, ts[pos:pos + n], vs[pos:pos + n]))
        pos += int(n)
    return out
