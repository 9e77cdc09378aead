"""HAProxy in the sim lab: throughput and latency through HAProxy vs straight to a pod, and the failover window.

Starts its own lab, deploys a 3-replica web app (the test image, until the shop exists) behind a
NodePort 30080 Service with externalTrafficPolicy Local, then measures for --seconds each:
requests/s and p50/p99 through HAProxy's edge frontend and directly to one pod, and the seconds
from stopping agent-1 until HAProxy marks it DOWN, with the failed requests in that run.
Usage: python benchmarks/haproxy.py [--seconds 10] [--workers 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit import control
from labkit.core.paths import LabPaths
from labkit.core.secrets import Secrets
from labkit.lab import Lab
from tests.conftest import DEPLOY, kubectl
from tests.kube.oci import push_image

GATEWAY = DEPLOY.replace("  ports: [{port: 80, targetPort: 8080}]",
                         "  type: NodePort\n  externalTrafficPolicy: Local\n"
                         "  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]")


def hammer(url: str, seconds: float, workers: int) -> tuple[float, float, float, int]:
    """Closed-loop load: (requests/s, p50 ms, p99 ms, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def work() -> None:
        mine, bad = [], 0
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                with opener.open(url, timeout=5) as r:
                    r.read()
                mine.append((time.perf_counter() - t) * 1000)
            except OSError:
                bad += 1
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
            reg = lab.endpoints["components"]["registry"]
            push_image(reg["url"], "test/web", "1",
                       auth=(reg["user"], Secrets(paths.secrets).get("registry-admin-password")))
            kubectl(lab, "apply", "-f", "-", input=GATEWAY)
            kubectl(lab, "rollout", "status", "deploy/web", "--timeout=60s")
            while not lab.haproxy.servers()["status"].eq("UP").all():
                time.sleep(0.2)
            pod_ip = kubectl(lab, "get", "pods", "-o", "jsonpath={.items[0].status.podIP}").stdout
            via = hammer(lab.url("haproxy") + "/", args.seconds, args.workers)
            direct = hammer(f"http://{pod_ip}:8080/", args.seconds, args.workers)
            print(f"{'path':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
            for name, (rps, p50, p99, err) in (("through HAProxy", via), ("direct to one pod", direct)):
                print(f"{name:<22}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{err:>8}")
            print(f"ratio HAProxy/direct: {via[0] / direct[0]:.2f}x (goal >= 0.8x)")
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
