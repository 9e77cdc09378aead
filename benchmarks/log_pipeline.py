"""Chapter 08's goals, measured. ``ingest``: a container's lines through the node's log files and the collector into
Elasticsearch; (``search``, the aggregation half, is Elasticsearch's own).

ingest: a writer process stands in for a container and writes JSON lines through the kubelet's CRI log writer
(``labkit.kube.node.crilog``, rotation at 10 MiB included) at ``--rate`` lines/s for ``--seconds``; one collector
process (``python -m labkit.logging.fluentbit``) runs the chapter's pipeline (``manifests/logging/fluent-bit.yaml``
with a ``parser`` filter merging the JSON line in place of its kubernetes filter, which needs a lab's API server,
and with ``generate_id`` off, so that a line sent twice would be counted twice) and is restarted (SIGTERM, start)
half-way. Measured: the time from a line's write to its being searchable (a probe line every 0.5 s, found by
``_count``; goal <= 2 s), the sustained rate (lines written / time until all are searchable; goal >= 5,000
lines/s), and every line's ``seq`` read back (none lost, none twice).
Usage: python benchmarks/log_pipeline.py ingest [--es URL --password PW] [--rate 6000] [--seconds 20]
"""

from __future__ import annotations

import os
import sys

# run as a script, this file's folder comes first on sys.path, and its name would hide the standard ``logging``
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import base64
import json
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit.kube.node.crilog import CriLog, container_id  # noqa: E402

WRITER = """
import json, sys, time
sys.path.insert(0, {root!r})
from labkit.kube.node.crilog import CriLog
log = CriLog(__import__("pathlib").Path({path!r}))
rate, seconds, run = {rate}, {seconds}, {run!r}
start, seq = time.time(), 0
while True:
    elapsed = time.time() - start
    if elapsed >= seconds:
        break
    due = min(int(elapsed * rate) + 1, int(seconds * rate))
    lines = []
    while seq < due:
        lines.append(json.dumps({{"run": run, "seq": seq, "level": "info", "service": "cart",
                                 "msg": "GET /cart 200", "trace_id": f"{{seq:032x}}"}}))
        seq += 1
    if lines:
        log.write("stdout", ("\\n".join(lines) + "\\n").encode())
    time.sleep(0.01)
log.close()
print(seq, flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Es:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def count(self, index: str, query: dict[str, Any]) -> int:
        try:
            return int(self.call("POST", f"/{index}/_count", {"query": query})["count"])
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return 0
            raise


def pipeline(config: Path) -> None:
    """The chapter's pipeline for the benchmark (see the module doc)."""
    text = (ROOT / "manifests" / "logging" / "fluent-bit.yaml").read_text()
    head, _, rest = text.partition("  filters:\n")
    _, _, outputs = rest.partition("  outputs:\n")
    merge = ("  filters:\n    - name: parser\n      match: kube.*\n      key_name: log\n      parser: json\n"
             "      reserve_data: on\n")
    parsers = "parsers:\n  - name: json\n    format: json\n"
    config.write_text(parsers + head + merge + "  outputs:\n" + outputs.replace("generate_id: on", "generate_id: off"))


class Collector:
    def __init__(self, config: Path, node_dir: Path, env: dict[str, str]) -> None:
        self.config, self.node_dir, self.env = config, node_dir, env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Starts the collector, its output appended to ``collector.log`` next to its config (a pipe nobody reads
        would stop it once full)."""
        log = self.config.parent / "collector.log"
        start = log.stat().st_size if log.exists() else 0
        with log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "labkit.logging.fluentbit", "-c", str(self.config),
                                          "--node", "bench", "--node-dir", str(self.node_dir), "--listen",
                                          f"127.0.0.1:{free_port()}"], env={**os.environ, **self.env}, cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT, text=True)
        while "started" not in log.read_text()[start:]:
            if self.proc.poll() is not None:
                raise SystemExit(f"the collector did not start: {log.read_text()[start:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        problems = [line for line in (self.config.parent / "collector.log").read_text().splitlines()
                    if "Traceback" in line or "ERROR" in line or "failed" in line]
        if problems:
            print(f"  the collector logged {len(problems)} problem lines, the first: {problems[0]}", flush=True)


def ingest(args: argparse.Namespace) -> int:
    with elasticsearch(args) as (es, _):
        return run_ingest(es, args)


def run_ingest(es: Es, args: argparse.Namespace) -> int:
    run = f"bench-{int(time.time())}"
    index = "logstash-*"
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        node = Path(tmp) / "node"
        pod_dir = node / "pods" / f"bench_writer_{run}" / "app"
        path = pod_dir / "0.log"
        link = node / "containers" / f"writer_bench_app-{container_id(run, 'app', 0)}.log"
        link.parent.mkdir(parents=True)
        pod_dir.mkdir(parents=True)
        path.touch()
        link.symlink_to(path)
        probe_log = CriLog(pod_dir.parent / "probe" / "0.log")
        probe_link = node / "containers" / f"probe_bench_app-{container_id(run, 'probe', 0)}.log"
        probe_link.symlink_to(probe_log.path)
        config = Path(tmp) / "fluent-bit.yaml"
        pipeline(config)
        host, _, port = es.url.split("://", 1)[1].rstrip("/").rpartition(":")
        password = base64.b64decode(es.auth.split()[1]).decode().partition(":")[2]
        env = {"ES_HOST": host, "ES_PORT": port, "ES_PASSWORD": password,
               "ES_TLS": "on" if es.url.startswith("https") else "off", "ES_TLS_VERIFY": "off"}
        collector = Collector(config, node, env)
        collector.start()
        latencies: list[float] = []
        done = threading.Event()

        def probe() -> None:
            k = 0
            while not done.is_set():
                marker = f"{run}-probe-{k}"
                began = time.time()
                probe_log.write("stdout", json.dumps({"run": run, "probe": marker}).encode() + b"\n")
                while not done.is_set() and es.count(index, {"term": {"probe.keyword": marker}}) < 1:
                    time.sleep(0.05)
                if not done.is_set():
                    latencies.append(time.time() - began)
                k += 1
                time.sleep(0.5)

        prober = threading.Thread(target=probe, daemon=True)
        writer = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(path),
                                                                        rate=args.rate, seconds=args.seconds,
                                                                        run=run)],
                                  stdout=subprocess.PIPE, text=True)
        began = time.time()
        prober.start()
        time.sleep(args.seconds / 2)
        collector.stop()
        print(f"collector restarted at {time.time() - began:.1f} s", flush=True)
        collector.start()
        written = int(writer.communicate()[0].strip())
        wrote_for = time.time() - began
        query = {"bool": {"filter": [{"term": {"run.keyword": run}}, {"exists": {"field": "seq"}}]}}
        last, seen = -1, 0
        while True:
            seen = es.count(index, query)
            if seen >= written:
                break
            if time.time() - began > args.seconds + 120:
                break
            if seen != last:
                print(f"  {seen}/{written} searchable", flush=True)
                last = seen
            time.sleep(0.2)
        all_in = time.time() - began
        done.set()
        prober.join(5)
        time.sleep(2)  # a line sent twice would be in by now
        seqs = read_back(es, index, query)
        collector.stop()
        probe_log.close()
    lost = written - len(set(seqs))
    twice = len(seqs) - len(set(seqs))
    rate = written / all_in
    lat = sorted(latencies)
    print(f"lines written: {written} in {wrote_for:.1f} s ({written / wrote_for:.0f}/s asked {args.rate}/s)")
    print(f"all searchable after {all_in:.1f} s: sustained {rate:.0f} lines/s (goal >= 5000)")
    if lat:
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        print(f"write -> searchable: median {statistics.median(lat):.2f} s, p95 {p95:.2f} s, max {lat[-1]:.2f} s "
              f"over {len(lat)} probes (goal <= 2 s)")
    print(f"across the collector restart: {lost} lost, {twice} twice (goal 0, 0)")
    return 0 if lost == 0 and twice == 0 else 1


def read_back(es: Es, index: str, query: dict[str, Any]) -> list[int]:
    """Every indexed line's ``seq`` (search_after over ``seq``)."""
    out: list[int] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"query": query, "size": 10000, "sort": [{"seq": "asc"}], "_source": ["seq"]}
        if after is not None:
            body["search_after"] = after
        hits = es.call("POST", f"/{index}/_search", body)["hits"]["hits"]
        if not hits:
            return out
        out += [h["_source"]["seq"] for h in hits]
        after = hits[-1]["sort"]


def search(args: argparse.Namespace) -> int:
    """``--lines`` shop-like JSON lines bulk-loaded into a fresh Elasticsearch (``python -m labkit.logging``, unless
    ``--es``), then a ``date_histogram`` (1 m) with a ``terms`` sub-aggregation on the level and a ``terms`` on the
    service, ``--runs`` times: latency (goal <= 1 s) and the server's resident memory (goal <= 300 MB)."""
    import psutil

    with elasticsearch(args) as (es, proc):
        return run_search(es, args, psutil.Process(proc.pid) if proc else None)


@contextmanager
def elasticsearch(args: argparse.Namespace) -> Iterator[tuple[Es, subprocess.Popen[str] | None]]:
    """``--es``, or a fresh Elasticsearch of the sim (``python -m labkit.logging``) in a temporary home."""
    if args.es:
        yield Es(args.es, args.user, args.password), None
        return
    with tempfile.TemporaryDirectory() as home:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.logging", "--home", home, "--listen",
                                 f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
            yield Es(info["url"], info["user"], info["password"]), proc
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def run_search(es: Es, args: argparse.Namespace, server: Any) -> int:
    levels, services = ("info", "info", "info", "warn", "error"), ("gateway", "catalog", "orders", "cart")
    start_ms, batch, loaded, t0 = 1714557600000, 5000, 0, time.monotonic()

    def load(n: int) -> None:
        body = "".join(
            '{"create":{"_index":"bench"}}\n' + json.dumps({
                "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((start_ms + i * 50) / 1000)) + "Z",
                "level": levels[i % 5], "service": services[i % 4], "msg": f"GET /items/{i % 997} 200",
                "trace_id": f"{i:032x}"}) + "\n" for i in range(loaded, loaded + n)).encode()
        req = urllib.request.Request(es.url + "/_bulk", data=body, method="POST", headers={
            "Authorization": es.auth, "Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=300) as r:
            assert not json.loads(r.read())["errors"]

    while loaded < args.lines:
        n = min(batch, args.lines - loaded)
        load(n)
        loaded += n
        if loaded % 100_000 == 0 or loaded == args.lines:
            print(f"  loaded {loaded:,} lines ({loaded / (time.monotonic() - t0):,.0f}/s)", flush=True)
    es.call("POST", "/bench/_refresh")
    query = {"size": 0, "aggs": {
        "per_minute": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"},
                       "aggs": {"levels": {"terms": {"field": "level.keyword"}}}},
        "services": {"terms": {"field": "service.keyword"}}}}
    times = []
    for k in range(args.runs):
        t = time.monotonic()
        out = es.call("POST", "/bench/_search", query)
        times.append(time.monotonic() - t)
        print(f"  run {k + 1}: {times[-1]:.3f} s", flush=True)
    assert sum(b["doc_count"] for b in out["aggregations"]["services"]["buckets"]) == args.lines
    load(1000)  # a second of a busy cluster's ingest, then the same aggregation over the grown index
    loaded += 1000
    es.call("POST", "/bench/_refresh")
    t = time.monotonic()
    out = es.call("POST", "/bench/_search", query)
    print(f"  after 1,000 more lines: {time.monotonic() - t:.3f} s", flush=True)
    assert sum(b["doc_count"] for b in out["aggregations"]["services"]["buckets"]) == loaded
    median = statistics.median(times)
    rss = server.memory_info().rss / 2**20 if server else float("nan")
    print(f"date_histogram + terms over {args.lines:,} lines: median {median:.3f} s, max {max(times):.3f} s "
          f"(goal <= 1 s); server RSS {rss:.0f} MB (goal <= 300 MB)")
    return 0 if median <= 1.0 and (not server or rss <= 300) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ingest", help="container -> node log -> collector -> Elasticsearch")
    p.add_argument("--es", default="", help="Elasticsearch's URL (default: start python -m labkit.logging)")
    p.add_argument("--user", default="elastic")
    p.add_argument("--password", default="")
    p.add_argument("--rate", type=int, default=6000, help="lines/s the container writes")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--dir", default=None, help="where the node's log folder goes (default: the temp folder)")
    p = sub.add_parser("search", help="date_histogram + terms over --lines lines, and the server's memory")
    p.add_argument("--es", default="", help="Elasticsearch's URL (default: start python -m labkit.logging)")
    p.add_argument("--user", default="elastic")
    p.add_argument("--password", default="")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.exit(ingest(args) if args.what == "ingest" else search(args))


if __name__ == "__main__":
    main()
