"""Chapter 09's goals, measured.

``--trace-latency``: how long after a request's spans end its trace is queryable in Jaeger (goal <= 2 s). A
gateway -> catalog request is traced with the real OpenTelemetry SDK (two services, ``traceparent`` injected and
extracted) and exported by OTLP/HTTP; the clock starts when the request's root span ends and stops when
``/api/traces/{id}`` returns all its spans (polled every 10 ms). Measured twice: with the shop's exporter settings
(``BatchSpanProcessor``, 1 s schedule delay, as ``apps/shopkit/telemetry.py``) and with spans exported as they end
(``SimpleSpanProcessor``: the receiver, store and query alone). With ``--through-envoy``, also a sidecar's own
span: one real Envoy configured by the sim's istiod (``labkit.mesh.translate`` + ``labkit.mesh.xds``, its
OpenTelemetry tracer pointed at Jaeger) in front of a small app; the clock starts when the response through its
inbound listener arrives and stops when Envoy's span is queryable. Jaeger is started on its own
(``python -m labkit.mesh.jaeger``) unless ``--jaeger``/``--otlp`` name a running one (a lab's).

``--lab-memory``: the memory of a running sim lab (``LABKIT_HOME``) by part — the lab daemon, the sidecars' Envoys
and agents, the shop's app processes, HAProxy — as RSS and PSS (shared pages counted once over all processes), with
the goals: a sidecar's Envoy <= 40 MB, the meshed shop (apps, Envoys, agents) <= 1.2 GB.

``--config-latency``: on a running sim lab with the shop meshed, how long after ``kubectl apply`` of a changed
VirtualService every sidecar's Envoy has it (its admin ``/config_dump`` shows the new weights; goal <= 1 s).

Usage: python benchmarks/mesh.py --trace-latency [--traces 40] [--through-envoy] [--jaeger URL --otlp URL]
       python benchmarks/mesh.py --lab-memory   (after ``labkit up`` and ``lab.mesh.enable("shop")``)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 2.0


@contextmanager
def standalone_jaeger() -> Iterator[tuple[str, str]]:
    """(query URL, OTLP URL) of a Jaeger of its own in a temporary home."""
    with tempfile.TemporaryDirectory(prefix="jaeger-bench-") as home:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.mesh.jaeger", "--home", home], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ep = json.loads(proc.stdout.readline())
            yield ep["url"], ep["otlp"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _spans_in(jaeger: str, trace_id: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{jaeger}/api/traces/{trace_id}", timeout=5) as r:
            return len(json.load(r)["data"][0]["spans"])
    except OSError:
        return 0


def trace_latency(jaeger: str, otlp: str, traces: int = 40, batch: bool = True) -> list[float]:
    """Seconds from each request's root span ending to its 3 spans being queryable."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    providers = []
    for name in ("bench-gateway", "bench-catalog"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        exporter = OTLPSpanExporter(endpoint=f"{otlp}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000) if batch
                                    else SimpleSpanProcessor(exporter))
        providers.append(provider)
    gateway, catalog = (p.get_tracer("bench") for p in providers)
    latencies = []
    try:
        for i in range(traces):
            time.sleep(random.uniform(0, 0.3))  # requests arrive at any point of the exporter's schedule
            with gateway.start_as_current_span("GET /shop", kind=SpanKind.SERVER) as root:
                with gateway.start_as_current_span("GET", kind=SpanKind.CLIENT):
                    headers: dict[str, str] = {}
                    propagator.inject(headers)
                ctx = propagator.extract(headers)  # what the catalog reads off the wire
                with catalog.start_as_current_span("GET /products", context=ctx, kind=SpanKind.SERVER):
                    pass
            ended = time.monotonic()
            trace_id = format(root.get_span_context().trace_id, "032x")
            while _spans_in(jaeger, trace_id) < 3:
                if time.monotonic() - ended > 30:
                    raise RuntimeError(f"trace {trace_id} not queryable after 30 s")
                time.sleep(0.01)
            latencies.append(time.monotonic() - ended)
            if (i + 1) % 10 == 0:
                print(f"  {i + 1}/{traces} traces, last {latencies[-1] * 1000:.0f} ms", flush=True)
    finally:
        for p in providers:
            p.shutdown()
    return latencies


@contextmanager
def meshed_app(otlp: str, home: Path) -> Iterator[str]:
    """A 'catalog' app with its sidecar, configured by the translation; yields the inbound listener's URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from labkit.core.network import free_port
    from labkit.mesh.envoy import Envoy
    from labkit.mesh.identity import ProxyIdentity
    from labkit.mesh.translate import Mesh, ProxyOptions, translate
    from labkit.mesh.xds import AdminAddress, FileDelivery, bootstrap

    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    ip = "127.0.0.1"
    app = ThreadingHTTPServer((ip, 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    labels = {"app": "catalog", "version": "v1"}
    objects = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "catalog", "namespace": "shop"},
                "spec": {"selector": {"app": "catalog"}, "clusterIP": "10.96.0.9",
                         "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}},
               {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "catalog-0", "namespace": "shop",
                                                                "labels": labels},
                "spec": {"containers": [{"name": "app", "ports": [{"name": "http",
                                                                   "containerPort": app.server_port}]},
                                        {"name": "istio-proxy"}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}]
    identity = ProxyIdentity("catalog-0", "shop", ip, "catalog", "catalog", "v1", labels=labels)
    options = ProxyOptions(otlp_url=f"{otlp}/v1/traces", outbound_port=free_port(ip), inbound_port=free_port(ip))
    delivery = FileDelivery(home / "xds")
    delivery.push(translate(Mesh.from_objects(objects), identity, options))
    (home / "bootstrap.json").write_text(json.dumps(bootstrap(identity, delivery, AdminAddress(ip, free_port(ip)))))
    try:
        with Envoy(home / "bootstrap.json", home / "envoy.log").start():
            yield f"http://{ip}:{options.inbound_port}"
    finally:
        app.shutdown()


def envoy_trace_latency(jaeger: str, otlp: str, traces: int = 10) -> list[float]:
    """Seconds from a response through the sidecar to the sidecar's span being queryable."""
    import requests

    latencies = []
    with tempfile.TemporaryDirectory(prefix="envoy-bench-") as home, meshed_app(otlp, Path(home)) as url:
        session = requests.Session()
        session.trust_env = False
        for i in range(traces):
            trace_id = f"{random.getrandbits(128):032x}"
            traceparent = f"00-{trace_id}-{random.getrandbits(64):016x}-01"
            r = session.get(f"{url}/products", headers={"traceparent": traceparent, "Host": "catalog:8080"},
                            timeout=10)
            r.raise_for_status()
            ended = time.monotonic()
            while _spans_in(jaeger, trace_id) < 1:
                if time.monotonic() - ended > 30:
                    raise RuntimeError(f"Envoy's span of {trace_id} not queryable after 30 s")
                time.sleep(0.01)
            latencies.append(time.monotonic() - ended)
            print(f"  {i + 1}/{traces} requests, {latencies[-1] * 1000:.0f} ms", flush=True)
    return latencies


def report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{label}: n={len(ordered)} p50={statistics.median(ordered) * 1000:.0f} ms p95={p95 * 1000:.0f} ms "
          f"max={ordered[-1] * 1000:.0f} ms; goal <= {GOAL_S:.0f} s: {'met' if ordered[-1] <= GOAL_S else 'MISSED'}",
          flush=True)


def lab_memory(home: Path) -> None:
    """Print the running lab's memory by part (every process below its daemon)."""
    import collections

    import psutil

    daemon = psutil.Process(int((home / "daemon.lock").read_text().strip()))
    parts: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for proc in [daemon, *daemon.children(recursive=True)]:
        try:
            cmd, info = " ".join(proc.cmdline()), proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        part = ("lab daemon" if proc.pid == daemon.pid else "sidecar Envoy" if proc.name() == "envoy"
                else "sidecar agent (pilot-agent)" if "labkit.mesh.agent" in cmd
                else "shop app" if any(f"-m {s}" in cmd for s in ("catalog", "gateway", "orders"))
                else "haproxy" if "haproxy" in proc.name() else "other: " + cmd[:40])
        row = parts[part]
        row[0] += 1
        row[1] += info.rss / 2**20
        row[2] += info.pss / 2**20
    for part, (n, rss, pss) in sorted(parts.items(), key=lambda kv: -kv[1][1]):
        print(f"{part:32s} {int(n):3d} processes  RSS {rss:7.1f} MiB ({rss / n:5.1f} each)  PSS {pss:7.1f} MiB")
    meshed = [parts[p] for p in ("sidecar Envoy", "sidecar agent (pilot-agent)", "shop app") if p in parts]
    print(f"meshed shop: RSS {sum(r[1] for r in meshed):.0f} MiB, PSS {sum(r[2] for r in meshed):.0f} MiB "
          f"(goal <= 1,200 MB); whole lab: RSS {sum(r[1] for r in parts.values()):.0f} MiB, "
          f"PSS {sum(r[2] for r in parts.values()):.0f} MiB")


def catalog_weights(dump: dict) -> set[int]:
    """The weights of the weighted clusters Envoy routes ``catalog:8080`` with (a route ``/config_dump``)."""
    found = set()
    for config in dump.get("configs", []):  # ?resource=dynamic_route_configs: each entry is one route config
        for entry in config.get("dynamic_route_configs", [config]):
            for vhost in entry.get("route_config", {}).get("virtual_hosts", []):
                if "catalog:8080" in vhost.get("domains", []):
                    for route in vhost.get("routes", []):
                        clusters = route.get("route", {}).get("weighted_clusters", {}).get("clusters", [])
                        found |= {int(c.get("weight", 0)) for c in clusters if "|v2|" in c["name"]}
    return found


def config_latency(rounds: int = 10) -> list[float]:
    """Seconds from ``kubectl apply`` of the catalog's VirtualService with new weights until every sidecar's Envoy
    routes ``catalog:8080`` with them (admin ``/config_dump`` on each pod's IP, polled every 10 ms)."""
    from labkit import Lab

    lab = Lab.connect()
    lab.mesh.deploy_version("catalog", "0.2.0", replicas=1)
    rule = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: catalog}\nspec:\n"
            "  host: catalog\n  subsets:\n  - {name: v1, labels: {version: '0.1.0'}}\n"
            "  - {name: v2, labels: {version: '0.2.0'}}\n")
    lab.mesh.apply(rule)
    core = lab.kubernetes.core()
    ips = [p.status.pod_ip for p in core.list_namespaced_pod("shop").items
           if p.status.pod_ip and any(c.name == "istio-proxy" for c in p.spec.containers)]
    out = []
    try:
        for i in range(rounds):
            v2 = 10 + 7 * i
            service = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: catalog}\n"
                       f"spec:\n  hosts: [catalog]\n  http:\n  - route:\n"
                       f"    - {{destination: {{host: catalog, subset: v1}}, weight: {100 - v2}}}\n"
                       f"    - {{destination: {{host: catalog, subset: v2}}, weight: {v2}}}\n")
            start = time.monotonic()
            lab.mesh.apply(service)
            waiting = set(ips)
            while waiting and time.monotonic() - start < 10:
                for ip in list(waiting):
                    with urllib.request.urlopen(f"http://{ip}:15000/config_dump?resource=dynamic_route_configs",
                                                timeout=5) as resp:
                        if v2 in catalog_weights(json.loads(resp.read())):
                            waiting.discard(ip)
                time.sleep(0.01)
            out.append(time.monotonic() - start)
            print(f"  round {i + 1}: {out[-1] * 1000:.0f} ms for {len(ips)} sidecars", flush=True)
    finally:
        lab.mesh.restore()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace-latency", action="store_true", help="span end -> queryable in Jaeger")
    parser.add_argument("--traces", type=int, default=40)
    parser.add_argument("--through-envoy", action="store_true", help="also a sidecar's span (real Envoy)")
    parser.add_argument("--jaeger", help="a running Jaeger's query URL (default: start one)")
    parser.add_argument("--otlp", help="its OTLP/HTTP URL")
    parser.add_argument("--lab-memory", action="store_true", help="a running lab's memory by part")
    parser.add_argument("--config-latency", action="store_true", help="VirtualService change -> every Envoy")
    args = parser.parse_args()
    if args.lab_memory:
        import os

        from labkit.core.paths import LabPaths

        lab_memory(LabPaths.resolve(Path(os.environ["LABKIT_HOME"]) if "LABKIT_HOME" in os.environ else None).home)
        return
    if args.config_latency:
        sys.path.insert(0, str(ROOT))
        latencies = config_latency()
        print(f"VirtualService change in every sidecar: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms (goal <= 1,000 ms)")
        return
    if not args.trace_latency:
        parser.error("choose a measurement: --trace-latency, --config-latency or --lab-memory")
    sys.path.insert(0, str(ROOT))

    def run(jaeger: str, otlp: str) -> None:
        for label, batch in (("shop exporter (batch, 1 s delay)", True), ("exported as spans end", False)):
            print(f"{label}: {args.traces} traces ...", flush=True)
            report(label, trace_latency(jaeger, otlp, args.traces, batch))
        if args.through_envoy:
            label = "a sidecar's span (Envoy's OpenTelemetry tracer)"
            print(f"{label}: {min(args.traces, 10)} requests ...", flush=True)
            report(label, envoy_trace_latency(jaeger, otlp, min(args.traces, 10)))

    if args.jaeger and args.otlp:
        run(args.jaeger, args.otlp)
    else:
        with standalone_jaeger() as (jaeger, otlp):
            run(jaeger, otlp)


if __name__ == "__main__":
    main()
