"""KQL → query DSL: the translation Kibana's query bar makes, then the same queries run against the sim's
Elasticsearch (through elasticsearch-py) to check they select the lines they should."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch, helpers

from labkit.logging.kql import KQLSyntaxError, kql_to_dsl, lucene_to_dsl

from .es_server import ElasticsearchProcess

LINES = [
    {"level": "error", "service": "cart", "pod": "cart-1", "msg": "payment timeout", "status": 503},
    {"level": "error", "service": "orders", "pod": "orders-2", "msg": "db connection refused", "status": 500},
    {"level": "info", "service": "cart", "pod": "cart-1", "msg": "request served", "status": 200},
    {"level": "info", "service": "frontend", "pod": "frontend-1", "msg": "request served", "status": 200,
     "trace_id": "abc123"},
    {"level": "warn", "service": "orders", "pod": "orders-1", "msg": "slow request", "status": 200},
]


def test_translation() -> None:
    assert kql_to_dsl("") == {"match_all": {}}
    assert kql_to_dsl("level: error") == {"match": {"level": "error"}}
    assert kql_to_dsl('msg: "payment timeout"') == {"match_phrase": {"msg": "payment timeout"}}
    assert kql_to_dsl("trace_id: *") == {"exists": {"field": "trace_id"}}
    assert kql_to_dsl("status >= 500") == {"range": {"status": {"gte": "500"}}}
    assert kql_to_dsl("timeout") == {"multi_match": {"type": "best_fields", "query": "timeout", "lenient": True}}
    assert kql_to_dsl("a and b or c") == {"bool": {"should": [
        {"bool": {"filter": [kql_to_dsl("a"), kql_to_dsl("b")]}}, kql_to_dsl("c")], "minimum_should_match": 1}}
    assert kql_to_dsl("NOT level: info") == {"bool": {"must_not": {"match": {"level": "info"}}}}
    assert kql_to_dsl("service: (cart or orders)") == {"bool": {"should": [
        {"match": {"service": "cart"}}, {"match": {"service": "orders"}}], "minimum_should_match": 1}}
    assert kql_to_dsl(r"msg: a\:b") == {"match": {"msg": "a:b"}}
    assert lucene_to_dsl("level:error") == {"query_string": {"query": "level:error", "analyze_wildcard": True}}


@pytest.mark.parametrize("query", ["level:", "(level: error", "level: error and", "a )", "items:{ name: x }"])
def test_syntax_errors(query: str) -> None:
    with pytest.raises(KQLSyntaxError, match="KQL"):
        kql_to_dsl(query)


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Elasticsearch]:
    server = ElasticsearchProcess(tmp_path_factory.mktemp("es"))
    client = server.client()
    ok, _ = helpers.bulk(client, ({"_index": "kql", "_id": str(i), **line} for i, line in enumerate(LINES)),
                         refresh="wait_for")
    assert ok == len(LINES)
    yield client
    server.stop()


@pytest.mark.parametrize(("query", "ids"), [
    ("level: error", {0, 1}),
    ("level: error and service: cart", {0}),
    ("service: (cart or frontend) and not level: error", {2, 3}),
    ('msg: "request served"', {2, 3}),
    ("status >= 500", {0, 1}),
    ("status < 500 and level: info", {2, 3}),
    ("trace_id: *", {3}),
    ("pod.keyword: orders-*", {1, 4}),
    ("timeout", {0}),
    ("not level: info", {0, 1, 4}),
    ("", {0, 1, 2, 3, 4}),
])
def test_queries_select_the_right_lines(es: Elasticsearch, query: str, ids: set[int]) -> None:
    hits = es.search(index="kql", query=kql_to_dsl(query), size=20)["hits"]["hits"]
    assert {int(h["_id"]) for h in hits} == ids


def test_lucene_selects_the_same(es: Elasticsearch) -> None:
    hits = es.search(index="kql", query=lucene_to_dsl("level:error AND service:cart"), size=20)["hits"]["hits"]
    assert {int(h["_id"]) for h in hits} == {0}
