"""HAProxy in the sim lab: throughput and latency through HAProxy vs straight to a gateway pod, and failover.

Starts its own lab at chapter 1 (the shop deployed; the gateway is NodePort 30080 with
externalTrafficPolicy Local behind HAProxy's edge frontend), then measures for --seconds each, in the
same run: requests/s and p50/p99 through HAProxy and directly to one gateway pod, for the gateway's
own ``/`` and for ``/api/products`` (which calls the catalog), with a new connection per request and
with keep-alive connections; then the seconds from stopping agent-1 until HAProxy marks it DOWN, with
the failed requests of a 50 req/s load in that run.
Usage: python benchmarks/haproxy.py [--seconds 10] [--workers 8]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit import control
from labkit.core.paths import LabPaths
from labkit.lab import Lab
from tests.conftest import kubectl


def hammer(url: str, seconds: float, workers: int, keep_alive: bool) -> tuple[float, float, float, int]:
    """Closed-loop load: (requests/s, p50 ms, p99 ms, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    parts = urllib.parse.urlsplit(url)

    def work() -> None:
        mine, bad = [], 0
        conn = http.client.HTTPConnection(parts.netloc, timeout=5)
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                conn.request("GET", parts.path or "/", headers={} if keep_alive else {"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    bad += 1
                    continue
                mine.append((time.perf_counter() - t) * 1000)
            except OSError:
                bad += 1
            if not keep_alive or bad:
                conn.close()
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(latencies)
    return len(lat) / seconds, statistics.median(lat), lat[int(len(lat) * 0.99)], errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-haproxy-") as home:
        paths = LabPaths.resolve(home)
        lab = Lab.connect(home=paths.home)
        try:
            lab.chapter(1)  # HAProxy for the API, the shop deployed and its gateway UP in HAProxy
            pod_ip = kubectl(lab, "get", "pods", "-n", "shop", "-l", "app=gateway",
                             "-o", "jsonpath={.items[0].status.podIP}").stdout
            print(f"{args.workers} workers, {args.seconds:.0f} s per row, same run")
            print(f"{'path':<54}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>8}")
            for route in ("/", "/api/products"):
                for keep_alive in (False, True):
                    via = hammer(lab.url("haproxy") + route, args.seconds, args.workers, keep_alive)
                    direct = hammer(f"http://{pod_ip}:8080{route}", args.seconds, args.workers, keep_alive)
                    conn = "keep-alive" if keep_alive else "new connection"
                    for name, (rps, p50, p99, err) in (("through HAProxy", via), ("direct to a gateway pod", direct)):
                        ratio = f"{via[0] / direct[0]:.2f}x" if name.startswith("through") else ""
                        print(f"{f'{route} {conn}, {name}':<54}{rps:>8.0f}{p50:>9.2f}{p99:>9.2f}{err:>8}{ratio:>8}")
            print("ratio = HAProxy req/s / direct req/s (goal >= 0.8x)")
            load = lab.traffic(rps=50, seconds=10)
            time.sleep(2)
            stopped = time.monotonic()
            lab.node_stop("agent-1")
            while not lab.haproxy.servers().loc["agent-1", "status"].startswith("DOWN"):
                time.sleep(0.05)
            window = time.monotonic() - stopped
            result = load.result()
            lab.node_start("agent-1")
            print(f"failover: agent-1 DOWN {window:.2f} s after the stop (fall 2 x inter 1 s); "
                  f"{(~result['ok']).sum()} of {len(result)} requests failed")
        finally:
            control.down(paths)


if __name__ == "__main__":
    main()
