"""Chapter 07's goals, measured side by side with the real Prometheus (Debian's 2.42) in one run.

latency: the differential test's data set (``tests/prometheus/realprom.py``, ``--instances`` demo instances) loaded
  into both; every query of its corpus asked of both as a range query (``--repeat`` times, the fastest kept); the
  per-query ratio sim/real printed as median and p95 (goal <= 2x). The real one is asked over loopback HTTP, the sim's
  ``Engine`` in process (its answer serialized to JSON, as the API would).
ingest: ``--series`` active series (default 50,000) served by ``--targets`` loopback exporters, scraped every 5 s
  for ``--seconds`` by both at once: the real Prometheus, and the sim's scrape manager over the sim's ``Storage``
  in a process of its own. "Without falling behind": every target scraped each interval (``up`` samples per
  target), the longest scrape under the interval, all series stored; memory: the peak RSS of each process (goal:
  sim <= 2x real).
Usage: python benchmarks/prometheus.py [latency|ingest|all] [--series 50000] [--seconds 60]
"""

from __future__ import annotations

import os
import sys

# run as a script, this file's folder comes first on sys.path, where benchmarks/gitlab.py would hide ``gitlab``
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from labkit.core.network import free_port  # noqa: E402
from labkit.prometheus.promql import Engine, PromQLError  # noqa: E402
from labkit.prometheus.tsdb import Storage  # noqa: E402
from tests.prometheus import realprom  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# -- latency ------------------------------------------------------------------------------------------------------
def latency(instances: int, repeat: int) -> dict[str, float]:
    samples = realprom.dataset(instances=instances)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"latency: {len(samples):,} samples of {len({json.dumps(s[0], sort_keys=True) for s in samples}):,} "
              "series loaded into both…", flush=True)
        storage = Storage(work / "sim", retention_seconds=365 * 86400)
        storage.append(samples)
        engine = Engine(storage)
        real = realprom.RealPrometheus(work, samples)
        params = {"start": realprom.T0 + 900, "end": realprom.T0 + 3300, "step": 37}
        ratios, ours_t, real_t, asked = [], [], [], []
        try:
            queries = [q for q in realprom.corpus() if not q.startswith('"')]
            for i, query in enumerate(queries):
                best_real = best_ours = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    answer = real.query("query_range", {"query": query, **params})
                    best_real = min(best_real, time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    with contextlib.suppress(PromQLError):
                        json.dumps(engine.range(query, params["start"], params["end"], params["step"]))
                    best_ours = min(best_ours, time.perf_counter() - t0)
                if answer["status"] != "success":
                    continue  # errors are not a latency
                ratios.append(best_ours / best_real)
                asked.append(query)
                ours_t.append(best_ours)
                real_t.append(best_real)
                if i % 40 == 0:
                    print(f"  {i}/{len(queries)} queries", flush=True)
        finally:
            real.close()
            storage.close()
    worst = sorted(zip(ratios, asked, strict=True))[-5:]
    result = {"queries": len(ratios), "ratio_median": statistics.median(ratios), "ratio_p95": pct(ratios, 0.95),
              "sim_median_ms": statistics.median(ours_t) * 1000, "real_median_ms": statistics.median(real_t) * 1000,
              "sim_p95_ms": pct(ours_t, 0.95) * 1000, "real_p95_ms": pct(real_t, 0.95) * 1000}
    print(f"latency over {len(ratios)} range queries: sim/real median {result['ratio_median']:.2f}x, "
          f"p95 {result['ratio_p95']:.2f}x (sim median {result['sim_median_ms']:.1f} ms, p95 "
          f"{result['sim_p95_ms']:.1f} ms; real median {result['real_median_ms']:.1f} ms, p95 "
          f"{result['real_p95_ms']:.1f} ms)")
    for ratio, query in reversed(worst):
        print(f"  {ratio:5.1f}x  {query}")
    return result


# -- ingest -------------------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.exporter.body(self.server.index)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Exporter:
    """``targets`` loopback /metrics endpoints with ``per_target`` counters each, their values moving."""

    def __init__(self, targets: int, per_target: int) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        self.per_target = per_target
        for index in range(targets):
            server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
            server.exporter, server.index = self, index  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def body(self, target: int) -> bytes:
        tick = int(time.time() // 5)
        lines = ["# HELP bench_requests_total Requests.", "# TYPE bench_requests_total counter"]
        lines += [f'bench_requests_total{{series="{i}",shard="{i % 16}"}} {tick * (i % 7 + 1)}'
                  for i in range(self.per_target)]
        return ("\n".join(lines) + "\n").encode()

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


def scrape_config(addresses: list[str]) -> str:
    return ("global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n  - job_name: bench\n"
            "    static_configs:\n      - targets: [" + ", ".join(addresses) + "]\n")


def sim_ingest(config_path: str, data: str, seconds: float) -> None:
    """The sim's side, in its own process: scrape manager + storage for ``seconds``; prints its stats as JSON."""
    from labkit.prometheus.config import load
    from labkit.prometheus.scrape.manager import ScrapeManager

    storage = Storage(data, retention_seconds=86400)

    async def run() -> None:
        manager = ScrapeManager(load(config_path), storage)
        await manager.start()
        await asyncio.sleep(seconds)
        await manager.stop()

    asyncio.run(run())
    engine = Engine(storage)
    now = time.time()
    window = f"{int(seconds)}s"
    stats = {
        "series": _scalar(engine, "count(bench_requests_total)", now),
        "samples": storage.stats()["numSamples"],
        "max_scrape_s": _scalar(engine, f"max(max_over_time(scrape_duration_seconds[{window}]))", now),
        "min_scrapes_per_target": _scalar(engine, f"min(count_over_time(up[{window}]))", now),
        "scraped_last": _scalar(engine, "sum(last_over_time(scrape_samples_scraped[1m]))", now),
    }
    storage.close()
    print(json.dumps(stats), flush=True)


def _scalar(engine: Engine, query: str, at: float) -> float:
    result = engine.instant(query, at)["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def ingest(series: int, targets: int, seconds: float) -> dict[str, Any]:
    exporter = Exporter(targets, series // targets)
    config = scrape_config(exporter.addresses)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "prometheus.yml").write_text(config)
        port = free_port()
        real_log = open(work / "real.log", "wb")  # noqa: SIM115
        real = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'real'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=real_log, stderr=subprocess.STDOUT)
        sim = subprocess.Popen([sys.executable, __file__, "_sim-ingest", str(work / "prometheus.yml"),
                                str(work / "sim"), str(seconds)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        peak = {"real": 0, "sim": 0}
        started = time.monotonic()
        print(f"ingest: {series:,} series on {targets} targets, scraped every 5 s by both for {seconds:.0f} s…",
              flush=True)
        try:
            while sim.poll() is None:
                for name, proc in (("real", real), ("sim", sim)):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        peak[name] = max(peak[name], psutil.Process(proc.pid).memory_info().rss)
                elapsed = time.monotonic() - started
                if int(elapsed) % 10 == 0:
                    print(f"  {elapsed:.0f} s: RSS real {peak['real'] / 2**20:.0f} MiB, sim {peak['sim'] / 2**20:.0f} "
                          "MiB", flush=True)
                time.sleep(1)
            assert sim.stdout is not None
            sim_stats = json.loads(sim.stdout.read().strip().splitlines()[-1])
            api = realprom.RealPrometheus.__new__(realprom.RealPrometheus)
            api.url = f"http://127.0.0.1:{port}"
            window = f"{int(seconds)}s"

            def real_scalar(query: str) -> float:
                result = api.query("query", {"query": query})["data"]["result"]
                return float(result[0]["value"][1]) if result else float("nan")

            real_stats = {
                "series": real_scalar("count(bench_requests_total)"),
                "max_scrape_s": real_scalar(f"max(max_over_time(scrape_duration_seconds[{window}]))"),
                "min_scrapes_per_target": real_scalar(f'min(count_over_time(up{{job="bench"}}[{window}]))'),
                "scraped_last": real_scalar('sum(scrape_samples_scraped{job="bench"})'),
            }
        finally:
            real.terminate()
            real.wait(30)
            real_log.close()
            exporter.close()
    expected = seconds / 5
    result = {"sim": {**sim_stats, "peak_rss_mib": peak["sim"] / 2**20},
              "real": {**real_stats, "peak_rss_mib": peak["real"] / 2**20},
              "memory_ratio": peak["sim"] / max(peak["real"], 1), "expected_scrapes": expected}
    for name in ("sim", "real"):
        s = result[name]
        print(f"{name}: {s['series']:,.0f} series, samples per scrape {s['scraped_last']:,.0f}, longest scrape "
              f"{s['max_scrape_s']:.2f} s, fewest scrapes of a target {s['min_scrapes_per_target']:.0f} "
              f"(~{expected:.0f} expected), peak RSS {s['peak_rss_mib']:.0f} MiB")
    print(f"memory sim/real: {result['memory_ratio']:.2f}x")
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_sim-ingest":
        sim_ingest(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all", choices=["latency", "ingest", "all"])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if not realprom.available():
        sys.exit("Debian's prometheus is not installed (scripts/test.sh installs it)")
    if args.what in ("latency", "all"):
        latency(args.instances, args.repeat)
    if args.what in ("ingest", "all"):
        ingest(args.series, args.targets, args.seconds)


if __name__ == "__main__":
    main()
