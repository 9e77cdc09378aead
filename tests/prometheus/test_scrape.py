"""Scraping, judged by the real Prometheus 2.42 (Debian's, installed by scripts/test.sh): both scrape the same
prometheus_client targets (OpenMetrics negotiated, as Prometheus asks for it) with the same relabel and
metric_relabel configuration, and must agree on the targets' labels, the dropped targets and every series' labels;
then the sim's own behaviour: the text format, stale markers when a series or a target goes away, a down target."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from labkit.core.network import free_port
from labkit.prometheus.config import parse
from labkit.prometheus.scrape.manager import ScrapeManager
from labkit.prometheus.tsdb import Matcher, Storage, is_stale

from .peer import real_prometheus, wait_until

CONFIG = """
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: diff
    static_configs:
      - targets: ["127.0.0.1:{port}"]
        labels: {{team: Shop, env: prod, __meta_x_zone: eu-1}}
      - targets: ["127.0.0.1:{port2}"]
        labels: {{env: dev}}
    relabel_configs:
      - {{source_labels: [env], regex: dev, action: drop}}
      - {{source_labels: [team], target_label: team_lc, action: lowercase}}
      - {{source_labels: [__address__], modulus: 8, target_label: shard, action: hashmod}}
      - {{regex: __meta_x_(.+), action: labelmap, replacement: meta_$1}}
      - {{source_labels: [__address__], regex: '([^:]+):(\\d+)', replacement: '${{1}}', target_label: host}}
      - {{regex: env, action: labeldrop}}
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: 'python_gc_.*|process_.*', action: drop}}
      - {{source_labels: [__name__, route], separator: '@', regex: 'shop_requests_total@(.*)', target_label: r,
         replacement: 'x-$1'}}
      - {{regex: method, action: labeldrop}}
"""


def shop_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests_total = Counter("shop_requests", "Requests", ("route", "method"), registry=registry)
    requests_total.labels("/a", "GET").inc(3)
    requests_total.labels("/b", "POST").inc()
    Gauge("shop_info", "A gauge whose label clashes with the target's", ("job",), registry=registry) \
        .labels("inner").set(1)
    Histogram("shop_latency_seconds", "Latency", buckets=(0.1, 1.0), registry=registry).observe(0.3)
    return registry


@pytest.fixture(scope="module")
def target() -> Iterator[int]:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=shop_registry())
    yield port
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def real(target: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Prometheus scraping the target, its API URL."""
    with real_prometheus(tmp_path_factory.mktemp("real-prometheus"),
                         CONFIG.format(port=target, port2=free_port())) as url:
        wait_until(lambda: series_of(url), 60, "the real Prometheus' first scrape")
        yield url


def series_of(url: str) -> list[dict[str, str]]:
    answer = requests.get(f"{url}/api/v1/series", params={"match[]": '{job="diff"}'}, timeout=10).json()
    found = answer["data"]
    return found if any(s["__name__"] == "scrape_series_added" for s in found) else []


async def scrape_with_sim(config_text: str, home: Path, seconds: float) -> tuple[list[Any], list[Any], Storage]:
    storage = Storage(home / "data", 3600)
    manager = ScrapeManager(parse(config_text), storage)
    await manager.start()
    try:
        await asyncio.wait_for(manager.synced.wait(), 30)
        deadline = time.monotonic() + 30
        while not all(t.last_scrape for t in manager.targets()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(seconds)
        return [t.api() for t in manager.targets()], [d for ds in manager.dropped.values() for d in ds], storage
    finally:
        await manager.stop()


def key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_targets_and_series_as_the_real_prometheus(real: str, target: int, tmp_path: Path) -> None:
    port2 = int(next(d for d in requests.get(f"{real}/api/v1/targets", timeout=10).json()["data"]["droppedTargets"])
                ["discoveredLabels"]["__address__"].rsplit(":", 1)[1])
    active, dropped, storage = asyncio.run(scrape_with_sim(CONFIG.format(port=target, port2=port2), tmp_path, 1.5))
    theirs = requests.get(f"{real}/api/v1/targets", timeout=10).json()["data"]
    assert [t["labels"] for t in active] == [t["labels"] for t in theirs["activeTargets"]]
    assert [t["discoveredLabels"] for t in active] == [t["discoveredLabels"] for t in theirs["activeTargets"]]
    assert dropped == [t["discoveredLabels"] for t in theirs["droppedTargets"]]
    assert active[0]["scrapeUrl"] == theirs["activeTargets"][0]["scrapeUrl"]
    assert active[0]["health"] == theirs["activeTargets"][0]["health"] == "up"
    ours = {key(s) for s in storage.series([Matcher("job", "=", "diff")])}
    real_series = {key(s) for s in series_of(real)}
    assert ours == real_series, (sorted(ours - real_series), sorted(real_series - ours))
    assert any(dict(k).get("exported_job") == "inner" for k in ours)  # the clash renamed, as Prometheus does
    for name in ("scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "up"):
        mine = storage.select([Matcher("__name__", "=", name)], 0, 2**62)[0].values[-1]
        answer = requests.get(f"{real}/api/v1/query", params={"query": name}, timeout=10).json()["data"]["result"]
        assert mine == float(answer[0]["value"][1]), name
    storage.close()


class Target:
    """A target whose body the test changes: the text format, then series removed."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge("temp", "t", ("room",), registry=self.registry)
        self.gauge.labels("a").set(1)
        self.gauge.labels("b").set(2)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain",
                            headers={"X-Accept": request.headers.get("Accept", "")})


def last(storage: Storage, **labels: str) -> float:
    found = storage.select([Matcher(k, "=", v) for k, v in labels.items()], 0, 2**62)
    assert found, labels
    return found[0].values[-1]


def test_text_format_staleness_and_down_targets(tmp_path: Path) -> None:
    async def main() -> None:
        body = Target()
        app = web.Application()
        app.router.add_get("/metrics", body.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port, dead = free_port(), free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        config = parse(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: t
    static_configs: [{{targets: ["127.0.0.1:{port}", "127.0.0.1:{dead}"]}}]
""")
        storage = Storage(tmp_path / "data", 3600)
        manager = ScrapeManager(config, storage)
        await manager.start()
        try:
            await asyncio.wait_for(manager.synced.wait(), 30)
            targets = {t.labels["instance"]: t for t in manager.targets()}
            live, down = targets[f"127.0.0.1:{port}"], targets[f"127.0.0.1:{dead}"]
            for _ in range(300):
                if live.last_scrape and down.last_scrape:
                    break
                await asyncio.sleep(0.05)
            assert live.health == "up" and last(storage, __name__="temp", room="b") == 2
            assert last(storage, __name__="up", instance=live.labels["instance"]) == 1
            assert last(storage, __name__="scrape_samples_scraped", instance=live.labels["instance"]) == 2
            assert down.health == "down" and "127.0.0.1" in down.last_error
            assert last(storage, __name__="up", instance=down.labels["instance"]) == 0
            body.gauge.remove("b")  # the series disappears: a stale marker at the next scrape
            before = live.last_scrape
            while live.last_scrape == before:
                await asyncio.sleep(0.05)
            assert is_stale(last(storage, __name__="temp", room="b"))
            assert last(storage, __name__="temp", room="a") == 1
            await manager.sync(config.scrape_configs[0], [])  # the target goes away: all its series end
            assert is_stale(last(storage, __name__="temp", room="a"))
            assert is_stale(last(storage, __name__="up", instance=live.labels["instance"]))
        finally:
            await manager.stop()
            await runner.cleanup()
            storage.close()

    asyncio.run(main())


def test_a_target_slower_than_the_timeout_is_down(tmp_path: Path) -> None:
    async def main() -> None:
        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(2)
            return web.Response(text="x 1\n")

        app = web.Application()
        app.router.add_get("/metrics", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        config = parse(f"""
global: {{scrape_interval: 1s, scrape_timeout: 500ms}}
scrape_configs: [{{job_name: slow, static_configs: [{{targets: ["127.0.0.1:{port}"]}}]}}]
""")
        storage = Storage(tmp_path / "data", 3600)
        manager = ScrapeManager(config, storage)
        await manager.start()
        try:
            await asyncio.wait_for(manager.synced.wait(), 30)
            target = manager.targets()[0]
            for _ in range(300):
                if target.last_scrape:
                    break
                await asyncio.sleep(0.05)
            assert target.health == "down"
            assert target.last_error == f'Get "http://127.0.0.1:{port}/metrics": context deadline exceeded'
            assert target.last_duration < 1.5
            assert last(storage, __name__="up", job="slow") == 0
        finally:
            await manager.stop()
            await runner.cleanup()
            storage.close()

    asyncio.run(main())
