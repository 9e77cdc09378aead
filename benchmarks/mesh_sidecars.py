"""Chapter 09's data-plane goals, measured with real Envoys configured by labkit's translation (file-based xDS).

``--hop``: latency added per sidecar: the same GET sent directly to an aiohttp replica and through two sidecars
(the client's outbound listener, then the replica's own sidecar's inbound listener), p50 over ``--requests``
each on one keep-alive connection; per hop = (through - direct) / 2 (goal <= 2 ms p50).
``--config``: a VirtualService change applied in a running Envoy: from translating and pushing to the first
request that follows the new route (polled every 5 ms), ``--changes`` times (goal <= 1 s).
``--memory``: each Envoy's RSS, USS and PSS (one worker, ``--concurrency 1``) after the traffic (goal <= 40 MB).

Usage: python benchmarks/mesh_sidecars.py [--hop] [--config] [--memory] [--requests 2000] [--changes 20]
(all three without a flag). The world is tests/mesh/test_envoy.py's: a frontend sidecar, catalog replicas.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path (benchmarks/ holds modules named like packages)
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from tests.mesh.test_envoy import URL, World, dr, vs  # noqa: E402

HOP_GOAL_MS, CONFIG_GOAL_S, MEMORY_GOAL_MB = 2.0, 1.0, 40.0


def _p50_ms(session: requests.Session, url: str, n: int, label: str) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        resp = session.get(url, timeout=10)
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.text
        if (i + 1) % 500 == 0:
            print(f"  {label}: {i + 1}/{n}", file=sys.stderr, flush=True)
    return statistics.median(times)


def hop(world: World, n: int) -> None:
    one = {"name": "a", "labels": {"replica": "catalog-v1a"}}
    rule = dr()
    rule["spec"]["subsets"].append(one)
    world.apply(vs([{"route": [{"destination": {"host": "catalog", "subset": "a"}}]}]), rule)
    rep = world.backends.replicas["v1a"]
    with requests.Session() as direct, requests.Session() as meshed:
        direct.trust_env = meshed.trust_env = False
        meshed.proxies = world.frontend.proxy
        assert meshed.get(URL, timeout=10).json()["replica"] == "v1a"
        d = _p50_ms(direct, f"http://{rep.ip}:{rep.port}/products", n, "direct")
        m = _p50_ms(meshed, URL, n, "through two sidecars")
    per_hop = (m - d) / 2
    print(f"hop: direct p50 {d:.3f} ms, through two sidecars p50 {m:.3f} ms -> {per_hop:.3f} ms per sidecar "
          f"(goal <= {HOP_GOAL_MS} ms: {'met' if per_hop <= HOP_GOAL_MS else 'NOT met'})")


def config(world: World, changes: int) -> None:
    seconds = []
    with requests.Session() as s:
        s.trust_env = False
        s.proxies = world.frontend.proxy
        for i in range(changes):
            subset = "v2" if i % 2 == 0 else "v1"
            start = time.monotonic()
            world.apply(vs([{"route": [{"destination": {"host": "catalog", "subset": subset}}]}]), dr())
            while not s.get(URL, timeout=10).json()["replica"].startswith(subset):
                time.sleep(0.005)
            seconds.append(time.monotonic() - start)
    print(f"config: {changes} changes, p50 {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f}"
          f" ms (goal <= {CONFIG_GOAL_S} s: {'met' if max(seconds) <= CONFIG_GOAL_S else 'NOT met'})")


def memory(world: World) -> None:
    for name, sidecar in world.sidecars.items():
        assert sidecar.envoy and sidecar.envoy.proc
        info = psutil.Process(sidecar.envoy.proc.pid).memory_full_info()
        print(f"memory {name}: RSS {info.rss / 2**20:.1f} MiB, USS {info.uss / 2**20:.1f} MiB, "
              f"PSS {info.pss / 2**20:.1f} MiB (goal <= {MEMORY_GOAL_MB} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hop", action="store_true")
    parser.add_argument("--config", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    every = not (args.hop or args.config or args.memory)
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as home:
        world = World(Path(home))
        try:
            if args.hop or every:
                hop(world, args.requests)
            if args.config or every:
                config(world, args.changes)
            if args.memory or every:
                memory(world)
        finally:
            world.close()


if __name__ == "__main__":
    main()
