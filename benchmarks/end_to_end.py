"""Chapter 10's goals, measured on a fresh sim lab in a temporary home.

1. ``labkit reset --chapter 10``'s work: the lab started fresh (``control.up``), then ``lab.chapter(10)``: every
   product up, the shop meshed and deployed once through the whole chain (goal: <= 60 s).
2. One change from ``git push`` to 100 % of the catalog's pods on the new version and the new field served through
   HAProxy, with the time of each stage (``lab.release.follow``; goal: <= 90 s), while ``lab.traffic`` sends 10
   requests/s through HAProxy: the failed requests (an error status, or no answer in 10 s) are counted (goal: 0).
3. The lab's memory with every product running and the shop meshed: RSS and PSS of the daemon and every process below
   it (goal: RSS <= 2 GB).

Usage: python benchmarks/end_to_end.py [--runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# this file's folder leaves the path: benchmarks/gitlab.py must not stand in for python-gitlab's ``import gitlab``
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from labkit import control  # noqa: E402
from labkit.core.paths import LabPaths  # noqa: E402
from labkit.lab import Lab  # noqa: E402
from labkit.release.changes import FIELD, add_ratings  # noqa: E402


def lab_memory(home: Path) -> tuple[float, float]:
    """(RSS, PSS) in MiB of the lab daemon and every process below it."""
    import psutil

    daemon = psutil.Process(int((home / "daemon.lock").read_text().strip()))
    rss = pss = 0.0
    for proc in [daemon, *daemon.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss, pss = rss + info.rss / 2**20, pss + info.pss / 2**20
    return rss, pss


def one_run(home: Path) -> dict[str, float]:
    paths = LabPaths.resolve(home)
    out: dict[str, float] = {}
    start = time.perf_counter()
    control.up(paths, "sim", progress=lambda _: None)
    out["lab up (s)"] = time.perf_counter() - start
    lab = Lab.connect(home=paths.home)
    begin = time.perf_counter()
    lab.chapter(10)
    out["chapter(10) (s)"] = time.perf_counter() - begin
    out["reset --chapter 10 (s)"] = time.perf_counter() - start
    traffic = lab.traffic(rps=10, seconds=600, url=lab.url("haproxy").rstrip("/") + "/api/products", timeout=10)
    try:
        sha = lab.release.push(add_ratings, "catalog: every product has a rating")
        run = lab.release.follow(sha, expect=lambda body: all(FIELD in p for p in body["products"]),
                                 progress=None)
        for row in run.frame().itertuples():
            out[f"  {row.stage} (s after push)"] = float(row.seconds)
        out["push -> 100 % and served (s)"] = max(run.stages.values()) - run.pushed
        rows = traffic.frame()
        import pandas as pd

        window = rows[(rows["time"] >= pd.to_datetime(run.pushed, unit="s"))
                      & (rows["time"] <= pd.to_datetime(max(run.stages.values()), unit="s"))]
        out["requests during the rollout"] = float(len(window))
        out["failed requests during the rollout"] = float((~window["ok"]).sum())
    finally:
        traffic.stop()
    rss, pss = lab_memory(paths.home)
    out["lab RSS, every product, meshed shop (MiB)"] = rss
    out["lab PSS (MiB)"] = pss
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as home:
            try:
                for key, value in one_run(Path(home)).items():
                    rows.setdefault(key, []).append(value)
            finally:
                control.down(LabPaths.resolve(home))
    for key, values in rows.items():
        extra = f"  (runs: {', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else ""
        print(f"{key:52s} {statistics.median(values):9.1f}{extra}")
    print("goals: reset --chapter 10 <= 60 s; push -> 100 % <= 90 s; 0 failed requests; lab RSS <= 2,048 MiB")


if __name__ == "__main__":
    main()
