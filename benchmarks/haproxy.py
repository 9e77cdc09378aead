"""HAProxy in the sim lab: throughput and latency through HAProxy vs straight to a gateway pod, and failover.

Starts its own lab (temporary home) at chapter 1: the shop deployed, its gateway NodePort 30080 with
externalTrafficPolicy Local on both agents behind HAProxy's edge frontend. Then, in the same run, for the
gateway's own ``/`` and for ``/api/products`` (which calls the catalog), with a new connection per request
and with keep-alive connections (the same client on every path), it measures requests/s, p50 and p99:

* direct to the gateway pod on agent-1 (its pod IP, port 8080),
* to agent-1's NodePort (the sim's kube-proxy: a TCP relay in the lab daemon, to that same pod),
* through HAProxy's edge frontend (both agents, round robin, through their NodePorts).

The targets take turns in short rounds (``--rounds``) so that the machine's background load hits them alike.
ratio = HAProxy req/s / direct req/s (goal >= 0.8x). Last, ``--failovers`` times: stop agent-1 under a
50 req/s load, the seconds until HAProxy marks it DOWN and the requests that failed.
Usage: python benchmarks/haproxy.py [--seconds 6] [--rounds 3] [--workers 8] [--failovers 3]
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit import control
from labkit.core.paths import LabPaths
from labkit.lab import Lab


@dataclass
class Run:
    """What one target answered over all its rounds."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(len(lat) * q))] if lat else float("nan")


def hammer(url: str, seconds: float, workers: int, keep_alive: bool, into: Run) -> Run:
    """Closed-loop load from ``workers`` threads for ``seconds``; adds what it saw to ``into``."""
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    parts = urllib.parse.urlsplit(url)
    headers = {} if keep_alive else {"Connection": "close"}

    def work() -> None:
        mine, bad = [], 0
        conn = http.client.HTTPConnection(parts.netloc, timeout=5)
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                conn.request("GET", parts.path or "/", headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                if ok:
                    mine.append((time.perf_counter() - t) * 1000)
                else:
                    bad += 1
            except OSError:
                ok = False
                bad += 1
            if not keep_alive or not ok:
                conn.close()  # http.client reconnects on the next request
        conn.close()
        with lock:
            into.latencies.extend(mine)
            into.errors += bad

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    into.seconds += seconds
    return into


def compare(targets: dict[str, str], route: str, keep_alive: bool, seconds: float, rounds: int,
            workers: int) -> dict[str, Run]:
    """The targets in turns, ``rounds`` times, ``seconds`` in all for each."""
    runs = {name: Run() for name in targets}
    for _ in range(rounds):
        for name, base in targets.items():
            hammer(base + route, seconds / rounds, workers, keep_alive, runs[name])
    return runs


def failover(lab: Lab, rps: float = 50) -> tuple[float, int, int]:
    """Stop agent-1 under load: (seconds until HAProxy marks it DOWN, failed requests, requests)."""
    load = lab.traffic(rps=rps, seconds=8)
    time.sleep(2)
    stopped = time.monotonic()
    lab.kubernetes.node_stop("agent-1")
    try:
        while not lab.haproxy.servers().loc["agent-1", "status"].startswith("DOWN"):
            if time.monotonic() - stopped > 15:
                raise RuntimeError("agent-1 not DOWN 15 s after the stop")
            time.sleep(0.05)
        window = time.monotonic() - stopped
        result = load.result()
    finally:
        lab.kubernetes.node_start("agent-1")
    deadline = time.monotonic() + 60
    while not lab.haproxy.servers()["status"].eq("UP").all():  # the node's pod back and checked UP (rise)
        if time.monotonic() > deadline:
            raise RuntimeError("agent-1 not UP again 60 s after the start")
        time.sleep(0.2)
    return window, int((~result["ok"]).sum()), len(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6, help="seconds of load per target and row")
    parser.add_argument("--rounds", type=int, default=3, help="turns the targets take within a row")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-haproxy-") as home:
        paths = LabPaths.resolve(home)
        lab = Lab.connect(home=paths.home)
        try:
            lab.chapter(1)  # HAProxy for the API, the shop deployed and its gateway UP in HAProxy
            pod_ip = lab.kubectl("get", "pods", "-n", "shop", "-l", "app=gateway", "--field-selector",
                                 "spec.nodeName=agent-1", "-o", "jsonpath={.items[0].status.podIP}",
                                 check=True).stdout
            node_ip = lab.kubectl("get", "node", "agent-1", "-o",
                                  "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}",
                                  check=True).stdout
            targets = {"direct to the gateway pod": f"http://{pod_ip}:8080",
                       "agent-1's NodePort (sim relay)": f"http://{node_ip}:30080",
                       "through HAProxy": lab.url("haproxy")}
            print(f"{args.workers} workers, {args.seconds:g} s per target and row in {args.rounds} turns, "
                  f"same run; HAProxy: {lab.haproxy.config().count('http-reuse always')} backend with "
                  f"http-reuse always")
            print(f"{'route, connections, target':<62}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
                  f"{'ratio':>8}")
            for route in ("/", "/api/products"):
                for keep_alive in (False, True):
                    runs = compare(targets, route, keep_alive, args.seconds, args.rounds, args.workers)
                    direct = runs["direct to the gateway pod"].rps
                    conn = "keep-alive" if keep_alive else "new connection"
                    for name, run in runs.items():
                        ratio = f"{run.rps / direct:.2f}x" if direct and name != "direct to the gateway pod" else ""
                        print(f"{f'{route} {conn}, {name}':<62}{run.rps:>8.0f}{run.percentile(0.5):>9.2f}"
                              f"{run.percentile(0.99):>9.2f}{run.errors:>8}{ratio:>8}")
            print("ratio = req/s / direct req/s (goal for HAProxy >= 0.8x)")
            windows, failed, total = [], 0, 0
            for _ in range(args.failovers):
                window, bad, n = failover(lab)
                windows.append(window)
                failed, total = failed + bad, total + n
            if windows:
                print(f"failover ({args.failovers}x, fall 2 x inter 1 s): agent-1 DOWN after "
                      f"{', '.join(f'{w:.2f}' for w in windows)} s (median {statistics.median(windows):.2f} s); "
                      f"{failed} of {total} requests failed ({failed / total:.2%})")
        finally:
            control.down(paths)


if __name__ == "__main__":
    main()
