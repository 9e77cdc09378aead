"""How the simulator's Elasticsearch keeps documents: sources on disk, doc values in memory. Searches see a replaced
or deleted document until the next refresh; queries answered from doc values agree with the same queries answered
by reading every document; a field with too many distinct values is not kept in memory and still answers; after a
SIGKILL the doc values are rebuilt from disk; a home written by the earlier layout is read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labkit.logging.elasticsearch import docvalues
from labkit.logging.elasticsearch.bulk import bulk
from labkit.logging.elasticsearch.matching import keep, match
from labkit.logging.elasticsearch.query import compile_query
from labkit.logging.elasticsearch.store import Store

from .es_server import ElasticsearchProcess


def record(i: int) -> dict[str, Any]:
    return {"@timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "level": ("info", "warn", "error")[i % 3],
            "service": f"svc-{i % 4}", "trace_id": f"{i:032x}", "status": 200 + 100 * (i % 4), "ok": i % 2 == 0,
            "tags": ["a", "b"] if i % 5 == 0 else "c", "msg": f"GET /items/{i} took {i % 7} ms"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchProcess]:
    es = ElasticsearchProcess(tmp_path_factory.mktemp("es"))
    yield es
    es.stop()


def test_a_replaced_or_deleted_document_is_searched_until_the_refresh(server: ElasticsearchProcess) -> None:
    es = server.client()
    es.indices.create(index="manual", settings={"index": {"refresh_interval": "-1"}})
    es.index(index="manual", id="1", document={"level": "info", "n": 1})
    es.index(index="manual", id="2", document={"level": "info", "n": 2})
    es.indices.refresh(index="manual")
    es.index(index="manual", id="1", document={"level": "error", "n": 10})
    es.delete(index="manual", id="2")
    assert es.get(index="manual", id="1")["_source"]["level"] == "error"  # real-time get
    hits = es.search(index="manual", query={"term": {"level.keyword": "info"}}, sort=["n"])["hits"]
    assert [(h["_id"], h["_source"]["n"]) for h in hits["hits"]] == [("1", 1), ("2", 2)]
    assert es.count(index="manual", query={"range": {"n": {"gte": 1}}})["count"] == 2
    es.indices.refresh(index="manual")
    hits = es.search(index="manual", query={"match_all": {}}, sort=["n"])["hits"]
    assert [(h["_id"], h["_source"]) for h in hits["hits"]] == [("1", {"level": "error", "n": 10})]
    assert es.count(index="manual", query={"term": {"level.keyword": "info"}})["count"] == 0


def test_doc_values_are_rebuilt_from_disk_after_a_sigkill(server: ElasticsearchProcess) -> None:
    es = server.client()
    es.bulk(operations=[x for i in range(30) for x in ({"create": {"_index": "kept"}}, record(i))], refresh=True)
    es.index(index="kept", id="last", document=record(30), refresh=True)
    es.index(index="kept", id="last", document=record(31), refresh=True)  # the row of record(30) is dead
    query: dict[str, Any] = {"bool": {"filter": [{"range": {"status": {"gte": 300}}}, {"exists": {"field": "ok"}}]}}
    aggs = {"levels": {"terms": {"field": "level.keyword"}}, "last": {"max": {"field": "@timestamp"}}}
    before = es.search(index="kept", query=query, aggs=aggs, sort=[{"@timestamp": "desc"}], size=5)
    server.kill()
    server.start()
    es = server.client()
    after = es.search(index="kept", query=query, aggs=aggs, sort=[{"@timestamp": "desc"}], size=5)
    assert after["hits"]["total"] == before["hits"]["total"] == {"value": 23, "relation": "eq"}
    assert after["hits"]["hits"] == before["hits"]["hits"]
    assert after["aggregations"] == before["aggregations"]
    assert before["hits"]["hits"][0]["_source"] == record(31)


QUERIES: list[dict[str, Any]] = [
    {"term": {"level.keyword": "warn"}},
    {"term": {"level.keyword": {"value": "WARN", "case_insensitive": True}}},
    {"terms": {"service.keyword": ["svc-1", "svc-3", "nope"]}},
    {"term": {"status": 300}},
    {"term": {"ok": True}},
    {"terms": {"tags.keyword": ["a"]}},
    {"range": {"@timestamp": {"gte": "2024-05-01T10:00:20Z", "lt": "2024-05-01T10:00:40Z"}}},
    {"range": {"status": {"gt": 200, "lte": 400}}},
    {"range": {"service.keyword": {"gte": "svc-2"}}},
    {"exists": {"field": "tags"}},
    {"exists": {"field": "status"}},
    {"match": {"service.keyword": "svc-2"}},
    {"match": {"status": "500"}},
    {"trace_id.keyword": None},  # placeholder replaced below: a term on the field with too many values
    {"bool": {"must": [{"term": {"level.keyword": "info"}}], "should": [{"term": {"status": 200}},
                                                                       {"term": {"ok": True}}],
              "must_not": [{"term": {"service.keyword": "svc-3"}}], "filter": [{"exists": {"field": "msg"}}]}},
    {"bool": {"should": [{"term": {"status": 200}}, {"term": {"status": 300}}, {"term": {"ok": False}}],
              "minimum_should_match": 2, "boost": 2}},
    {"constant_score": {"filter": {"range": {"status": {"gte": 400}}}, "boost": 3}},
    {"bool": {"filter": [{"range": {"status": {"gte": 300}}}], "must": [{"match": {"msg": "items"}}]}},
    {"match_all": {"boost": 1.5}},
]
QUERIES[13] = {"term": {"trace_id.keyword": f"{7:032x}"}}


def test_doc_values_answer_as_reading_every_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docvalues, "MAX_VOCAB", 50)  # trace_id (and msg) have more: their columns are not kept
    store = Store(tmp_path / "es.db")
    body = "".join(json.dumps({"index": {"_index": "logs", "_id": str(i)}}) + "\n" + json.dumps(record(i)) + "\n"
                   for i in range(120))
    assert not bulk(store, body.encode(), None, {}).body["errors"]
    index = store.indices["logs"]
    index.refresh()
    bulk(store, b'{"delete":{"_index":"logs","_id":"4"}}\n{"index":{"_index":"logs","_id":"5"}}\n'
                + json.dumps(record(500)).encode() + b"\n", None, {})
    index.refresh()  # one row dead, one appended
    dv = docvalues.doc_values(index)
    assert "trace_id.keyword" in dv.unkept and "level.keyword" in dv.columns
    for q in QUERIES:
        scorer = compile_query(q)
        rows, scores = match(index, scorer)
        read_rows, read_scores = keep(index, scorer, index.scan())
        assert rows.tolist() == read_rows.tolist(), q
        assert np.allclose(scores, read_scores), q
        assert len(rows) > 0, q
    assert index.doc_count == 119
    store.close()


def test_a_home_of_the_earlier_layout_is_read(tmp_path: Path) -> None:
    path = tmp_path / "es.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE indices (name TEXT PRIMARY KEY, uuid TEXT, created INTEGER, mappings TEXT, settings TEXT);
        CREATE TABLE docs (idx TEXT, id TEXT, seq INTEGER, version INTEGER, source TEXT,
                           PRIMARY KEY (idx, id)) WITHOUT ROWID;""")
    mappings = {"properties": {"level": {"type": "text", "fields": {"keyword": {"type": "keyword"}}}}}
    db.execute("INSERT INTO indices VALUES ('old', 'u1', 0, ?, ?)",
               (json.dumps(mappings), json.dumps({"index": {"number_of_shards": "1"}})))
    db.executemany("INSERT INTO docs VALUES ('old', ?, ?, 1, ?)",
                   [(f"d{i}", i, json.dumps({"level": "error" if i % 2 else "info"})) for i in range(6)])
    db.commit()
    db.close()
    store = Store(path)
    index = store.indices["old"]
    assert index.doc_count == 6 and index.get("d3") is not None and index.get("d3").source == {"level": "error"}
    assert len(match(index, compile_query({"term": {"level.keyword": "error"}}))[0]) == 3
    assert store.seq == 6
    store.close()
