"""Seconds from ``labkit up`` to a ready sim lab, on an empty home (median of N runs).

Also measures ``labkit up`` on an already running lab (the idempotent path) and
``labkit down``. Usage: python benchmarks/lab_up.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABKIT = str(Path(sys.executable).parent / "labkit")


def timed(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([LABKIT, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cold, warm, again, down = [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as home:
            env = {**os.environ, "LABKIT_HOME": home}
            cold.append(timed("up", env=env))  # empty home: CA, certs, store created
            down.append(timed("down", env=env))
            warm.append(timed("up", env=env))  # existing state: a restart
            again.append(timed("up", env=env))  # already running
            timed("down", env=env)
    rows = [("up, empty home", cold), ("up, restart with state", warm),
            ("up, already running", again), ("down", down)]
    print(f"labkit up/down on the sim backend, {args.runs} runs each (seconds)")
    print(f"{'case':<26}{'median':>8}{'min':>8}{'max':>8}")
    for name, xs in rows:
        print(f"{name:<26}{statistics.median(xs):>8.3f}{min(xs):>8.3f}{max(xs):>8.3f}")


if __name__ == "__main__":
    main()
