"""PromQL semantics the differential data set cannot show (staleness markers, the lookback, step alignment of
subqueries) and the engine's answers' shapes and errors (``bad_data`` with the parser's message, ``execution``,
``timeout``, the range-query limits), each as the Prometheus documentation states them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.prometheus.promql import Engine, PromQLError, parse, selector_matchers
from labkit.prometheus.tsdb import Matcher, Storage

T = 1_700_000_000  # seconds
UP_A = {"__name__": "up", "job": "api", "instance": "a"}
UP_B = {"__name__": "up", "job": "api", "instance": "b"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    s = Storage(tmp_path_factory.mktemp("promql"))
    # a: scraped every 15 s for 10 minutes, then its target disappears and the scraper writes a stale marker;
    # b: the same, but the last scrape simply stops (no marker: only the 5-minute lookback ends it)
    for i in range(41):
        s.append([(UP_A, (T + 15 * i) * 1000, 1.0), (UP_B, (T + 15 * i) * 1000, 1.0)])
    s.mark_stale(UP_A, (T + 615) * 1000)
    s.append([({"__name__": "counter_total"}, (T + 10 * i) * 1000, float(i)) for i in range(61)])
    yield Engine(s)
    s.close()


def instances(data: dict) -> list[str]:
    return sorted(r["metric"]["instance"] for r in data["result"])


def test_stale_marker_ends_a_series_at_once_lookback_otherwise(engine: Engine) -> None:
    assert instances(engine.instant("up", T + 610)) == ["a", "b"]
    assert instances(engine.instant("up", T + 620)) == ["b"]  # a's marker at +615
    assert instances(engine.instant("up", T + 600 + 300)) == ["b"]  # b's last sample exactly 5 min ago
    assert instances(engine.instant("up", T + 600 + 301)) == []
    # range vectors skip the marker: the samples before it (+570, +585, +600) are still there
    assert [len(r["values"]) for r in engine.instant("up[1m]", T + 620)["result"]] == [3, 3]
    assert engine.instant("count_over_time(up[1m])", T + 620)["result"][0]["value"][1] == "3"


def test_lookback_setting(engine: Engine, tmp_path: Path) -> None:
    short = Engine(engine.storage, lookback=60)
    assert instances(short.instant("up", T + 660)) == ["b"]
    assert instances(short.instant("up", T + 661)) == []


def test_result_shapes(engine: Engine) -> None:
    assert engine.instant("1 + 1", T) == {"resultType": "scalar", "result": [T, "2"]}
    assert engine.instant('"hi"', T + 0.5) == {"resultType": "string", "result": [T + 0.5, "hi"]}
    assert engine.instant("vector(1e21) / 3", T)["result"][0]["value"] == [T, "333333333333333300000"]
    assert engine.instant("vector(0) / 0", T)["result"][0]["value"][1] == "NaN"
    assert engine.instant("-vector(1) / 0", T)["result"][0]["value"][1] == "-Inf"
    rng = engine.range("time()", T, T + 30, 15)
    assert rng == {"resultType": "matrix", "result": [{"metric": {}, "values": [[T, str(T)], [T + 15, str(T + 15)],
                                                                                   [T + 30, str(T + 30)]]}]}


def test_rate_extrapolates_like_prometheus(engine: Engine) -> None:
    # 1/10 s counter; a 1m window at a sample time holds 7 samples 60 s apart: no extrapolation needed
    assert float(engine.instant("rate(counter_total[1m])", T + 300)["result"][0]["value"][1]) == pytest.approx(0.1)
    # at +305 the window [245, 305] holds samples 250..300: 50 s sampled, extrapolated by 5 s each side
    assert float(engine.instant("increase(counter_total[1m])", T + 305)["result"][0]["value"][1]) == \
        pytest.approx(5 * 60 / 50)


def test_subquery_steps_are_aligned_to_absolute_time(engine: Engine) -> None:
    # [1m:20s] at T+305 evaluates at the multiples of 20 s inside (T+245, T+305]: T+260, T+280, T+300
    got = engine.instant("count_over_time(counter_total[1m:20s])", T + 305)["result"][0]["value"][1]
    assert got == str(len([t for t in range(T + 245, T + 306) if t % 20 == 0]))


def test_at_modifier_start_end_in_range_queries(engine: Engine) -> None:
    data = engine.range("counter_total @ end()", T + 100, T + 200, 50)
    assert [v for _, v in data["result"][0]["values"]] == ["20", "20", "20"]
    data = engine.range("counter_total @ start() offset 10s", T + 100, T + 200, 50)
    assert [v for _, v in data["result"][0]["values"]] == ["9", "9", "9"]


# Prometheus 2.42's own messages for these. Not matched (listed in test_differential.py): the Rust parser's generic
# "invalid promql query" where Go names the token ("1 +", "foo bar"), positions of errors not at the end of the
# input, and Go's regexp wording for a bad regex.
@pytest.mark.parametrize(("query", "message"), [
    ("sum(", "1:5: parse error: unclosed left parenthesis"),
    ("up{", "1:4: parse error: unexpected end of input inside braces"),
    ("up[5m", "1:6: parse error: unclosed left bracket"),
    ("up offset", "1:10: parse error: unexpected end of input in offset, expected duration"),
    ("rate(up)", 'parse error: expected type range vector in call to function "rate", got instant vector'),
    ("nope(up)", 'parse error: unknown function with name "nope"'),
    ("1 > 2", "parse error: comparisons between scalars must use BOOL modifier"),
])
def test_bad_queries_are_bad_data_with_the_parsers_message(engine: Engine, query: str, message: str) -> None:
    with pytest.raises(PromQLError) as e:
        engine.instant(query, T)
    assert e.value.error_type == "bad_data"
    assert e.value.message.endswith(message)
    with pytest.raises(PromQLError):
        parse(query)


def test_execution_errors(engine: Engine) -> None:
    with pytest.raises(PromQLError) as e:
        engine.instant("up + on(job) up", T + 10)
    assert e.value.error_type == "execution"
    assert "many-to-many matching not allowed" in e.value.message
    with pytest.raises(PromQLError) as e:
        engine.instant('label_replace(up, "instance", "", "", "")', T + 10)
    assert e.value.message == "vector cannot contain metrics with the same labelset"


def test_range_query_limits(engine: Engine) -> None:
    with pytest.raises(PromQLError, match="exceeded maximum resolution of 11,000 points"):
        engine.range("up", T, T + 11001, 1)
    with pytest.raises(PromQLError, match="zero or negative query resolution step"):
        engine.range("up", T, T + 10, 0)
    with pytest.raises(PromQLError, match="end timestamp must not be before start time"):
        engine.range("up", T + 10, T, 1)
    with pytest.raises(PromQLError, match='invalid expression type "range vector" for range query'):
        engine.range("up[1m]", T, T + 10, 1)


def test_timeout(engine: Engine) -> None:
    with pytest.raises(PromQLError) as e:
        Engine(engine.storage, timeout=0).instant("sum(rate(counter_total[1m]))", T)
    assert (e.value.error_type, e.value.message) == ("timeout", "query timed out in expression evaluation")


def test_newer_prometheus_features_are_refused_by_name(engine: Engine) -> None:
    for query in ("sort_by_label(up)", "limitk(1, up)", 'up{job="a" or job="b"}'):
        with pytest.raises(PromQLError) as e:
            engine.instant(query, T)
        assert e.value.error_type == "bad_data" and "not supported by the labkit simulator" in e.value.message


def test_selector_matchers() -> None:
    assert selector_matchers('up{job=~"a.*",x!="1"}') == [Matcher("job", "=~", "a.*"), Matcher("x", "!=", "1"),
                                                          Matcher("__name__", "=", "up")]
    with pytest.raises(PromQLError):
        selector_matchers("sum(up)")
