"""The HTTP API v1 of the sim's Prometheus component, beside the real Prometheus 2.42 scraping the same target with
the same configuration and rules: the same answers' shape and labels, the same error bodies and HTTP codes for bad
parameters (400 bad_data), an execution error's 422, the rules and alerts views, and unsupported endpoints named."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, start_http_server

from labkit.core.network import free_port
from labkit.prometheus.component import Prometheus

from ..components import ComponentLoop
from .peer import real_prometheus, wait_until

CONFIG = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules/*.yml]
scrape_configs:
  - job_name: api
    static_configs: [{{targets: ["127.0.0.1:{port}"], labels: {{team: shop}}}}]
"""
RULES = """
groups:
  - name: api
    rules:
      - record: job:requests:sum
        expr: sum by (job) (api_requests_total)
      - alert: AlwaysOn
        expr: sum by (job) (api_requests_total) > 0
        labels: {severity: info}
        annotations: {summary: "{{ $labels.job }} has {{ $value }} requests"}
"""


@pytest.fixture(scope="module")
def target() -> Iterator[int]:
    registry = CollectorRegistry()
    counter = Counter("api_requests", "Requests", ("code",), registry=registry)
    counter.labels("200").inc(5)
    counter.labels("500").inc(1)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    thread.join(timeout=5)


def config_dir(folder: Path, port: int) -> Path:
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "rules" / "api.yml").write_text(RULES)
    (folder / "prometheus.yml").write_text(CONFIG.format(port=port))
    return folder


def ready(url: str) -> bool:
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    recorded = requests.get(f"{url}/api/v1/query", params={"query": "job:requests:sum"}, timeout=5).json()
    return any(a["state"] == "firing" for a in alerts) and bool(recorded["data"]["result"])


@pytest.fixture(scope="module")
def both(target: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the sim's URL, the real Prometheus' URL), both scraping ``target`` with the same rules."""
    real_dir = config_dir(tmp_path_factory.mktemp("real"), target)
    with real_prometheus(real_dir, CONFIG.format(port=target)) as real, \
            ComponentLoop(tmp_path_factory.mktemp("sim-home"), "prometheus") as loop:
        sim = loop.start(Prometheus(config_dir(tmp_path_factory.mktemp("sim-config"), target),
                                    listen=("127.0.0.1", free_port())), "prometheus", "Prometheus")
        try:
            url = sim.endpoint().url
            wait_until(lambda: ready(url) and ready(real), 60, "both servers' first scrapes and rule evaluations")
            yield url, real
        finally:
            loop.run(sim.stop())


def get(url: str, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{url}{path}", params=params, timeout=10)


BAD = [
    ("/api/v1/query", {"query": "sum(", "time": "x"}),
    ("/api/v1/query_range", {"query": "up", "start": "100", "end": "50", "step": "10"}),
    ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100", "step": "0"}),
    ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100000", "step": "1"}),
    ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100", "step": "soon"}),
    ("/api/v1/series", {}),
    ("/api/v1/series", {"match[]": "up", "start": "yesterday"}),
    ("/api/v1/label/0bad/values", {}),
]


@pytest.mark.parametrize(("path", "params"), BAD)
def test_bad_parameters_answer_as_prometheus(both: tuple[str, str], path: str, params: dict[str, str]) -> None:
    sim, real = both
    mine, theirs = get(sim, path, **params), get(real, path, **params)
    assert (mine.status_code, mine.json()) == (theirs.status_code, theirs.json())


def test_bad_promql_and_execution_errors(both: tuple[str, str]) -> None:
    sim, real = both
    for query, status, error_type in (("sum(up", 400, "bad_data"),
                                      ('{__name__=~"up|api_requests_total"} + on(job) '
                                       '{__name__=~"up|api_requests_total"}', 422, "execution")):
        mine, theirs = get(sim, "/api/v1/query", query=query), get(real, "/api/v1/query", query=query)
        assert mine.status_code == theirs.status_code == status, (mine.text, theirs.text)
        assert mine.json()["errorType"] == theirs.json()["errorType"] == error_type
        assert mine.json()["status"] == "error"
        assert mine.json()["error"].startswith('invalid parameter "query": ') == \
            theirs.json()["error"].startswith('invalid parameter "query": ')


def test_queries_series_and_labels_agree(both: tuple[str, str]) -> None:
    sim, real = both
    for query in ("api_requests_total", "sum by (code) (api_requests_total)", "up", "job:requests:sum",
                  'ALERTS{alertname="AlwaysOn"}', "scalar(sum(api_requests_total))", '"text"'):
        mine, theirs = get(sim, "/api/v1/query", query=query).json(), get(real, "/api/v1/query", query=query).json()
        assert mine["data"]["resultType"] == theirs["data"]["resultType"], query
        if mine["data"]["resultType"] == "vector":
            assert sorted(json.dumps([r["metric"], r["value"][1]], sort_keys=True) for r in mine["data"]["result"]) \
                == sorted(json.dumps([r["metric"], r["value"][1]], sort_keys=True)
                          for r in theirs["data"]["result"]), query
    now = time.time()
    ranged = {name: get(url, "/api/v1/query_range", query="api_requests_total", start=now - 3, end=now, step=1).json()
              for name, url in (("sim", sim), ("real", real))}
    assert ranged["sim"]["data"]["resultType"] == ranged["real"]["data"]["resultType"] == "matrix"
    assert sorted(r["metric"]["code"] for r in ranged["sim"]["data"]["result"]) == ["200", "500"]
    match = {"match[]": 'api_requests_total{job="api"}'}
    assert get(sim, "/api/v1/series", **match).json() == get(real, "/api/v1/series", **match).json()
    assert get(sim, "/api/v1/labels", **match).json() == get(real, "/api/v1/labels", **match).json()
    assert get(sim, "/api/v1/label/code/values").json() == get(real, "/api/v1/label/code/values").json()


def test_targets_metadata_rules_alerts_status(both: tuple[str, str]) -> None:
    sim, real = both
    mine, theirs = (get(u, "/api/v1/targets").json()["data"] for u in (sim, real))
    assert set(mine) == set(theirs)
    assert [(t["labels"], t["health"], t["scrapeUrl"]) for t in mine["activeTargets"]] == \
        [(t["labels"], t["health"], t["scrapeUrl"]) for t in theirs["activeTargets"]]
    assert set(mine["activeTargets"][0]) == set(theirs["activeTargets"][0])
    meta = get(sim, "/api/v1/metadata", metric="api_requests").json()["data"]
    assert meta == get(real, "/api/v1/metadata", metric="api_requests").json()["data"]
    rules, real_rules = (get(u, "/api/v1/rules").json()["data"]["groups"][0] for u in (sim, real))
    assert set(rules) == set(real_rules)
    for a, b in zip(rules["rules"], real_rules["rules"], strict=True):
        assert set(a) == set(b) and (a["name"], a["type"], a["health"]) == (b["name"], b["type"], b["health"])
    alerts, real_alerts = (get(u, "/api/v1/alerts").json()["data"]["alerts"] for u in (sim, real))
    assert [(a["labels"], a["annotations"], a["state"], a["value"]) for a in alerts] == \
        [(a["labels"], a["annotations"], a["state"], a["value"]) for a in real_alerts]
    assert [r["type"] for r in get(sim, "/api/v1/rules", type="alert").json()["data"]["groups"][0]["rules"]] == \
        ["alerting"]
    assert get(sim, "/api/v1/status/buildinfo").json()["data"]["version"] == \
        get(real, "/api/v1/status/buildinfo").json()["data"]["version"].split("+")[0]
    assert "job_name: api" in get(sim, "/api/v1/status/config").json()["data"]["yaml"]
    admin = requests.post(f"{sim}/api/v1/admin/tsdb/snapshot", timeout=10)
    assert admin.status_code == 501 and "not supported by the labkit simulator" in admin.json()["error"]
    assert requests.get(f"{sim}/-/ready", timeout=5).text == requests.get(f"{real}/-/ready", timeout=5).text


def test_samples_survive_a_restart(target: int, tmp_path: Path) -> None:
    """The component's samples are on disk under the lab home: a new server over the same home answers for them."""
    home, folder = tmp_path / "home", config_dir(tmp_path / "config", target)
    port = free_port()
    with ComponentLoop(home, "prometheus") as loop:
        first = loop.start(Prometheus(folder, listen=("127.0.0.1", port)), "prometheus")
        url = first.endpoint().url
        try:
            wait_until(lambda: get(url, "/api/v1/query", query="api_requests_total").json()["data"]["result"], 30,
                       "the first scrape")
            before = time.time()
        finally:
            loop.run(first.stop())
    with ComponentLoop(home, "prometheus") as loop:
        again = loop.start(Prometheus(folder, listen=("127.0.0.1", port)), "prometheus")
        try:
            result = get(url, "/api/v1/query", query="api_requests_total", time=before).json()["data"]["result"]
            assert sorted(r["metric"]["code"] for r in result) == ["200", "500"]
        finally:
            loop.run(again.stop())
