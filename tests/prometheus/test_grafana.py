"""``lab.grafana``: the lab's dashboards (manifests/dashboards) rendered from either Prometheus API.

Two shop-like pods (prometheus_client, the shop's metric names and buckets) serve ``/metrics`` on loopback while
a thread sends them traffic; the real Prometheus (Debian's 2.42, installed by scripts/test.sh) and the sim's
(``python -m labkit.prometheus``) each scrape them every second from the same ``prometheus.yml``. The renderer
is judged on the data it draws: the same numbers as a direct PromQL query, Grafana's
interpolation of variables and ``$__rate_interval``, every panel type of the two dashboards."""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from labkit.core.errors import LabError
from labkit.core.network import free_port
from labkit.core.paths import LabPaths
from labkit.endpoints import LabEndpoints, PrometheusEndpoint
from labkit.lab import Lab
from labkit.prometheus import grafana as g
from labkit.prometheus.lab import PrometheusAPIError, PrometheusView
from labkit.prometheus.views import format_value, heatmap_buckets, reduce, refresh_in_place, table_frame

PROMETHEUS = shutil.which("prometheus")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PODS = {"gateway-a1": "gateway", "catalog-b2": "catalog"}


class Pod:
    """A shop-like pod's metrics on a loopback port: the shop's request counter and latency histogram."""

    def __init__(self, name: str) -> None:
        self.name, self.port = name, free_port()
        self.registry = CollectorRegistry()
        labels = ("route", "method", "status")
        self.requests = Counter("http_requests", "HTTP requests served", labels, registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency", labels,
                                 registry=self.registry, buckets=BUCKETS)
        self.server, self.thread = start_http_server(self.port, "127.0.0.1", registry=self.registry)

    def serve(self, status: int, seconds: float, route: str = "/products") -> None:
        self.requests.labels(route, "GET", str(status)).inc()
        self.latency.labels(route, "GET", str(status)).observe(seconds)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RealPrometheus:
    """Debian's Prometheus on a loopback port scraping the pods every second (labels as the lab's
    kubernetes_sd pod job gives them: namespace, app, pod), plus a target nobody listens on."""

    def __init__(self, home: Path, pods: dict[str, Pod]) -> None:
        self.port, self.dead = free_port(), free_port()
        statics = "\n".join(
            f"      - targets: ['127.0.0.1:{pod.port}']\n"
            f"        labels: {{namespace: shop, app: {PODS[name]}, pod: {name}}}" for name, pod in pods.items())
        self.config = home / "config"
        self.config.mkdir()
        (self.config / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: shop\n    static_configs:\n{statics}\n"
            f"      - targets: ['127.0.0.1:{self.dead}']\n"
            "        labels: {namespace: shop, app: orders, pod: orders-c3}\n")
        self.log = (home / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(self.command(home), stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self, home: Path) -> list[str]:
        return [str(PROMETHEUS), f"--config.file={self.config / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]


    def wait(self, expr: str, deadline: float = 60) -> None:
        """Until ``expr`` has a result (the scrapes it needs have happened)."""
        session = requests.Session()
        session.trust_env = False
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.proc.poll() is None, "prometheus exited: see prometheus.log"
            try:
                body = session.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
                if body.get("status") == "success" and body["data"]["result"]:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"no result for {expr} within {deadline} s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


class SimPrometheus(RealPrometheus):
    """The sim's Prometheus (``python -m labkit.prometheus``) from the same configuration."""

    def command(self, home: Path) -> list[str]:
        return [sys.executable, "-m", "labkit.prometheus", "--home", str(home / "sim"), "--config-dir",
                str(self.config), "--listen", f"127.0.0.1:{self.port}"]


SERVERS = [pytest.param(RealPrometheus, id="prometheus-2.42", marks=pytest.mark.skipif(
               PROMETHEUS is None, reason="Debian's prometheus is not installed (scripts/test.sh installs it)")),
           pytest.param(SimPrometheus, id="sim")]


@pytest.fixture(scope="module", params=SERVERS)
def stack(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, Pod]]]:
    home = tmp_path_factory.mktemp("grafana")
    pods = {name: Pod(name) for name in PODS}
    stop = threading.Event()

    def traffic() -> None:  # 20 requests/s per pod: 10 % errors on the catalog, slower answers there
        n = 0
        while not stop.wait(0.05):
            n += 1
            pods["gateway-a1"].serve(200, 0.02)
            pods["catalog-b2"].serve(500 if n % 10 == 0 else 200, 0.3 if n % 2 else 0.04, "/items")

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    prom = request.param(home, pods)
    try:
        prom.wait('count(rate(http_requests_total[4s]) > 0) == 3')  # gateway 200, catalog 200 and 500
        prom.wait("count(up) == 3")
        endpoints = LabEndpoints("sim", "", {"prometheus": PrometheusEndpoint("Prometheus", prom.url)})
        yield Lab(LabPaths(home), endpoints), pods
    finally:
        stop.set()
        prom.stop()
        for pod in pods.values():
            pod.stop()


@pytest.fixture(scope="module")
def grafana(stack: tuple[Lab, dict[str, Pod]]) -> g.Grafana:
    return PrometheusView(stack[0]).grafana


def test_interval_rounding_and_rate_interval(grafana: g.Grafana) -> None:
    assert grafana.scrape_interval == 1.0  # read from /api/v1/status/config
    assert g.round_interval(1125) == 1000 and g.round_interval(16000) == 15000 and g.round_interval(50000) == 60000
    span = g.TimeRange(0, 3600)
    panel = {"gridPos": {"w": 12}}
    assert grafana.interval(panel, span) == 5.0  # 3600 s over 800 px = 4.5 s → 5 s
    rendered = grafana.interpolate("rate(x[$__rate_interval]) $__interval $__range $__range_s", {}, span, 5.0)
    # $__rate_interval = max($__interval + scrape interval, 4 x scrape interval)
    assert rendered == "rate(x[6s]) 5s 1h 3600"
    assert grafana.interpolate("[$__rate_interval]", {}, span, 1.0) == "[4s]"


def test_variable_interpolation_as_grafana_formats_it(grafana: g.Grafana) -> None:
    span = g.TimeRange(0, 60)
    values = {"pod": ["a.1", "b"], "ns": ["shop"], "all": [g.Raw(".*")]}
    assert grafana.interpolate('x{pod=~"$pod"}', values, span) == 'x{pod=~"(a\\\\.1|b)"}'
    assert grafana.interpolate('x{ns="$ns", p=~"${all}"}', values, span) == 'x{ns="shop", p=~".*"}'
    assert grafana.interpolate("${pod:csv} [[ns]] $unknown", values, span) == "a.1,b shop $unknown"
    assert grafana.interpolate("${pod:pipe}", values, span) == "a.1|b"


def test_query_variables_ask_prometheus(grafana: g.Grafana) -> None:
    model = g.load("shop")
    values = grafana.variables(model)
    assert values["namespace"] == ["shop"]
    assert values["app"] == [".*"]  # All, with the dashboard's allValue
    span = grafana.time_range(model)
    var = next(v for v in model["templating"]["list"] if v["name"] == "pod")
    assert sorted(grafana.options(var, {"namespace": ["shop"], "app": ["gateway"]}, span)) == ["gateway-a1"]
    assert sorted(grafana.options(var, values, span)) == ["catalog-b2", "gateway-a1"]  # orders-c3 is down
    chosen = grafana.variables(model, {"app": "catalog"})
    assert chosen["app"] == ["catalog"]
    with pytest.raises(LabError, match="not supported by the labkit renderer"):
        grafana.variable_query("tag_values(x)", span)


def test_shop_dashboard_draws_what_prometheus_answers(stack: tuple[Lab, dict[str, Pod]],
                                                      grafana: g.Grafana) -> None:
    rendered = grafana.render("shop", start="now-2m")
    assert not [r.title for r in rendered.results if r.error], [r.error for r in rendered.results]
    drawn = [r for r in rendered.results if r.type != "row"]
    assert len(rendered.figure.axes) >= len(drawn)  # one axes per panel (a heatmap adds its colour bar)

    # the stat's last point is what Prometheus answers to the interpolated query at that moment
    request_rate = rendered.panel("Request rate")
    last = request_rate.frame.sort_values("time").iloc[-1]
    direct = grafana.prometheus.query(request_rate.queries[0], last["time"].timestamp())["value"].iloc[0]
    assert request_rate.queries[0] == ('sum(rate(http_requests_total{namespace="shop", app=~".*", pod=~".*"}'
                                       '[4s]))')
    assert reduce(request_rate.frame.sort_values("time")["value"], "lastNotNull") == pytest.approx(direct)
    assert direct > 1  # both pods serve (how fast depends on the machine: the ratios below do not)

    ratio = reduce(rendered.panel("Error ratio").frame["value"], "lastNotNull")
    assert 0 < ratio <= 0.1 + 1e-9  # 1 in 20 of all requests fails: at most the catalog's 1 in 10

    by_pod = rendered.panel("Requests per second by pod")
    assert set(by_pod.frame["legend"]) == {"gateway-a1", "catalog-b2"}  # legendFormat {{pod}}
    assert by_pod.step == 1.0 and "[4s]" in by_pod.queries[0]  # $__rate_interval at a 1 s scrape interval

    latency = rendered.panel("Latency by service (p50, p95)").frame
    p95 = latency[latency["legend"] == "catalog p95"]["value"].dropna()
    assert not p95.empty and (p95 > 0.25).all() and (p95 <= 0.5).all()  # half the catalog's answers take 0.3 s

    buckets = heatmap_buckets(rendered.panel("Request duration distribution"))
    assert list(buckets.columns[:3]) == ["0.005", "0.01", "0.025"] and buckets.columns[-1] == "+Inf"
    assert buckets.to_numpy().sum() > 0 and (buckets.to_numpy() >= 0).all()  # per bucket, not cumulative

    table = table_frame(rendered.panel("Requests by service, route and status (time range)"))
    assert {"app", "route", "status", "Value"} <= set(table.columns)
    assert set(table[table["status"] == "500"]["app"]) == {"catalog"}

    up = reduce(rendered.panel("Pods scraped up").frame["value"], "lastNotNull")
    assert up == 2  # orders-c3's port answers nothing


def test_selected_variable_narrows_every_panel(grafana: g.Grafana) -> None:
    rendered = grafana.render("shop", start="now-1m", variables={"app": "gateway"})
    assert set(rendered.panel("Requests per second by pod").frame["legend"]) == {"gateway-a1"}
    assert rendered.panel("Error ratio").frame.empty  # the gateway has no 5xx series: "No data", as Grafana
    assert rendered.panel("Error ratio").queries[0].count('app=~"gateway"') == 2


def test_platform_dashboard_says_what_it_cannot_find(grafana: g.Grafana) -> None:
    """This Prometheus scrapes no HAProxy or API server: the panels render empty, not invented."""
    rendered = grafana.render("platform", start="now-1m")
    assert [r.title for r in rendered.results if r.type == "row"] == ["HAProxy", "Kubernetes API server", "Pods"]
    assert all(r.frame.empty for r in rendered.results if r.type != "row")
    assert rendered._repr_png_().startswith(b"\x89PNG")


def test_bad_promql_and_unsupported_panels_are_shown(grafana: g.Grafana) -> None:
    model = {"title": "t", "time": {"from": "now-1m", "to": "now"}, "panels": [
        {"type": "timeseries", "title": "bad", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 6},
         "targets": [{"expr": "sum(rate(http_requests_total[1m])", "refId": "A"}]},
        {"type": "piechart", "title": "pie", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 6},
         "targets": [{"expr": "up", "refId": "A"}]},
        {"type": "timeseries", "title": "auto", "gridPos": {"x": 0, "y": 6, "w": 24, "h": 6},
         "targets": [{"expr": "sum(up)", "refId": "A", "legendFormat": "__auto"},
                     {"expr": "sum by (pod) (up)", "refId": "B", "legendFormat": "__auto"}]}]}
    rendered = grafana.render(model)
    # a series without labels is named by its query, others by their labels, as Grafana's "Auto" legend
    assert set(rendered.panel("auto").frame["legend"]) == {"sum(up)", '{pod="catalog-b2"}', '{pod="gateway-a1"}',
                                                          '{pod="orders-c3"}'}
    assert "parse error" in rendered.panel("bad").error  # the real parser's message, on the panel
    texts = [t.get_text() for ax in rendered.figure.axes for t in ax.texts]
    assert any("'piechart' is not supported by the labkit renderer" in t for t in texts)
    with pytest.raises(PrometheusAPIError) as err:
        grafana.prometheus.query("sum(")
    assert err.value.status == 400 and err.value.error_type == "bad_data"


def test_units_as_grafana_writes_them() -> None:
    assert format_value(0.25, "s") == "250 ms"
    assert format_value(0.031, "percentunit") == "3.10%"
    assert format_value(3 * 1024 * 1024, "bytes") == "3.0 MiB"
    assert format_value(math.nan, "s") == "No data"


def test_lab_grafana_is_the_prometheus_views(stack: tuple[Lab, dict[str, Pod]]) -> None:
    lab, _ = stack
    frame = PrometheusView(lab).query_range("up", minutes=1)
    assert {"job", "instance", "series", "time", "value"} <= set(frame.columns)
    targets: Any = PrometheusView(lab).targets()
    assert sorted(targets["health"]) == ["down", "up", "up"]
    down = targets[targets["health"] == "down"].iloc[0]
    assert down["labels"]["pod"] == "orders-c3" and down["last_error"].startswith(f'Get "{down["scrape_url"]}": ')


def test_a_down_targets_error_is_the_scrapers(stack: tuple[Lab, dict[str, Pod]]) -> None:
    """What the notebook's Diagnose reads: Go's dial error, as Prometheus reports a port nobody listens on."""
    targets: Any = PrometheusView(stack[0]).targets()
    error = targets[targets["health"] == "down"]["last_error"].iloc[0]
    assert "dial tcp 127.0.0.1:" in error and error.endswith(": connect: connection refused")


def test_a_live_view_renders_again_in_one_output_until_its_time_is_up() -> None:
    calls: list[float] = []

    def render() -> int:
        calls.append(time.monotonic())
        return len(calls)

    assert refresh_in_place(render, seconds=5, every=1, live=False) == 1  # CI: once, no waiting
    calls.clear()
    last = refresh_in_place(render, seconds=0.35, every=0.1, live=True)
    assert last == len(calls) >= 3 and all(b > a for a, b in itertools.pairwise(calls))
