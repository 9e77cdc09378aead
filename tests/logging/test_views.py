"""``lab.logging`` (LoggingView) and the Kibana-style views against the sim's Elasticsearch: search in KQL and
Lucene within a time range, the count by level over time, Discover's histogram and table, saved searches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
from elasticsearch import helpers

from labkit.endpoints import LoggingEndpoint
from labkit.logging.lab import LoggingView, auto_interval, build_query
from labkit.logging.views import SavedSearch, plot_levels

from .es_server import ElasticsearchProcess

matplotlib.use("Agg")
NOW = datetime.now(UTC).replace(microsecond=0)
LEVELS = ["info"] * 6 + ["error"] * 3 + ["warn"]


def line(i: int) -> dict[str, object]:
    return {"@timestamp": (NOW - timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z"),
            "level": LEVELS[i % len(LEVELS)], "service": "cart" if i % 2 else "orders",
            "msg": f"request {i}", "kubernetes": {"namespace_name": "shop", "pod_name": f"cart-{i % 3}"}}


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggingView]:
    home = tmp_path_factory.mktemp("es")
    server = ElasticsearchProcess(home)
    password_file = home / "password"
    password_file.write_text(server.password)
    password_file.chmod(0o600)
    endpoint = LoggingEndpoint("Elasticsearch", server.url, user=server.user, password_file=str(password_file))
    ok, _ = helpers.bulk(server.client(), ({"_index": f"logstash-{NOW:%Y.%m.%d}", **line(i)} for i in range(20)),
                         refresh="wait_for")
    assert ok == 20
    lab = SimpleNamespace(endpoints=SimpleNamespace(get=lambda kind: endpoint))
    yield LoggingView(lab)  # type: ignore[arg-type]
    server.stop()


def test_search_kql_and_lucene(view: LoggingView) -> None:
    errors = view.search("level: error", start="now-1h", fields=["service", "kubernetes.pod_name"])
    assert len(errors) == 6
    assert list(errors.columns) == ["@timestamp", "service", "kubernetes.pod_name"]
    assert errors["@timestamp"].is_monotonic_decreasing
    lucene = view.search("level:error AND service:cart", language="lucene", start="now-1h")
    assert set(lucene["service"]) == {"cart"}
    assert len(lucene) == len(view.search("level: error and service: cart", start="now-1h"))


def test_time_range(view: LoggingView) -> None:
    assert len(view.search(start="now-1h", size=100)) == 20
    recent = view.search(start=NOW - timedelta(seconds=95), end=NOW + timedelta(seconds=1))
    assert len(recent) == 4  # lines 0..3: 0, 30, 60, 90 s old


def test_count_by_level(view: LoggingView) -> None:
    counts = view.count_by_level(start="now-1h", interval="1m")
    assert counts.sum().to_dict() == {"info": 12, "error": 6, "warn": 2}
    assert counts.index.is_monotonic_increasing
    assert (counts.index[1] - counts.index[0]).total_seconds() == 60
    only_cart = view.count_by_level("service: cart", start="now-1h", interval="1m")
    assert only_cart.to_numpy().sum() == 10
    fig = plot_levels(counts)
    assert len(fig.axes[0].patches) == 3 * len(counts)


def test_discover_draws_and_returns_hits(view: LoggingView) -> None:
    import matplotlib.pyplot as plt

    hits = view.discover("level: warn", start="now-1h", fields=["msg"])
    assert list(hits["msg"]) == ["request 9", "request 19"]
    plt.close("all")


def test_saved_search_round_trip(tmp_path: Path) -> None:
    saved = SavedSearch("cart errors", "level: error and service: cart", columns=["msg", "kubernetes.pod_name"])
    path = saved.save(tmp_path / "cart-errors.json")
    assert SavedSearch.load(path) == saved
    assert '"type": "search"' in path.read_text()


def test_query_building() -> None:
    query = build_query("level: error", start="now-15m")
    assert query["bool"]["filter"][1]["range"]["@timestamp"]["gte"] == "now-15m"
    assert auto_interval("now-15m", "now") == "30s"
    with pytest.raises(ValueError, match="kql"):
        build_query("x", language="sql")


def test_fluentbit_metrics_show_what_a_grep_filter_drops(view: LoggingView, tmp_path: Path) -> None:
    """The Diagnose path: a collector (its own process) whose grep filter drops one namespace's lines; its
    monitoring API, read per node by ``fluentbit_metrics``, shows the records read, dropped and shipped."""
    from .running import Running, free_port

    node = tmp_path / "node"
    node.mkdir()
    (node / "app.txt").write_text("".join(f"{'kube-system' if i % 4 == 0 else 'shop'} line {i}\n"
                                          for i in range(20)))
    port = free_port()
    config = tmp_path / "fb.yaml"
    ep = view.endpoint
    config.write_text(f"""\
service:
  flush: 0.2
  http_server: on
  http_port: {port}
pipeline:
  inputs:
    - name: tail
      tag: app
      path: /var/log/app.txt
      read_from_head: on
  filters:
    - name: grep
      match: '*'
      exclude: log ^kube-system
  outputs:
    - name: es
      match: '*'
      port: {ep.url.rsplit(":", 1)[1]}
      http_user: elastic
      http_passwd: {Path(ep.password_file).read_text()}
      index: fb-test
      suppress_type_name: on
""")
    collector = Running(config, node, {"PORT": str(port)}).start()
    try:
        endpoint = LoggingEndpoint("Elasticsearch", ep.url, user=ep.user, password_file=ep.password_file,
                                   fluentbit={"agent-1": f"http://127.0.0.1:{port}"})
        fb_view = LoggingView(SimpleNamespace(endpoints=SimpleNamespace(get=lambda kind: endpoint)))  # type: ignore[arg-type]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = fb_view.fluentbit_metrics()
            if metrics.query("section == 'output'")["proc_records"].sum() == 15:
                break
            time.sleep(0.2)
    finally:
        collector.stop()
    by = metrics.set_index(["section"])
    assert set(metrics["node"]) == {"agent-1"}
    assert by.loc["input", "records"].sum() == 20
    assert by.loc["filter", "drop_records"].sum() == 5
    assert by.loc["output", "proc_records"].sum() == 15


def test_count(view: LoggingView) -> None:
    assert view.count("level: error", start="now-1h") == 6
    assert view.count("level: error", start="now-1h", index="nothing-*") == 0
    assert view.wait_searchable("service: cart", minimum=10, start="now-1h") == 10
