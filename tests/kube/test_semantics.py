"""API semantics kubectl relies on, checked over raw HTTP: paging, selectors, finalizers, dry run, limits."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from labkit.lab import Lab

ROOT_CA = "kube-root-ca.crt"  # the root CA publisher's ConfigMap, in every namespace as on a cluster


class Api:
    def __init__(self, lab: Lab, server: int = 0) -> None:
        cfg = yaml.safe_load(Path(lab.kubeconfig).read_text())
        self.base = lab.kubernetes.endpoint.servers[server]
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = str(lab.paths.tls / "ca.crt")
        self.s.headers["Authorization"] = f"Bearer {cfg['users'][0]['user']['token']}"

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        headers = {"Content-Type": kw.pop("ctype", "application/json"), **kw.pop("headers", {})}
        data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
        return self.s.request(method, self.base + path, data=data, headers=headers, timeout=20, **kw)


@pytest.fixture
def api(shared_lab: Lab) -> Api:
    return Api(shared_lab)


@pytest.fixture
def ns(api: Api) -> str:
    name = f"sem-{uuid.uuid4().hex[:8]}"
    assert api("POST", "/api/v1/namespaces", {"metadata": {"name": name}}).status_code == 201
    return name


def cm(api: Api, ns: str, name: str, **extra: Any) -> requests.Response:
    meta = {"name": name, **extra.pop("meta", {})}
    return api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": meta, **extra})


def test_paging_with_limit_and_continue(api: Api, ns: str) -> None:
    for i in range(7):
        cm(api, ns, f"c{i}")
    names, token, pages = [], "", 0
    while True:
        r = api("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=3" + (f"&continue={token}" if token else "")).json()
        names += [i["metadata"]["name"] for i in r["items"]]
        pages += 1
        token = r["metadata"].get("continue", "")
        if not token:
            break
    names = [n for n in names if n != ROOT_CA]  # 7 or 8 items: 3 pages either way
    assert names == [f"c{i}" for i in range(7)] and pages == 3


def test_field_and_label_selectors(api: Api, ns: str) -> None:
    cm(api, ns, "a", meta={"labels": {"tier": "web", "v": "1"}})
    cm(api, ns, "b", meta={"labels": {"tier": "db"}})
    def names(q: str) -> list[str]:
        return [i["metadata"]["name"] for i in api("GET", f"/api/v1/namespaces/{ns}/configmaps?{q}").json()["items"]
                if i["metadata"]["name"] != ROOT_CA]
    assert names("fieldSelector=metadata.name=b") == ["b"]
    assert names("fieldSelector=metadata.name!=b") == ["a"]
    assert names("labelSelector=tier notin (db)") == ["a"]
    assert names("labelSelector=v") == ["a"] and names("labelSelector=!v") == ["b"]
    bad = api("GET", f"/api/v1/namespaces/{ns}/configmaps?fieldSelector=spec.nope=1")
    assert bad.status_code == 400 and bad.json()["message"] == "field label not supported: spec.nope"


def test_generate_name_dry_run_and_conflicts(api: Api, ns: str) -> None:
    r = api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"generateName": "gen-"}})
    assert r.status_code == 201 and r.json()["metadata"]["name"].startswith("gen-")
    dry = api("POST", f"/api/v1/namespaces/{ns}/configmaps?dryRun=All", {"metadata": {"name": "ghost"}})
    assert dry.status_code == 201 and dry.json()["metadata"]["uid"]
    assert api("GET", f"/api/v1/namespaces/{ns}/configmaps/ghost").status_code == 404
    missing_ns = cm(api, "no-such-namespace", "x")
    assert missing_ns.status_code == 404 and missing_ns.json()["message"] == 'namespaces "no-such-namespace" not found'


def test_finalizers_hold_deletion_until_removed(api: Api, ns: str) -> None:
    cm(api, ns, "held", meta={"finalizers": ["lab.example.com/hold"]})
    r = api("DELETE", f"/api/v1/namespaces/{ns}/configmaps/held")
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    assert api("GET", f"/api/v1/namespaces/{ns}/configmaps/held").status_code == 200
    api("PATCH", f"/api/v1/namespaces/{ns}/configmaps/held", {"metadata": {"finalizers": None}},
        ctype="application/merge-patch+json")
    assert api("GET", f"/api/v1/namespaces/{ns}/configmaps/held").status_code == 404


def test_owner_references_are_garbage_collected(api: Api, ns: str) -> None:
    owner = cm(api, ns, "owner").json()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    cm(api, ns, "child", meta={"ownerReferences": [ref]})
    api("DELETE", f"/api/v1/namespaces/{ns}/configmaps/owner")
    assert api("GET", f"/api/v1/namespaces/{ns}/configmaps/child").status_code == 404


def test_deletecollection_and_namespace_deletion(api: Api, ns: str) -> None:
    for i in range(3):
        cm(api, ns, f"d{i}", meta={"labels": {"batch": "x"}})
    assert api("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=batch=x").status_code == 200
    left = api("GET", f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    assert [i["metadata"]["name"] for i in left if i["metadata"]["name"] != ROOT_CA] == []
    cm(api, ns, "inside")
    gone = api("DELETE", f"/api/v1/namespaces/{ns}").json()
    assert gone["status"]["phase"] == "Terminating"
    for _ in range(50):
        if api("GET", f"/api/v1/namespaces/{ns}").status_code == 404:
            break
        time.sleep(0.05)
    assert api("GET", f"/api/v1/namespaces/{ns}").status_code == 404
    assert api("GET", f"/api/v1/namespaces/{ns}/configmaps/inside").status_code == 404


def test_watch_list_with_initial_events_end_bookmark(api: Api, ns: str) -> None:
    cm(api, ns, "one")
    r = api("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                   "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1&fieldSelector=metadata.name%3Done", stream=True)
    events = [json.loads(line) for line in r.iter_lines() if line]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    refused = api("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=1&sendInitialEvents=true")
    assert refused.status_code == 422  # rejected at once, so client-go falls back to list+watch


def test_limits_and_three_api_servers(shared_lab: Lab, api: Api, ns: str) -> None:
    big = api("POST", f"/api/v1/namespaces/{ns}/configmaps",
              {"metadata": {"name": "big"}, "data": {"x": "y" * 4_000_000}})
    assert big.status_code == 413 and big.json()["reason"] == "RequestEntityTooLarge"
    assert api("PUT", "/api/v1/namespaces").status_code == 405
    cm(api, ns, "shared")
    for server in (1, 2):
        other = Api(shared_lab, server)
        assert other("GET", f"/api/v1/namespaces/{ns}/configmaps/shared").status_code == 200
    assert api("GET", "/openapi/v2").status_code == 404
    assert api("GET", "/apis/nope.example.com/v1").status_code == 404


def test_accept_negotiation(api: Api, ns: str) -> None:
    cm(api, ns, "neg", data={"k": "v"})
    path = f"/api/v1/namespaces/{ns}/configmaps/neg"
    proto_first = api("GET", path, headers={"Accept": "application/vnd.kubernetes.protobuf, application/json"})
    assert proto_first.status_code == 200 and proto_first.headers["Content-Type"].startswith("application/json")
    as_yaml = api("GET", path, headers={"Accept": "application/yaml"})
    assert as_yaml.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text)["data"] == {"k": "v"}
    only_proto = api("GET", path, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert only_proto.status_code == 406 and only_proto.json()["reason"] == "NotAcceptable"
    assert only_proto.json()["message"].startswith("only the following media types are accepted: application/json")


def test_all_namespaces_paths_and_legacy_watch(api: Api, ns: str) -> None:
    assert api("POST", "/api/v1/configmaps", {"metadata": {"name": "x"}}).status_code == 405
    assert api("GET", f"/api/v1/namespaces/{ns}/nodes").status_code == 404
    cm(api, ns, "legacy")
    r = api("GET", f"/api/v1/watch/namespaces/{ns}/configmaps/legacy?timeoutSeconds=1", stream=True)
    events = [json.loads(line) for line in r.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "legacy")]
