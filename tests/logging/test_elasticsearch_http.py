"""Elasticsearch over plain HTTP: the product header, compatible-with media types, the error shapes, ``_bulk``'s
NDJSON answer, ``_cat`` text, and indices surviving a SIGKILL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .es_server import ElasticsearchProcess

COMPAT = "application/vnd.elasticsearch+json; compatible-with=9"
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchProcess]:
    server = ElasticsearchProcess(tmp_path_factory.mktemp("es-http"))
    yield server
    server.stop()


def ndjson(*lines: dict[str, object]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_every_answer_names_the_product(es: ElasticsearchProcess) -> None:
    for resp in (es.http("GET", "/"), es.http("GET", "/no-such-index/_search"), es.http("GET", "/", auth=None)):
        assert resp.headers["X-Elastic-Product"] == "Elasticsearch", resp.status_code


def test_compatible_with_media_types(es: ElasticsearchProcess) -> None:
    resp = es.http("GET", "/", headers={"Accept": COMPAT})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.elasticsearch+json;compatible-with=9"
    v8 = es.http("GET", "/", headers={"Accept": COMPAT.replace("=9", "=8")})  # what elasticsearch-py 8 sends
    assert v8.status_code == 200 and v8.headers["Content-Type"].endswith("compatible-with=8")
    resp = es.http("GET", "/", headers={"Accept": "application/vnd.elasticsearch+json; compatible-with=7"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "media_type_header_exception"


def test_missing_credentials(es: ElasticsearchProcess) -> None:
    resp = es.http("GET", "/_cluster/health", auth=None)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith('Basic realm="security"')
    assert resp.json()["error"]["type"] == "security_exception" and resp.json()["status"] == 401
    assert resp.json()["error"]["header"]["WWW-Authenticate"][0] == resp.headers["WWW-Authenticate"]


def test_index_not_found_shape(es: ElasticsearchProcess) -> None:
    body = es.http("GET", "/x/_search").json()
    assert body["status"] == 404
    err = body["error"]
    assert err["type"] == "index_not_found_exception" and err["reason"] == "no such index [x]"
    assert err["root_cause"] == [{"type": "index_not_found_exception", "reason": "no such index [x]",
                                  "resource.type": "index_or_alias", "resource.id": "x", "index_uuid": "_na_",
                                  "index": "x"}]
    assert es.http("HEAD", "/x").status_code == 404 and es.http("HEAD", "/x").content == b""


def test_unknown_parameter_and_parsing_errors(es: ElasticsearchProcess) -> None:
    es.http("PUT", "/params")
    resp = es.http("PUT", "/params/_doc/1", params={"_type": "doc"}, json={"a": 1})
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "root_cause": [{"type": "illegal_argument_exception",
                        "reason": "request [/params/_doc/1] contains unrecognized parameter: [_type]"}],
        "type": "illegal_argument_exception",
        "reason": "request [/params/_doc/1] contains unrecognized parameter: [_type]"}
    resp = es.http("POST", "/params/_search", json={"query": {"nope": {}}})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "parsing_exception"
    resp = es.http("POST", "/params/_search", json={"querry": {}})
    assert resp.json()["error"]["reason"] == "Unknown key for a START_OBJECT in [querry]."
    resp = es.http("POST", "/_bulk", data=ndjson({"index": {"_index": "params", "_type": "_doc"}}, {"a": 1}),
                   headers=NDJSON)
    assert resp.status_code == 400
    assert resp.json()["error"]["reason"] == "Action/metadata line [1] contains an unknown parameter [_type]"


def test_bulk_answers_every_item_in_order(es: ElasticsearchProcess) -> None:
    body = ndjson({"index": {"_index": "bulk", "_id": "1"}}, {"msg": "one"},
                  {"create": {"_index": "bulk", "_id": "1"}}, {"msg": "again"},
                  {"create": {"_index": "bulk"}}, {"msg": "generated id"},
                  {"delete": {"_index": "bulk", "_id": "1"}},
                  {"index": {"_index": "Bad"}}, {"msg": "bad index name"})
    resp = es.http("POST", "/_bulk", params={"refresh": "true"}, data=body,
                   headers={"Content-Type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
                            "Accept": COMPAT})
    assert resp.status_code == 200
    out = resp.json()
    assert out["errors"] is True
    items = [(op, item["status"]) for i in out["items"] for op, item in i.items()]
    assert items == [("index", 201), ("create", 409), ("create", 201), ("delete", 200), ("index", 400)]
    assert out["items"][4]["index"]["error"]["type"] == "invalid_index_name_exception"
    assert len(out["items"][2]["create"]["_id"]) >= 20
    assert es.http("GET", "/bulk/_count").json()["count"] == 1
    unterminated = es.http("POST", "/_bulk", data='{"index":{"_index":"bulk"}}\n{"a":1}', headers=NDJSON)
    assert unterminated.status_code == 400
    assert unterminated.json()["error"]["reason"] == "The bulk request must be terminated by a newline [\\n]"


def test_cat_indices(es: ElasticsearchProcess) -> None:
    es.http("PUT", "/cat-a", json={"settings": {"number_of_replicas": 0}})
    es.http("POST", "/cat-a/_doc", params={"refresh": "true"}, json={"a": 1})
    rows = es.http("GET", "/_cat/indices/cat-*", params={"format": "json"}).json()
    assert rows[0]["index"] == "cat-a" and rows[0]["docs.count"] == "1" and rows[0]["health"] == "green"
    assert all(isinstance(v, str) for v in rows[0].values())
    text = es.http("GET", "/_cat/indices/cat-*", params={"v": "", "h": "index,docs.count"}).text
    assert text.split("\n")[0].split() == ["index", "docs.count"] and text.split("\n")[1].split() == ["cat-a", "1"]


def test_indices_survive_sigkill(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = ElasticsearchProcess(tmp_path_factory.mktemp("es-kill"))
    try:
        lines = [{"index": {"_index": "durable", "_id": str(i)}} if k == 0 else {"n": i, "msg": f"line {i}"}
                 for i in range(500) for k in range(2)]
        assert es_ok(server.http("POST", "/_bulk", data=ndjson(*lines), headers=NDJSON))
        server.http("PUT", "/_index_template/t", json={"index_patterns": ["durable*"], "template": {}})
        server.kill()  # answered writes are committed: nothing to flush
        server.start()
        assert server.http("GET", "/durable/_count").json()["count"] == 500
        assert server.http("GET", "/durable/_doc/499").json()["_source"] == {"n": 499, "msg": "line 499"}
        assert server.http("GET", "/_index_template/t").status_code == 200
        mapping = server.http("GET", "/durable/_mapping").json()["durable"]["mappings"]["properties"]
        assert mapping["n"] == {"type": "long"}
    finally:
        server.stop()


def es_ok(resp: object) -> bool:
    return getattr(resp, "status_code", 0) == 200 and not resp.json()["errors"]  # type: ignore[attr-defined]
