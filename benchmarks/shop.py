"""The demo shop on the sim lab: seconds from ``kubectl apply -k manifests/apps`` to every pod Ready, and the
resident memory of the whole lab (daemon, HAProxy, every pod) with the shop running.

Each run uses a fresh lab home; the first ``labkit up`` of a machine also builds the shop images (timed
separately, cold builder cache with ``--cold-build``). Usage: python benchmarks/shop.py [--runs 3] [--cold-build]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.lab import Lab

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _rss_mb(pids: list[int]) -> float:
    """Proportional set size (shared pages split between processes) summed over ``pids``, in MB."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def one_run(home: str, cache: str | None, idle: float) -> dict[str, float]:
    env = {**os.environ, "LABKIT_HOME": home, "KUBECONFIG": f"{home}/kubeconfig", "NO_PROXY": "*"}
    if cache:
        env["LABKIT_BUILD_CACHE"] = cache
    started = time.perf_counter()
    _run(env, str(BIN / "labkit"), "up", "--no-jupyter")
    up = time.perf_counter() - started
    try:
        time.sleep(idle)  # a learner reads before applying; the nodes pre-pull the shop images meanwhile
        lab = Lab.connect(home=home, start=False)
        started = time.perf_counter()
        _run(env, str(BIN / "kubectl"), "apply", "-k", str(REPO / "manifests" / "apps"))
        while True:
            ready, total = lab.shop.ready_pods()  # one LIST, so polling does not load the 2 cores it measures
            if total and ready == total:
                break
            time.sleep(0.1)
        apply_ready = time.perf_counter() - started
        time.sleep(3)  # let the pods settle (imports done, first probes answered)
        daemon = json.loads(Path(home, "endpoints.json").read_text())["pid"]
        pids = _tree(daemon)
        return {"up": up, "apply_ready": apply_ready, "pods": total, "processes": len(pids), "pss_mb": _rss_mb(pids)}
    finally:
        _run(env, str(BIN / "labkit"), "down")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=0.0, help="seconds between `labkit up` and the apply")
    parser.add_argument("--cold-build", action="store_true", help="an empty builder cache for the first run")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-cache-") as cold:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="labkit-bench-") as home:
                rows.append(one_run(home, cold if args.cold_build else None, args.idle))
                print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items()), flush=True)
    print(f"\nshop on the sim lab, {args.runs} runs, apply {args.idle:.0f} s after up "
          "(goal: apply -> Ready <= 3 s, lab memory <= 500 MB)")
    for key, label in (("up", "labkit up (s)"), ("apply_ready", "kubectl apply -> all pods Ready (s)"),
                       ("pss_mb", "lab memory, PSS (MB)")):
        xs = [r[key] for r in rows]
        print(f"{label:<38}{statistics.median(xs):>9.2f} median {min(xs):>9.2f} min {max(xs):>9.2f} max")
    print(f"{'pods / processes':<38}{rows[-1]['pods']:>9.0f} {rows[-1]['processes']:>9.0f}")


if __name__ == "__main__":
    main()
