"""Kubernetes API server of the sim lab: latency, LIST size, watch delivery, concurrent writers.

Starts its own lab in a temporary home, drives it over HTTPS with keep-alive
connections (as client-go does), prints the numbers, and stops the lab.
Usage: python benchmarks/kube_api.py [--quick]
Goals (issue 3): GET p50 <= 5 ms, LIST of 1,000 pods <= 150 ms, watch delivery <= 20 ms,
50 concurrent clients for 30 s with no 5xx and no lost update.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from labkit import control
from labkit.core.paths import LabPaths


class Client:
    """One keep-alive HTTPS connection with the lab's admin token."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = yaml.safe_load(kubeconfig.read_text())
        self.base = cfg["clusters"][0]["cluster"]["server"]
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override the lab CA
        self.s.headers["Authorization"] = f"Bearer {cfg['users'][0]['user']['token']}"
        self.s.verify = str(kubeconfig.parent / "tls" / "ca.crt")

    def call(self, method: str, path: str, body: object = None, ctype: str = "application/json"
             ) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        return self.s.request(method, self.base + path, data=data, headers={"Content-Type": ctype}, timeout=30)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def bench_get(c: Client, n: int) -> tuple[float, float]:
    c.call("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "bench-get"}, "data": {"a": "b"}})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = c.call("GET", "/api/v1/namespaces/default/configmaps/bench-get")
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return statistics.median(times), pct(times, 0.99)


def bench_list(kubeconfig: Path, pods: int) -> float:
    clients = [Client(kubeconfig) for _ in range(8)]
    clients[0].call("POST", "/api/v1/namespaces", {"metadata": {"name": "bench-list"}})

    def make(i: int) -> None:
        # a scheduler nobody runs: the pods stay Pending, so this measures the API server, not the kubelets
        pod = {"metadata": {"name": f"p-{i:04d}", "labels": {"app": "bench", "n": str(i % 10)}},
               "spec": {"schedulerName": "benchmark-unscheduled",
                        "containers": [{"name": "c", "image": "shop/catalog:1",
                                        "ports": [{"containerPort": 8080}]}]}}
        r = clients[i % 8].call("POST", "/api/v1/namespaces/bench-list/pods", pod)
        assert r.status_code == 201, r.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(pods)))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        r = clients[0].call("GET", "/api/v1/namespaces/bench-list/pods")
        times.append((time.perf_counter() - t) * 1000)
        assert len(r.json()["items"]) == pods
    return statistics.median(times)


def bench_watch(kubeconfig: Path, n: int) -> tuple[float, float]:
    writer, watcher = Client(kubeconfig), Client(kubeconfig)
    writer.call("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "bench-watch"}})
    rv = writer.call("GET", "/api/v1/namespaces/default/configmaps/bench-watch").json()["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    stream = watcher.s.get(watcher.base + "/api/v1/namespaces/default/configmaps?watch=1"
                           f"&fieldSelector=metadata.name=bench-watch&resourceVersion={rv}", stream=True, timeout=60)

    def read() -> None:
        for line in stream.iter_lines():
            ev = json.loads(line)
            got[ev["object"]["data"]["i"]] = time.perf_counter()
            if len(got) == n:
                return

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(n):
        sent[str(i)] = time.perf_counter()
        writer.call("PATCH", "/api/v1/namespaces/default/configmaps/bench-watch", {"data": {"i": str(i)}},
                    "application/merge-patch+json")
        time.sleep(0.005)
    reader.join(30)
    stream.close()
    lat = [(got[k] - sent[k]) * 1000 for k in sent if k in got]
    assert len(lat) == n, f"{len(lat)} of {n} watch events arrived"
    return statistics.median(lat), pct(lat, 0.99)


def bench_concurrency(kubeconfig: Path, clients: int, seconds: float) -> dict[str, int]:
    """Each client creates its own object, then read-modify-writes a shared counter (retrying on 409)
    and its own object, and deletes and recreates; at the end every acknowledged increment must be there."""
    setup = Client(kubeconfig)
    setup.call("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "counter"},
                                                                 "data": {"n": "0"}})
    stats = {"requests": 0, "5xx": 0, "conflicts": 0, "acked": 0, "creates": 0, "deletes": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        c = Client(kubeconfig)
        local = {k: 0 for k in stats}
        path = "/api/v1/namespaces/default/configmaps"
        while time.monotonic() < deadline:
            name = f"w-{i}"
            r = c.call("POST", path, {"metadata": {"name": name}, "data": {"v": "0"}})
            local["requests"] += 1
            local["5xx"] += r.status_code >= 500
            local["creates"] += r.status_code == 201
            for _ in range(5):
                while True:
                    cur = c.call("GET", f"{path}/counter").json()
                    cur["data"]["n"] = str(int(cur["data"]["n"]) + 1)
                    r = c.call("PUT", f"{path}/counter", cur)
                    local["requests"] += 2
                    local["5xx"] += r.status_code >= 500
                    if r.status_code == 409:
                        local["conflicts"] += 1
                        continue
                    if r.status_code == 200:
                        local["acked"] += 1
                    break
            r = c.call("DELETE", f"{path}/{name}")
            local["requests"] += 1
            local["5xx"] += r.status_code >= 500
            local["deletes"] += r.status_code == 200
        with lock:
            for k, v in local.items():
                stats[k] += v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = int(setup.call("GET", "/api/v1/namespaces/default/configmaps/counter").json()["data"]["n"])
    stats["counter"] = final
    stats["lost updates"] = stats["acked"] - final
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    gets, pods, events, seconds = (200, 200, 50, 5.0) if args.quick else (2000, 1000, 300, 30.0)
    with tempfile.TemporaryDirectory(prefix="labkit-bench-kube-") as home:
        paths = LabPaths.resolve(home)
        control.up(paths)
        try:
            c = Client(paths.kubeconfig)
            p50, p99 = bench_get(c, gets)
            print(f"GET configmap          p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({gets} requests)")
            print(f"LIST {pods} pods         median {bench_list(paths.kubeconfig, pods):6.1f} ms")
            w50, w99 = bench_watch(paths.kubeconfig, events)
            print(f"watch delivery         p50 {w50:6.2f} ms   p99 {w99:6.2f} ms   (write sent -> event read)")
            stats = bench_concurrency(paths.kubeconfig, 50, seconds)
            print(f"50 clients, {seconds:.0f} s       " + ", ".join(f"{k} {v}" for k, v in stats.items()))
        finally:
            control.down(paths)


if __name__ == "__main__":
    main()
