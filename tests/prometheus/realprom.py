"""The differential test's and the benchmark's shared pieces: a deterministic data set in the shape of the PromQL
compliance tester's demo service (counters with a reset, gauges, classic histograms, an intermittent series), the
real Prometheus (Debian's 2.42) serving it from blocks made by ``promtool tsdb create-blocks-from openmetrics``,
the query corpus, and the comparison with a tolerance."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.core.network import free_port

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, the first sample
INTERVAL = 15
HOURS = 1
END = T0 + HOURS * 3600
BUCKETS = ("0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")

Sample = tuple[dict[str, str], int, float]


def dataset(instances: int = 3, seed: int = 7) -> list[Sample]:
    """Every sample, scrape-like: one scrape per instance every 15 s with a few ms of jitter."""
    rng = random.Random(seed)
    out: list[Sample] = []
    counters: dict[tuple, float] = {}
    steps = HOURS * 3600 // INTERVAL
    for step in range(steps):
        for i in range(instances):
            instance = f"demo-{i}:8080"
            t_ms = (T0 + step * INTERVAL) * 1000 + rng.randint(0, 40)
            base = {"instance": instance, "job": "demo"}

            def counter(name: str, labels: dict[str, str], inc: float, t_ms: int = t_ms) -> None:
                k = (name, tuple(sorted(labels.items())))
                counters[k] = counters.get(k, 0.0) + inc
                out.append(({"__name__": name, **labels}, t_ms, round(counters[k], 6)))

            for mode, share in (("user", 0.6), ("system", 0.3), ("idle", 3.1)):
                if i == 1 and mode == "user" and step == steps // 2:
                    counters[("demo_cpu_usage_seconds_total", tuple(sorted({**base, "mode": mode}.items())))] = 0
                counter("demo_cpu_usage_seconds_total", {**base, "mode": mode}, share * INTERVAL * rng.uniform(.8, 1.2))
            for kind, size in (("buffers", 2e8), ("cached", 8e8), ("free", 4e9)):
                out.append(({"__name__": "demo_memory_usage_bytes", **base, "type": kind}, t_ms,
                             round(size * (1 + 0.1 * math.sin(step / 17 + i)), 1)))
            out.append(({"__name__": "demo_num_cpus", **base}, t_ms, 4.0 if i else 2.0))
            for method, path in (("GET", "/api/foo"), ("POST", "/api/bar")):
                for status in ("200", "500"):
                    labels = {**base, "method": method, "path": path, "status": status}
                    n = rng.randint(5, 30) if status == "200" else rng.randint(0, 3)
                    durations = [rng.expovariate(8 if status == "200" else 2) for _ in range(n)]
                    for le in BUCKETS:
                        bound = float(le.replace("Inf", "inf"))
                        counter("demo_api_request_duration_seconds_bucket", {**labels, "le": le},
                                sum(1 for d in durations if d <= bound))
                    counter("demo_api_request_duration_seconds_sum", labels, sum(durations))
                    counter("demo_api_request_duration_seconds_count", labels, n)
            if (step // 40) % 2 == 0:  # scraped for 10 minutes, missing for 10
                out.append(({"__name__": "demo_intermittent_metric", **base}, t_ms, float(step % 7)))
            out.append(({"__name__": "demo_batch_last_success_timestamp_seconds", **base}, t_ms,
                         float(T0 + (step // 20) * 300)))
    return out


def openmetrics(samples: list[Sample]) -> str:
    """The samples as an OpenMetrics text (families grouped, untyped) for ``promtool``."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s[0]["__name__"], []).append(s)
    lines = []
    for name, items in by_name.items():
        lines.append(f"# TYPE {name} unknown")
        for labels, t_ms, v in items:
            inner = ",".join(f'{k}="{val}"' for k, val in labels.items() if k != "__name__")
            lines.append(f"{name}{{{inner}}} {v!r} {t_ms / 1000:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class RealPrometheus:
    """Debian's Prometheus on a loopback port, for the life of the object: serving a data set from blocks, or
    scraping what its configuration names (rule files relative to ``workdir``)."""

    def __init__(self, workdir: Path, samples: list[Sample] | None = None,
                 config: str = "global:\n  scrape_interval: 15s\n") -> None:
        """Serve ``samples`` (written as blocks with promtool) or scrape what ``config`` names."""
        self.workdir = workdir
        data = workdir / "data"
        if samples is not None:
            source = workdir / "samples.om"
            source.write_text(openmetrics(samples))
            subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                           check=True, capture_output=True, timeout=300)
        config_file = workdir / "prometheus.yml"
        config_file.write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config_file}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y",
             "--query.lookback-delta=5m"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def query(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(f"{self.url}/api/v1/{path}", data=body)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def available() -> bool:
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


# -- the corpus: the kinds of queries the PromQL compliance tester runs ---------------------------------------------
COUNTER = "demo_cpu_usage_seconds_total"
GAUGE = "demo_memory_usage_bytes"
HIST = "demo_api_request_duration_seconds"


def corpus() -> Iterator[str]:
    yield from [
        "1", "-1.5", "1 + 2 * 3", "2 ^ 3 ^ 2", "5 % 3", "1 > bool 0", "time()", "vector(1)", "scalar(demo_num_cpus)",
        '"a string"', "demo_num_cpus", "{__name__=~\"demo_num.*\"}", f"{GAUGE}", f'{GAUGE}{{type="free"}}',
        f'{GAUGE}{{type!="free"}}', f'{GAUGE}{{type=~"c.*|b.*"}}', f'{GAUGE}{{type!~"c.*"}}',
        f'{GAUGE}{{instance=~"demo-[01].*",type="free"}}', "nonexistent_metric", "demo_intermittent_metric",
        f"{GAUGE} offset 5m", f"{GAUGE} offset 1m30s", f"{GAUGE} @ {T0 + 1800}", f"{GAUGE} @ {T0 + 1800} offset 2m",
        f"{GAUGE} @ start()", f"{GAUGE} @ end()", f"-{GAUGE}", f"timestamp({GAUGE})",
        "timestamp(demo_intermittent_metric)",
    ]
    for fn in ("rate", "irate", "increase", "delta", "idelta", "resets", "changes", "deriv"):
        for rng in ("1m", "5m", "15m"):
            yield f"{fn}({COUNTER}[{rng}])"
    for fn in ("avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present"):
        yield f"{fn}_over_time({GAUGE}[5m])"
        yield f"{fn}_over_time(demo_intermittent_metric[2m])"
    yield from [f"quantile_over_time(0.9, {GAUGE}[10m])", f"quantile_over_time(0.5, {COUNTER}[5m])",
                "absent_over_time(demo_intermittent_metric[1m])", "absent_over_time(nonexistent[5m])",
                f"predict_linear({GAUGE}[10m], 600)", f"holt_winters({GAUGE}[10m], 0.5, 0.5)",
                f"rate({COUNTER}[5m] offset 10m)", f"rate({COUNTER}[5m] @ {T0 + 1500})",
                f"max_over_time(rate({COUNTER}[1m])[10m:1m])", f"max_over_time(rate({COUNTER}[1m])[10m:])",
                f"avg_over_time({GAUGE}[10m:30s] offset 2m)", f"min_over_time(sum by (instance) ({GAUGE})[7m:45s])",
                f"rate(sum by (instance) ({COUNTER})[5m:20s])"]
    for agg in ("sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"):
        yield f"{agg}({GAUGE})"
        yield f"{agg} by (type) ({GAUGE})"
        yield f"{agg} without (instance) ({GAUGE})"
        yield f"{agg} by (mode) (rate({COUNTER}[5m]))"
    for agg in ("topk", "bottomk"):
        yield f"{agg}(2, {GAUGE})"
        yield f"{agg} by (instance) (1, {GAUGE})"
    yield from [f"topk(100, {GAUGE})", f"topk(0, {GAUGE})", f'bottomk(2, ln({GAUGE}{{type="free"}} - 4e9))',
                f'topk(1, ln({GAUGE}{{type="free"}} - 4e9))',
                f"quantile_over_time(-1, {GAUGE}[5m])", f"quantile_over_time(1.5, {GAUGE}[5m])",
                f"holt_winters({GAUGE}[10m], 1, 0.5)", f"stddev_over_time({COUNTER}[15m])"]
    yield from [f"quantile(0.5, {GAUGE})", f"quantile by (type) (0.9, {GAUGE})", f"quantile(1.5, {GAUGE})",
                'count_values("cpus", demo_num_cpus)', 'count_values by (instance) ("v", demo_intermittent_metric)']
    for op in ("+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<="):
        yield f"{GAUGE} {op} 1e9"
        yield f"2 {op} demo_num_cpus"
    for op in ("==", "!=", ">", "<"):
        yield f"{GAUGE} {op} bool 1e9"
        yield f"{GAUGE} {op} on(instance, type) {GAUGE} offset 1m"
    yield from [
        f"{GAUGE} / on(instance, job) group_left demo_num_cpus",
        f"demo_num_cpus * on(instance) group_right {GAUGE}",
        f"{GAUGE} / ignoring(type) group_left demo_num_cpus",
        f"rate({COUNTER}[5m]) / on(instance) group_left(job) demo_num_cpus",
        f"sum by (instance) (rate({COUNTER}[5m])) / on(instance) demo_num_cpus",
        f"sum by (instance, job) ({GAUGE}) - ignoring(job) sum by (instance, job) ({GAUGE})",
        f"{GAUGE} and {GAUGE}{{type=\"free\"}}", f"{GAUGE} or demo_num_cpus",
        f"{GAUGE} unless {GAUGE}{{type=\"free\"}}",
        f"{GAUGE} and on(instance) demo_intermittent_metric", f"demo_num_cpus or on(instance) {GAUGE}",
        f"demo_intermittent_metric unless ignoring(type) {GAUGE}",
        f"{GAUGE} + {GAUGE}", f"{GAUGE} * {GAUGE} offset 5m", "demo_num_cpus atan2 demo_num_cpus",
        f"(sum by (instance) ({GAUGE}) > 5e9) * 2",
    ]
    for q in ("0.5", "0.9", "0.99", "0", "1", "-1", "2"):
        yield f"histogram_quantile({q}, rate({HIST}_bucket[5m]))"
    yield from [
        f"histogram_quantile(0.95, sum by (le) (rate({HIST}_bucket[5m])))",
        f"histogram_quantile(0.9, sum by (le, status) (rate({HIST}_bucket[10m])))",
        f"histogram_quantile(0.5, sum without (instance) (rate({HIST}_bucket[1m])))",
        f"sum(rate({HIST}_sum[5m])) / sum(rate({HIST}_count[5m]))",
        f'sum(rate({HIST}_count{{status="500"}}[5m])) / sum(rate({HIST}_count[5m]))',
        f'sum by (instance) (rate({HIST}_count{{status="500"}}[5m])) / sum by (instance) (rate({HIST}_count[5m]))',
    ]
    for fn in ("abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn"):
        yield f"{fn}(demo_intermittent_metric - 3)"
    yield from [
        f"round({GAUGE} / 1e8)", f"round({GAUGE} / 1e8, 0.5)", f"clamp({GAUGE}, 3e8, 1e9)",
        f"clamp_min({GAUGE}, 1e9)", f"clamp_max({GAUGE}, 1e9)", f"clamp({GAUGE}, 2, 1)",
        f'label_replace({GAUGE}, "port", "$1", "instance", ".*:(.*)")',
        f'label_replace({GAUGE}, "foo", "bar-$1", "type", "(c).*")',
        f'label_replace({GAUGE}, "instance", "", "type", "free")',
        f'label_join({GAUGE}, "new", "-", "instance", "type")', f'label_join({GAUGE}, "type", "", "nope")',
        f"sort({GAUGE})", f"sort_desc({GAUGE})", f"absent({GAUGE})", 'absent(nonexistent{job="a",x=~"y"})',
        "absent(nonexistent)", f"vector(time()) - on() group_left {GAUGE}",
        "minute()", "hour()", "day_of_week()", "day_of_month()", "days_in_month()", "month()", "year()",
        "day_of_year()", "hour(demo_batch_last_success_timestamp_seconds)",
        "time() - demo_batch_last_success_timestamp_seconds",
        f"scalar(sum({GAUGE})) / 1e9", f"sum({GAUGE}) / scalar(count({GAUGE}))",
        f"count(count by (instance) ({GAUGE}))", f"max by (instance) (topk(1, {GAUGE}))",
        # errors (judged by errorType)
        f"{GAUGE} + on(instance) {GAUGE}", f"{GAUGE}{{type=~\"(\"}}", "sum(", "rate(demo_num_cpus)",
        f"label_replace({GAUGE}, \"1bad\", \"x\", \"type\", \".*\")", f"{GAUGE}[5m]", f"{GAUGE}[5m:1m]",
    ]


# -- comparison ---------------------------------------------------------------------------------------------------
def _close(a: str, b: str, fraction: float = 1e-5) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= fraction * max(abs(x), abs(y)) + 1e-12


def has_data(answer: dict[str, Any]) -> bool:
    """An error, a scalar or string, or a vector/matrix with at least one series."""
    return answer["status"] == "error" or answer["data"]["resultType"] in ("scalar", "string") \
        or bool(answer["data"]["result"])


def _series_key(item: dict[str, Any]) -> str:
    return json.dumps(item["metric"], sort_keys=True)


def same_result(real: dict[str, Any], ours: dict[str, Any], ordered: bool = False) -> tuple[bool, str]:
    """Whether two API answers agree: both errors of the same type, or equal data within the tolerance."""
    if real["status"] != ours["status"]:
        return False, f"status {real['status']} ({real.get('error')}) vs {ours['status']} ({ours.get('error')})"
    if real["status"] == "error":
        ok = real["errorType"] == ours["errorType"]
        return ok, "" if ok else f"errorType {real['errorType']} vs {ours['errorType']}"
    rd, od = real["data"], ours["data"]
    if rd["resultType"] != od["resultType"]:
        return False, f"resultType {rd['resultType']} vs {od['resultType']}"
    if rd["resultType"] in ("scalar", "string"):
        ok = rd["result"][0] == od["result"][0] and _close(rd["result"][1], od["result"][1])
        return ok, "" if ok else f"{rd['result']} vs {od['result']}"
    rr, orr = rd["result"], od["result"]
    if not ordered:
        rr, orr = sorted(rr, key=_series_key), sorted(orr, key=_series_key)
    if [_series_key(x) for x in rr] != [_series_key(x) for x in orr]:
        return False, f"series {[x['metric'] for x in rr][:4]} vs {[x['metric'] for x in orr][:4]}"
    for a, b in zip(rr, orr, strict=True):
        pa = a.get("values") or [a["value"]]
        pb = b.get("values") or [b["value"]]
        if len(pa) != len(pb):
            return False, f"{a['metric']}: {len(pa)} points vs {len(pb)}"
        for (ta, va), (tb, vb) in zip(pa, pb, strict=True):
            if ta != tb or not _close(va, vb):
                return False, f"{a['metric']} at {ta}: {va} vs {tb} {vb}"
    return True, ""
