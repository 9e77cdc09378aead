"""Elasticsearch through its official client, ``elasticsearch-py``: indices, mappings, templates, ``helpers.bulk``,
documents, the query DSL, aggregations, counts, ``_cat``, refresh."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, Elasticsearch, NotFoundError, helpers

from .es_server import ElasticsearchProcess

LEVELS = ("info", "info", "warn", "error")
SERVICES = ("gateway", "catalog", "orders")


def log_line(i: int) -> dict[str, object]:
    """A shop-like JSON log record: one every 10 s from 2024-05-01T10:00:00Z."""
    minute, second = divmod(i * 10, 60)
    return {"@timestamp": f"2024-05-01T10:{minute:02d}:{second:02d}.000Z", "level": LEVELS[i % 4],
            "service": SERVICES[i % 3], "message": f"GET /items/{i} answered {500 if i % 4 == 3 else 200}",
            "latency_ms": float(i % 7 * 10), "status": 500 if i % 4 == 3 else 200,
            "trace_id": f"{i // 3:032x}", "kubernetes": {"namespace_name": "shop", "pod_name": f"pod-{i % 2}"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchProcess]:
    es = ElasticsearchProcess(tmp_path_factory.mktemp("es"))
    yield es
    es.stop()


@pytest.fixture(scope="module")
def es(server: ElasticsearchProcess) -> Elasticsearch:
    client = server.client()
    ok, errors = helpers.bulk(client, ({"_index": "shop-logs", "_id": str(i), **log_line(i)} for i in range(60)),
                              refresh="wait_for")
    assert (ok, errors) == (60, [])
    return client


def test_info_and_health(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"].split(".")[0] in ("8", "9") and info["tagline"] == "You Know, for Search"
    assert es.ping()
    health = es.cluster.health(wait_for_status="yellow")
    assert health["status"] in ("green", "yellow") and health["number_of_nodes"] == 1 and not health["timed_out"]


def test_wrong_password_is_refused(server: ElasticsearchProcess) -> None:
    bad = Elasticsearch(server.url, basic_auth=("elastic", "wrong"))
    with pytest.raises(ApiError) as err:
        bad.info()
    assert err.value.meta.status == 401 and err.value.error == "security_exception"


def test_dynamic_mapping(es: Elasticsearch) -> None:
    props = es.indices.get_mapping(index="shop-logs")["shop-logs"]["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date"}
    assert props["level"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["status"] == {"type": "long"} and props["latency_ms"] == {"type": "float"}
    assert props["kubernetes"]["properties"]["pod_name"]["type"] == "text"


def test_index_lifecycle_and_template(es: Elasticsearch) -> None:
    es.indices.put_index_template(name="tmpl", index_patterns=["tmpl-*"], priority=5, template={
        "settings": {"number_of_replicas": 0}, "mappings": {"properties": {"code": {"type": "keyword"}}}})
    assert es.indices.get_index_template(name="tmpl")["index_templates"][0]["name"] == "tmpl"
    assert not es.indices.exists(index="tmpl-a")
    es.indices.create(index="tmpl-a")
    assert es.indices.exists(index="tmpl-a")
    got = es.indices.get(index="tmpl-a")["tmpl-a"]
    assert got["mappings"]["properties"]["code"] == {"type": "keyword"}
    assert got["settings"]["index"]["number_of_replicas"] == "0"
    with pytest.raises(BadRequestError) as err:
        es.indices.create(index="tmpl-a")
    assert err.value.error == "resource_already_exists_exception"
    with pytest.raises(BadRequestError) as err:
        es.indices.create(index="Upper")
    assert err.value.error == "invalid_index_name_exception"
    es.indices.delete(index="tmpl-a")
    assert not es.indices.exists(index="tmpl-a")
    es.indices.delete_index_template(name="tmpl")
    with pytest.raises(NotFoundError):
        es.indices.get_index_template(name="tmpl")


def test_document_crud(es: Elasticsearch) -> None:
    created = es.index(index="docs", id="1", document={"title": "first", "n": 1})
    assert created["result"] == "created" and created["_version"] == 1
    assert es.index(index="docs", id="1", document={"title": "first again", "n": 2})["result"] == "updated"
    got = es.get(index="docs", id="1")  # real-time: before any refresh
    assert got["found"] and got["_version"] == 2 and got["_source"] == {"title": "first again", "n": 2}
    with pytest.raises(ConflictError):
        es.create(index="docs", id="1", document={"title": "dup"})
    es.update(index="docs", id="1", doc={"extra": True})
    assert es.get(index="docs", id="1", source_includes="extra")["_source"] == {"extra": True}
    assert es.exists(index="docs", id="1") and not es.exists(index="docs", id="2")
    assert es.delete(index="docs", id="1")["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.get(index="docs", id="1")
    with pytest.raises(NotFoundError) as err:
        es.get(index="nope", id="1")
    assert err.value.error == "index_not_found_exception"


def test_bulk_item_errors_are_reported_in_order(es: Elasticsearch) -> None:
    es.indices.create(index="typed", mappings={"properties": {"n": {"type": "long"}}})
    actions = [{"_op_type": "create", "_index": "typed", "_id": "a", "n": 1},
               {"_op_type": "create", "_index": "typed", "_id": "a", "n": 2},
               {"_op_type": "index", "_index": "typed", "_id": "b", "n": "not a number"},
               {"_op_type": "delete", "_index": "typed", "_id": "zzz"},
               {"_op_type": "index", "_index": "typed", "_id": "c", "n": 3}]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False, refresh=True)
    assert ok == 2
    kinds = [(next(iter(e)), next(iter(e.values()))["status"]) for e in errors]
    assert kinds == [("create", 409), ("index", 400), ("delete", 404)]
    assert next(iter(errors[1].values()))["error"]["type"] == "document_parsing_exception"
    assert es.count(index="typed")["count"] == 2


@pytest.mark.parametrize(("query", "expected"), [
    ({"match": {"message": "answered 500"}}, 60),  # or: every line has "answered"
    ({"match": {"message": {"query": "answered 500", "operator": "and"}}}, 15),
    ({"match_phrase": {"message": "answered 500"}}, 15),
    ({"multi_match": {"query": "gateway", "fields": ["service", "message"]}}, 20),
    ({"term": {"level.keyword": "error"}}, 15),
    ({"terms": {"service.keyword": ["catalog", "orders"]}}, 40),
    ({"range": {"status": {"gte": 500}}}, 15),
    ({"range": {"@timestamp": {"gte": "2024-05-01T10:05:00Z", "lt": "2024-05-01T10:06:00Z"}}}, 6),
    ({"range": {"@timestamp": {"gte": "2024-05-01T10:00:00Z||+1m/m", "lte": "2024-05-01T10:01:00Z||/m"}}}, 6),
    ({"exists": {"field": "kubernetes.pod_name"}}, 60),
    ({"exists": {"field": "no_such_field"}}, 0),
    ({"prefix": {"service.keyword": "cat"}}, 20),
    ({"wildcard": {"kubernetes.pod_name.keyword": "pod-?"}}, 60),
    ({"bool": {"must": [{"match": {"service": "gateway"}}], "filter": [{"term": {"level.keyword": "error"}}],
               "must_not": [{"range": {"latency_ms": {"gt": 30}}}]}}, 3),
    ({"bool": {"should": [{"term": {"level.keyword": "warn"}}, {"term": {"level.keyword": "error"}}],
               "minimum_should_match": 1}}, 30),
    ({"query_string": {"query": "level:error AND service:(gateway OR orders)"}}, 10),
    ({"query_string": {"query": "message:\"answered 500\" -service:orders"}}, 10),
    ({"query_string": {"query": "status:[400 TO 599]"}}, 15),
    ({"query_string": {"query": "serv*"}}, 0),
    ({"query_string": {"query": "service:catal*"}}, 20),
    ({"ids": {"values": ["1", "2", "99"]}}, 2),
])
def test_query_dsl(es: Elasticsearch, query: dict[str, object], expected: int) -> None:
    assert es.search(index="shop-logs", query=query, size=0)["hits"]["total"]["value"] == expected
    assert es.count(index="shop-logs", query=query)["count"] == expected


def test_range_with_now_date_math(es: Elasticsearch) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    es.index(index="recent", id="now", document={"@timestamp": now}, refresh="wait_for")
    es.index(index="recent", id="old", document={"@timestamp": "2000-01-01T00:00:00Z"}, refresh="wait_for")
    hits = es.search(index="recent", query={"range": {"@timestamp": {"gte": "now-15m"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["now"]


def test_sort_paging_search_after_and_source_filtering(es: Elasticsearch) -> None:
    sort = [{"@timestamp": {"order": "desc"}}]
    first = es.search(index="shop-logs", sort=sort, size=5, source_includes=["level", "kubernetes.pod_name"])
    hits = first["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["59", "58", "57", "56", "55"]
    assert hits[0]["_source"] == {"level": "error", "kubernetes": {"pod_name": "pod-1"}}
    assert hits[0]["_score"] is None and isinstance(hits[0]["sort"][0], int)
    page2 = es.search(index="shop-logs", sort=sort, size=5, from_=5, source=False)["hits"]["hits"]
    assert [h["_id"] for h in page2] == ["54", "53", "52", "51", "50"] and "_source" not in page2[0]
    after = es.search(index="shop-logs", sort=sort, size=3, search_after=hits[-1]["sort"])["hits"]["hits"]
    assert [h["_id"] for h in after] == ["54", "53", "52"]
    with pytest.raises(BadRequestError) as err:
        es.search(index="shop-logs", sort=[{"message": "asc"}])
    assert "Text fields are not optimised" in str(err.value)


def test_highlight(es: Elasticsearch) -> None:
    r = es.search(index="shop-logs", query={"match": {"message": "500"}}, highlight={"fields": {"message": {}}},
                  size=1)
    hit = r["hits"]["hits"][0]
    assert hit["highlight"]["message"] == [hit["_source"]["message"].replace("500", "<em>500</em>")]


def test_aggregations(es: Elasticsearch) -> None:
    r = es.search(index="shop-logs", size=0, aggs={
        "per_minute": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"},
                       "aggs": {"levels": {"terms": {"field": "level.keyword"}}}},
        "per_hour": {"date_histogram": {"field": "@timestamp", "calendar_interval": "hour"}},
        "services": {"terms": {"field": "service.keyword", "size": 2}},
        "avg_latency": {"avg": {"field": "latency_ms"}}, "max_latency": {"max": {"field": "latency_ms"}},
        "min_latency": {"min": {"field": "latency_ms"}}, "total": {"sum": {"field": "status"}},
        "pods": {"cardinality": {"field": "kubernetes.pod_name.keyword"}},
        "p": {"percentiles": {"field": "latency_ms", "percents": [50, 100]}},
        "first": {"min": {"field": "@timestamp"}}})
    assert r["hits"]["max_score"] is None and r["hits"]["hits"] == []
    aggs = r["aggregations"]
    minutes = aggs["per_minute"]["buckets"]
    assert len(minutes) == 10 and all(b["doc_count"] == 6 for b in minutes)
    assert minutes[0]["key_as_string"] == "2024-05-01T10:00:00.000Z"
    assert {b["key"]: b["doc_count"] for b in minutes[0]["levels"]["buckets"]} == {"info": 4, "warn": 1, "error": 1}
    assert aggs["per_hour"]["buckets"] == [{"key_as_string": "2024-05-01T10:00:00.000Z", "key": 1714557600000,
                                            "doc_count": 60}]
    assert aggs["services"]["buckets"] == [{"key": "catalog", "doc_count": 20}, {"key": "gateway", "doc_count": 20}]
    assert aggs["services"]["sum_other_doc_count"] == 20
    latencies = [float(i % 7 * 10) for i in range(60)]
    assert aggs["avg_latency"]["value"] == pytest.approx(sum(latencies) / 60)
    assert (aggs["min_latency"]["value"], aggs["max_latency"]["value"]) == (0.0, 60.0)
    assert aggs["total"]["value"] == 15 * 500 + 45 * 200 and aggs["pods"]["value"] == 2
    assert aggs["p"]["values"]["100.0"] == 60.0
    assert aggs["first"]["value_as_string"] == "2024-05-01T10:00:00.000Z"
    with pytest.raises(BadRequestError) as err:
        es.search(index="shop-logs", size=0, aggs={"x": {"terms": {"field": "level"}}})
    assert err.value.error == "illegal_argument_exception"


def test_cat_indices_gives_strings(es: Elasticsearch) -> None:
    rows = {r["index"]: r for r in es.cat.indices(index="shop-logs", format="json")}
    row = rows["shop-logs"]
    assert row["docs.count"] == "60" and row["status"] == "open" and isinstance(row["pri"], str)
    assert row["health"] in ("green", "yellow")


def test_refresh_interval(es: Elasticsearch) -> None:
    es.indices.create(index="manual", settings={"refresh_interval": "-1"})
    es.index(index="manual", id="x", document={"a": 1})
    assert es.count(index="manual")["count"] == 0  # not refreshed: not searchable
    es.indices.refresh(index="manual")
    assert es.count(index="manual")["count"] == 1
    es.index(index="auto", id="x", document={"a": 1})  # the default 1 s interval makes it searchable by itself
    deadline = time.monotonic() + 10
    while es.count(index="auto")["count"] != 1:
        assert time.monotonic() < deadline, "never refreshed"
        time.sleep(0.05)


def test_unknown_query_is_a_parsing_exception(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as err:
        es.search(index="shop-logs", query={"no_such_query": {}})
    assert err.value.error == "parsing_exception"
    with pytest.raises(BadRequestError) as err:
        es.search(index="shop-logs", query={"fuzzy": {"message": "x"}})
    assert "not supported by the labkit simulator" in str(err.value)


def test_aggregations_over_arrays_and_calendar_months(es: Elasticsearch) -> None:
    docs = [{"tags": ["a", "b", "a"], "at": "2024-01-31T23:00:00Z", "n": [1, 5]},
            {"tags": ["b"], "at": "2024-03-01T00:00:00Z", "n": 2}, {"other": 1}]
    helpers.bulk(es, ({"_index": "arrays", "_id": str(i), **d} for i, d in enumerate(docs)), refresh=True)
    r = es.search(index="arrays", size=0, aggs={
        "tags": {"terms": {"field": "tags.keyword"}, "aggs": {"n": {"sum": {"field": "n"}}}},
        "months": {"date_histogram": {"field": "at", "calendar_interval": "month", "min_doc_count": 0}},
        "n": {"stats": {"field": "n"}}, "with_n": {"filter": {"exists": {"field": "n"}}}})["aggregations"]
    assert [(b["key"], b["doc_count"], b["n"]["value"]) for b in r["tags"]["buckets"]] == [("b", 2, 8.0),
                                                                                          ("a", 1, 6.0)]
    assert [(b["key_as_string"][:7], b["doc_count"]) for b in r["months"]["buckets"]] == [
        ("2024-01", 1), ("2024-02", 0), ("2024-03", 1)]
    assert r["n"] == {"count": 3, "min": 1.0, "max": 5.0, "avg": pytest.approx(8 / 3), "sum": 8.0}
    assert r["with_n"]["doc_count"] == 2


def test_aggregations_follow_added_updated_and_deleted_documents(es: Elasticsearch) -> None:
    def levels() -> dict[str, int]:
        aggs = es.search(index="growing", size=0, aggs={"l": {"terms": {"field": "level.keyword"}}})["aggregations"]
        return {b["key"]: b["doc_count"] for b in aggs["l"]["buckets"]}

    es.index(index="growing", id="1", document={"level": "info"}, refresh=True)
    assert levels() == {"info": 1}
    helpers.bulk(es, [{"_index": "growing", "_id": "2", "level": "error"},
                      {"_index": "growing", "_id": "3", "level": "info"}], refresh=True)  # only added
    assert levels() == {"info": 2, "error": 1}
    es.index(index="growing", id="1", document={"level": "warn"}, refresh=True)  # changed
    assert levels() == {"info": 1, "error": 1, "warn": 1}
    es.delete(index="growing", id="2", refresh=True)
    assert levels() == {"info": 1, "warn": 1}


def test_total_hits_tracking(es: Elasticsearch) -> None:
    assert es.search(index="shop-logs", size=0, track_total_hits=10)["hits"]["total"] == {"value": 10,
                                                                                          "relation": "gte"}
    assert es.search(index="shop-logs", size=0, track_total_hits=True)["hits"]["total"] == {"value": 60,
                                                                                            "relation": "eq"}
    assert "total" not in es.search(index="shop-logs", size=0, track_total_hits=False)["hits"]
    assert es.search(index="shop-logs", size=0, rest_total_hits_as_int=True)["hits"]["total"] == 60
