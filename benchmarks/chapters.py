"""``lab.chapter(n)`` on the sim: how long it takes to reach a chapter's start, and to repair a broken lab.

For each chapter 0..2, on one fresh lab: the first ``chapter(n)``, then again with nothing to repair (the goal
is at most 5 s), then after an interrupted lesson left a node and an API server stopped, HAProxy on leastconn
with a server in maintenance, a crashing Deployment and a slowed pod. Usage: python benchmarks/chapters.py
[--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from labkit import control
from labkit.core.paths import LabPaths
from labkit.lab import Lab


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def break_it(lab: Lab) -> None:
    """What an interrupted chapter 1 or 2 may leave behind."""
    lab.kubernetes.node_stop("agent-1")
    lab.kubernetes.api_server_stop("server-2")
    lab.haproxy.set_balance("leastconn")
    lab.haproxy.disable("agent-2")
    lab.kubectl("set", "env", "deployment/orders", "-n", "shop", "CRASH_ON_START=1", check=True)
    pod = next(p.metadata.name for p in lab.kubernetes.core().list_namespaced_pod("shop").items
               if p.spec.node_name == "agent-2" and p.status.phase == "Running")
    lab.shop.knob(pod, "/admin/slow?ms=300")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as home:
            paths = LabPaths.resolve(home)
            try:
                lab = Lab.connect(home=paths.home)
                for n in (0, 1, 2):
                    rows.setdefault(f"chapter({n}), first", []).append(timed(lab.chapter, n))
                    rows.setdefault(f"chapter({n}), nothing to repair", []).append(timed(lab.chapter, n))
                break_it(lab)
                rows.setdefault("chapter(2), after a broken lesson", []).append(timed(lab.chapter, 2))
                rows.setdefault("  repairs made", []).append(float(len(lab.repaired)))
            finally:
                control.down(paths)
    print(f"lab.chapter(n) on the sim backend, {args.runs} runs each (seconds)")
    print(f"{'case':<36}{'median':>8}{'min':>8}{'max':>8}")
    for name, xs in rows.items():
        print(f"{name:<36}{statistics.median(xs):>8.2f}{min(xs):>8.2f}{max(xs):>8.2f}")


if __name__ == "__main__":
    main()
