"""Harbor's REST API (``/api/v2.0``) on the lab registry, driven with ``requests``: projects, repositories and
artifacts (double-encoded names), tags, labels, users, robots, immutability, quotas, the audit log; paging, queries,
error shapes and ``X-Request-Id``."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.parse
from typing import Any

import requests

from labkit.images.client import RegistryError

from .conftest import RunningRegistry
from .images import make_image


def errors(resp: requests.Response) -> tuple[int, str, str]:
    """(status, code, message) of a Harbor error answer, checking its shape."""
    body = resp.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1 and set(body["errors"][0]) == {"code", "message"}
    return resp.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def project(registry: RunningRegistry, name: str, public: bool = False, **extra: Any) -> int:
    resp = requests.post(f"{registry.api}/projects", auth=registry.auth, timeout=5, json={
        "project_name": name, "metadata": {"public": str(public).lower()}, **extra})
    assert resp.status_code == 201, resp.text
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def user(registry: RunningRegistry, name: str, password: str = "Harbor12345") -> tuple[str, str]:
    resp = requests.post(f"{registry.api}/users", auth=registry.auth, timeout=5, json={
        "username": name, "password": password, "email": f"{name}@lab.test", "realname": name})
    assert resp.status_code == 201, resp.text
    return name, password


def push(registry: RunningRegistry, repo: str, tag: str, name: str | None = None) -> str:
    image = make_image(name or f"{repo}:{tag}")
    return registry.client().push_image(repo, tag, image.config, list(image.layers))


def test_health_systeminfo_request_ids_and_error_shape(registry: RunningRegistry) -> None:
    health = requests.get(f"{registry.api}/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert {"core", "registry", "database"} <= {c["name"] for c in health.json()["components"]}
    assert re.fullmatch(r"[0-9a-f-]{36}", health.headers["X-Request-Id"])
    echoed = requests.get(f"{registry.api}/health", headers={"X-Request-Id": "mine-1"}, timeout=5)
    assert echoed.headers["X-Request-Id"] == "mine-1"
    anonymous = requests.get(f"{registry.api}/systeminfo", timeout=5).json()
    assert anonymous["auth_mode"] == "db_auth" and anonymous["harbor_version"].startswith("v2.")
    assert "registry_url" not in anonymous
    assert requests.get(f"{registry.api}/ping", timeout=5).text == "Pong"
    stats = requests.get(f"{registry.api}/statistics", auth=registry.auth, timeout=5).json()
    assert stats["total_project_count"] == stats["public_project_count"] + stats["private_project_count"] >= 2
    admin = requests.get(f"{registry.api}/systeminfo", auth=registry.auth, timeout=5).json()
    assert admin["registry_url"] == registry.host and admin["project_creation_restriction"] == "everyone"
    missing = requests.get(f"{registry.api}/projects/no-such-project", auth=registry.auth, timeout=5)
    assert errors(missing)[:2] == (404, "NOT_FOUND") and "X-Request-Id" in missing.headers
    assert errors(requests.get(f"{registry.api}/no/such/api", timeout=5))[:2] == (404, "NOT_FOUND")
    assert errors(requests.get(f"{registry.api}/projects", auth=("admin", "wrong"), timeout=5))[:2] == \
        (401, "UNAUTHORIZED")
    assert errors(requests.patch(f"{registry.api}/projects", auth=registry.auth, timeout=5))[:2] == \
        (405, "METHOD_NOT_ALLOWED")
    # the distribution API's answers carry one too, and its 401 sends clients to Harbor's token service
    v2 = requests.get(f"{registry.url}/v2/", timeout=5)
    assert v2.status_code == 401 and "X-Request-Id" in v2.headers
    assert v2.headers["WWW-Authenticate"] == \
        f'Bearer realm="{registry.url}/service/token",service="harbor-registry"'


def test_projects_crud_summary_and_refusals(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    pid = project(registry, "crud-private")
    got = requests.get(f"{api}/projects/crud-private", auth=auth, timeout=5).json()
    assert got["project_id"] == pid and got["name"] == "crud-private" and got["metadata"]["public"] == "false"
    assert got["owner_name"] == "admin" and got["repo_count"] == 0 and got["creation_time"].endswith("Z")
    assert requests.get(f"{api}/projects/{pid}", auth=auth, timeout=5).json()["name"] == "crud-private"
    assert requests.head(f"{api}/projects", params={"project_name": "crud-private"}, timeout=5).status_code == 200
    assert requests.head(f"{api}/projects", params={"project_name": "crud-none"}, timeout=5).status_code == 404
    conflict = requests.post(f"{api}/projects", auth=auth, json={"project_name": "crud-private"}, timeout=5)
    assert errors(conflict)[:2] == (409, "CONFLICT")
    bad = requests.post(f"{api}/projects", auth=auth, json={"project_name": "Bad_Name!"}, timeout=5)
    assert errors(bad)[:2] == (400, "BAD_REQUEST")
    anonymous = requests.post(f"{api}/projects", json={"project_name": "crud-anon"}, timeout=5)
    assert errors(anonymous)[:2] == (401, "UNAUTHORIZED")
    # private: invisible to the anonymous, 401 on a direct read
    names = [p["name"] for p in requests.get(f"{api}/projects", params={"page_size": 100}, timeout=5).json()]
    assert "crud-private" not in names and "library" in names and "shop" in names
    assert errors(requests.get(f"{api}/projects/crud-private", timeout=5))[:2] == (401, "UNAUTHORIZED")
    updated = requests.put(f"{api}/projects/crud-private", auth=auth, json={"metadata": {"public": "true"}},
                           timeout=5)
    assert updated.status_code == 200
    assert requests.get(f"{api}/projects/crud-private", timeout=5).json()["metadata"]["public"] == "true"
    push(registry, "crud-private/app", "1")
    summary = requests.get(f"{api}/projects/crud-private/summary", auth=auth, timeout=5).json()
    assert summary["repo_count"] == 1 and summary["project_admin_count"] == 1
    assert summary["quota"]["hard"]["storage"] == -1 and summary["quota"]["used"]["storage"] > 0
    refused = requests.delete(f"{api}/projects/crud-private", auth=auth, timeout=5)
    assert errors(refused)[:2] == (412, "PRECONDITION")
    assert requests.delete(f"{api}/projects/crud-private/repositories/app", auth=auth, timeout=5).status_code == 200
    assert requests.delete(f"{api}/projects/crud-private", auth=auth, timeout=5).status_code == 200
    assert requests.get(f"{api}/projects/crud-private", auth=auth, timeout=5).status_code == 404


def test_paging_headers_queries_and_sort(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    for i in range(12):
        project(registry, f"page-{i:02d}", public=i % 2 == 0)
    first = requests.get(f"{api}/projects", auth=auth, params={"q": "name=~page-"}, timeout=5)
    assert first.status_code == 200 and len(first.json()) == 10 and first.headers["X-Total-Count"] == "12"
    link = first.headers["Link"]
    assert link == f'<{urllib.parse.urlparse(api).path}/projects?q=name%3D~page-&page=2&page_size=10>; rel="next"'
    second = requests.get(f"{registry.url}{link[1:link.index('>')]}", auth=auth, timeout=5)
    assert [p["name"] for p in second.json()] == ["page-10", "page-11"]
    assert 'rel="prev"' in second.headers["Link"] and 'rel="next"' not in second.headers["Link"]
    middle = requests.get(f"{api}/projects", auth=auth, timeout=5,
                          params={"q": "name=~page-", "page": 2, "page_size": 3, "sort": "-name"})
    assert [p["name"] for p in middle.json()] == ["page-08", "page-07", "page-06"]
    assert middle.headers["Link"].count("rel=") == 2
    exact = requests.get(f"{api}/projects", auth=auth, params={"q": "name=page-03"}, timeout=5)
    assert [p["name"] for p in exact.json()] == ["page-03"] and exact.headers["X-Total-Count"] == "1"
    public = requests.get(f"{api}/projects", auth=auth, params={"q": "name=~page-,public=true"}, timeout=5)
    assert public.headers["X-Total-Count"] == "6"
    any_of = requests.get(f"{api}/projects", auth=auth, params={"q": "name={page-01 page-02}"}, timeout=5)
    assert [p["name"] for p in any_of.json()] == ["page-01", "page-02"]
    too_big = requests.get(f"{api}/projects", auth=auth, params={"page_size": 101}, timeout=5)
    assert errors(too_big)[:2] == (422, "UNPROCESSABLE_ENTITY")
    assert errors(requests.get(f"{api}/projects", auth=auth, params={"page": 0}, timeout=5))[0] == 422
    assert errors(requests.get(f"{api}/projects", auth=auth, params={"q": "color=red"}, timeout=5))[0] == 400
    hundred = requests.get(f"{api}/projects", auth=auth, params={"page_size": 100}, timeout=5)
    assert len(hundred.json()) == int(hundred.headers["X-Total-Count"]) and "Link" not in hundred.headers


def test_repositories_artifacts_and_tags_with_double_encoded_names(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    project(registry, "arts")
    digest = push(registry, "arts/team/app", "v1")
    base = f"{api}/projects/arts/repositories/team%252Fapp"
    repo = requests.get(base, auth=auth, timeout=5).json()
    assert repo["name"] == "arts/team/app" and repo["artifact_count"] == 1
    single = requests.get(f"{api}/projects/arts/repositories/team%2Fapp", auth=auth, timeout=5)
    assert errors(single)[:2] == (404, "NOT_FOUND")  # Harbor needs the `/` double-encoded
    repos = requests.get(f"{api}/projects/arts/repositories", auth=auth, timeout=5)
    assert [r["name"] for r in repos.json()] == ["arts/team/app"] and repos.headers["X-Total-Count"] == "1"
    arts = requests.get(f"{base}/artifacts", auth=auth, params={"with_label": "true"}, timeout=5).json()
    assert len(arts) == 1
    art = arts[0]
    image = make_image("arts/team/app:v1")
    assert art["digest"] == digest and art["type"] == "IMAGE" and art["repository_name"] == "arts/team/app"
    assert art["manifest_media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert art["extra_attrs"]["architecture"] == "amd64" and art["labels"] is None
    assert [t["name"] for t in art["tags"]] == ["v1"] and art["tags"][0]["immutable"] is False
    assert art["pull_time"] == "0001-01-01T00:00:00.000Z" and art["push_time"].endswith("Z")
    history = requests.get(f"{registry.url}{art['addition_links']['build_history']['href']}", auth=auth, timeout=5)
    assert history.status_code == 200 and history.json() == json.loads(image.config).get("history", [])
    no_tags = requests.get(f"{base}/artifacts", auth=auth, params={"with_tag": "false"}, timeout=5).json()
    assert no_tags[0]["tags"] is None
    # a pull sets pull_time (the artifact's and the tag's) and counts on the repository
    body, _, _ = registry.client().manifest("arts/team/app", "v1")
    assert art["size"] == len(body) + len(image.config) + sum(len(b) for b in image.layers)
    pulled = requests.get(f"{base}/artifacts/v1", auth=auth, timeout=5).json()
    assert pulled["pull_time"] != "0001-01-01T00:00:00.000Z" and pulled["tags"][0]["pull_time"].endswith("Z")
    assert requests.get(base, auth=auth, timeout=5).json()["pull_count"] == 1
    by_digest = requests.get(f"{base}/artifacts/{digest}", auth=auth, timeout=5).json()
    assert by_digest["id"] == art["id"]
    # tags: create, list, refuse a duplicate, delete (the registry sees them)
    made = requests.post(f"{base}/artifacts/{digest}/tags", auth=auth, json={"name": "stable"}, timeout=5)
    assert made.status_code == 201
    assert registry.client().tags("arts/team/app") == ["stable", "v1"]
    tags = requests.get(f"{base}/artifacts/{digest}/tags", auth=auth, timeout=5)
    assert sorted(t["name"] for t in tags.json()) == ["stable", "v1"] and tags.headers["X-Total-Count"] == "2"
    dup = requests.post(f"{base}/artifacts/{digest}/tags", auth=auth, json={"name": "stable"}, timeout=5)
    assert errors(dup)[:2] == (409, "CONFLICT")
    assert requests.delete(f"{base}/artifacts/{digest}/tags/stable", auth=auth, timeout=5).status_code == 200
    assert registry.client().tags("arts/team/app") == ["v1"]
    assert errors(requests.get(f"{base}/artifacts/nope", auth=auth, timeout=5))[:2] == (404, "NOT_FOUND")
    # q over artifacts, then delete the artifact: gone from the registry too
    second = push(registry, "arts/team/app", "v2", "second image")
    listed = requests.get(f"{base}/artifacts", auth=auth, params={"q": "tags=v2"}, timeout=5).json()
    assert [a["digest"] for a in listed] == [second]
    newest = requests.get(f"{base}/artifacts", auth=auth, params={"sort": "-push_time"}, timeout=5).json()
    assert [a["digest"] for a in newest] == [second, digest]
    assert requests.delete(f"{base}/artifacts/{second}", auth=auth, timeout=5).status_code == 200
    try:
        registry.client().manifest("arts/team/app", "v2")
        raise AssertionError("the deleted artifact is still pulled")
    except RegistryError as err:
        assert err.status == 404


def test_labels_on_artifacts(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    pid = project(registry, "labelled")
    digest = push(registry, "labelled/app", "1")
    made = requests.post(f"{api}/labels", auth=auth, timeout=5, json={
        "name": "prod", "color": "#C92100", "description": "running in production", "scope": "g"})
    assert made.status_code == 201
    gid = int(made.headers["Location"].rsplit("/", 1)[1])
    local = requests.post(f"{api}/labels", auth=auth, timeout=5,
                          json={"name": "team-a", "scope": "p", "project_id": pid})
    lid = int(local.headers["Location"].rsplit("/", 1)[1])
    assert errors(requests.post(f"{api}/labels", auth=auth, json={"name": "prod", "scope": "g"}, timeout=5))[0] == 409
    assert errors(requests.post(f"{api}/labels", auth=auth, json={"name": "x", "scope": "g", "color": "red"},
                                timeout=5))[0] == 400
    globals_ = requests.get(f"{api}/labels", auth=auth, params={"scope": "g"}, timeout=5).json()
    assert [g["name"] for g in globals_] == ["prod"] and globals_[0]["color"] == "#C92100"
    scoped = requests.get(f"{api}/labels", auth=auth, params={"scope": "p", "project_id": pid}, timeout=5).json()
    assert [s["name"] for s in scoped] == ["team-a"]
    base = f"{api}/projects/labelled/repositories/app/artifacts/{digest}"
    for label_id in (gid, lid):
        assert requests.post(f"{base}/labels", auth=auth, json={"id": label_id}, timeout=5).status_code == 201
    assert errors(requests.post(f"{base}/labels", auth=auth, json={"id": gid}, timeout=5))[0] == 409
    art = requests.get(base, auth=auth, params={"with_label": "true"}, timeout=5).json()
    assert [label["name"] for label in art["labels"]] == ["prod", "team-a"]
    assert requests.delete(f"{base}/labels/{lid}", auth=auth, timeout=5).status_code == 200
    art = requests.get(base, auth=auth, params={"with_label": "true"}, timeout=5).json()
    assert [label["name"] for label in art["labels"]] == ["prod"]
    by_label = requests.get(f"{api}/projects/labelled/repositories/app/artifacts", auth=auth,
                            params={"q": f"labels={gid}"}, timeout=5).json()
    assert [a["digest"] for a in by_label] == [digest]


def test_users_members_and_project_roles(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    dev = user(registry, "dev1")
    guest = user(registry, "guest1")
    weak = requests.post(f"{api}/users", auth=auth, json={"username": "weak", "password": "short"}, timeout=5)
    assert errors(weak)[:2] == (400, "BAD_REQUEST")
    assert errors(requests.post(f"{api}/users", auth=auth, json={"username": "dev1", "password": "Harbor12345"},
                                timeout=5))[0] == 409
    assert errors(requests.post(f"{api}/users", auth=dev, json={"username": "x", "password": "Harbor12345"},
                                timeout=5))[:2] == (403, "FORBIDDEN")
    listed = requests.get(f"{api}/users", auth=auth, params={"q": "username=~1"}, timeout=5).json()
    assert sorted(u["username"] for u in listed) == ["dev1", "guest1"]
    me = requests.get(f"{api}/users/current", auth=dev, timeout=5).json()
    assert me["username"] == "dev1" and me["sysadmin_flag"] is False and me["email"] == "dev1@lab.test"
    changer = user(registry, "changer1")
    uid = requests.get(f"{api}/users/current", auth=changer, timeout=5).json()["user_id"]
    wrong = requests.put(f"{api}/users/{uid}/password", auth=changer, timeout=5,
                         json={"old_password": "nope", "new_password": "Changed12345"})
    assert errors(wrong)[:2] == (403, "FORBIDDEN")
    assert requests.put(f"{api}/users/{uid}/password", auth=changer, timeout=5, json={
        "old_password": changer[1], "new_password": "Changed12345"}).status_code == 200
    assert errors(requests.get(f"{api}/users/current", auth=changer, timeout=5))[0] == 401
    assert requests.get(f"{api}/users/current", auth=("changer1", "Changed12345"), timeout=5).status_code == 200
    assert errors(requests.get(f"{api}/users/{uid}", auth=dev, timeout=5))[0] == 403  # another user's profile
    assert requests.delete(f"{api}/users/{uid}", auth=auth, timeout=5).status_code == 200
    assert errors(requests.get(f"{api}/users/current", auth=("changer1", "Changed12345"), timeout=5))[0] == 401
    project(registry, "team")
    for who, role in ((dev, 2), (guest, 3)):
        added = requests.post(f"{api}/projects/team/members", auth=auth, timeout=5,
                              json={"role_id": role, "member_user": {"username": who[0]}})
        assert added.status_code == 201
    members = requests.get(f"{api}/projects/team/members", auth=auth, timeout=5).json()
    assert {(m["entity_name"], m["role_name"]) for m in members} == {
        ("admin", "projectAdmin"), ("dev1", "developer"), ("guest1", "guest")}
    assert requests.get(f"{api}/projects/team", auth=dev, timeout=5).json()["current_user_role_id"] == 2
    # the developer pushes, the guest only pulls; neither may delete the project
    image = make_image("team push")
    from labkit.images.client import RegistryClient

    RegistryClient(registry.url, *dev).push_image("team/app", "1", image.config, list(image.layers))
    assert RegistryClient(registry.url, *guest).manifest("team/app", "1")
    try:
        RegistryClient(registry.url, *guest).push_image("team/app", "2", image.config, list(image.layers))
        raise AssertionError("a guest pushed")
    except RegistryError as err:
        assert err.status == 401
    assert errors(requests.delete(f"{api}/projects/team", auth=dev, timeout=5))[:2] == (403, "FORBIDDEN")
    outsider = user(registry, "outsider1")
    assert errors(requests.get(f"{api}/projects/team", auth=outsider, timeout=5))[:2] == (403, "FORBIDDEN")
    assert "team" not in [p["name"] for p in requests.get(f"{api}/projects", auth=outsider, timeout=5).json()]


def test_robot_accounts(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    pid = project(registry, "robots")
    made = requests.post(f"{api}/robots", auth=auth, timeout=5, json={
        "name": "ci", "description": "the pipeline", "duration": 30, "level": "project", "permissions": [
            {"kind": "project", "namespace": "robots", "access": [{"resource": "repository", "action": "push"},
                                                                  {"resource": "repository", "action": "pull"}]}]})
    assert made.status_code == 201
    body = made.json()
    assert body["name"] == "robot$robots+ci" and len(body["secret"]) >= 16
    assert body["expires_at"] - time.time() > 29 * 86400
    rid = body["id"]
    shown = requests.get(f"{api}/robots/{rid}", auth=auth, timeout=5).json()
    assert shown["secret"] == "" and shown["level"] == "project" and shown["disable"] is False  # shown once only
    assert shown["permissions"][0]["access"][0] == {"resource": "repository", "action": "push"}
    creds = (body["name"], body["secret"])
    assert requests.get(f"{api}/projects/robots", auth=creds, timeout=5).status_code == 200  # API Basic auth
    listed = requests.get(f"{api}/robots", auth=auth, params={"q": f"Level=project,ProjectID={pid}"},
                          timeout=5).json()
    assert [r["name"] for r in listed] == ["robot$robots+ci"]
    legacy = requests.get(f"{api}/projects/robots/robots", auth=auth, timeout=5).json()
    assert [r["name"] for r in legacy] == ["robot$robots+ci"]
    dup = requests.post(f"{api}/robots", auth=auth, timeout=5, json={
        "name": "ci", "duration": -1, "level": "project",
        "permissions": [{"kind": "project", "namespace": "robots",
                         "access": [{"resource": "repository", "action": "pull"}]}]})
    assert errors(dup)[:2] == (409, "CONFLICT")
    bad = requests.post(f"{api}/robots", auth=auth, timeout=5, json={
        "name": "x", "duration": -1, "level": "project",
        "permissions": [{"kind": "project", "namespace": "robots",
                         "access": [{"resource": "repository", "action": "fly"}]}]})
    assert errors(bad)[:2] == (400, "BAD_REQUEST")
    image = make_image("robot push")
    from labkit.images.client import RegistryClient

    RegistryClient(registry.url, *creds).push_image("robots/app", "1", image.config, list(image.layers))
    # a new secret: the old one stops working
    fresh = requests.patch(f"{api}/robots/{rid}", auth=auth, json={}, timeout=5).json()["secret"]
    assert fresh != creds[1]
    assert errors(requests.get(f"{api}/projects/robots", auth=creds, timeout=5))[0] == 401
    creds = (creds[0], fresh)
    # disabled: refused by the API and the token service
    assert requests.put(f"{api}/robots/{rid}", auth=auth, timeout=5,
                        json={**shown, "disable": True}).status_code == 200
    assert requests.get(f"{registry.url}/service/token", auth=creds, timeout=5,
                        params={"service": "harbor-registry", "scope": "repository:robots/app:pull"}).status_code == 401
    assert requests.put(f"{api}/robots/{rid}", auth=auth, timeout=5,
                        json={**shown, "disable": False}).status_code == 200
    assert RegistryClient(registry.url, *creds).manifest("robots/app", "1")
    assert requests.delete(f"{api}/robots/{rid}", auth=auth, timeout=5).status_code == 200
    assert errors(requests.get(f"{api}/robots/{rid}", auth=auth, timeout=5))[0] == 404
    # an expired robot cannot sign in
    short = requests.post(f"{api}/projects/robots/robots", auth=auth, timeout=5, json={
        "name": "old", "duration": 1, "access": [{"resource": f"/project/{pid + 1000}/repository",
                                                  "action": "pull"}]})
    assert errors(short)[0] == 400  # the v1 resource names this project
    short = requests.post(f"{api}/projects/robots/robots", auth=auth, timeout=5, json={
        "name": "old", "duration": 1, "access": [{"resource": f"/project/{pid}/repository", "action": "pull"}]})
    assert short.status_code == 201 and short.json()["name"] == "robot$robots+old"
    registry.component.harbor.store.db.execute("UPDATE robots SET expires_at=? WHERE name=?",
                                               (int(time.time()) - 1, "robot$robots+old"))
    assert requests.get(f"{api}/projects/robots", auth=("robot$robots+old", short.json()["secret"]),
                        timeout=5).status_code == 401


def test_tag_immutability(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    project(registry, "immut")
    rule = {"disabled": False, "action": "immutable", "template": "immutable_template",
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": "**"}]}}
    made = requests.post(f"{api}/projects/immut/immutabletagrules", auth=auth, json=rule, timeout=5)
    assert made.status_code == 201
    assert errors(requests.post(f"{api}/projects/immut/immutabletagrules", auth=auth, json=rule,
                                timeout=5))[0] == 409
    bad = {**rule, "tag_selectors": [{"kind": "doublestar", "decoration": "maybe", "pattern": "x"}]}
    assert errors(requests.post(f"{api}/projects/immut/immutabletagrules", auth=auth, json=bad, timeout=5))[0] == 400
    rules = requests.get(f"{api}/projects/immut/immutabletagrules", auth=auth, timeout=5).json()
    assert len(rules) == 1 and rules[0]["tag_selectors"][0]["pattern"] == "v*" and rules[0]["action"] == "immutable"
    first = push(registry, "immut/app", "v1", "first")
    push(registry, "immut/app", "latest", "first")
    push(registry, "immut/app", "latest", "second")  # not matched: may move
    image = make_image("second")
    client = registry.client()
    try:
        client.push_image("immut/app", "v1", image.config, list(image.layers))
        raise AssertionError("an immutable tag was overwritten")
    except RegistryError as err:
        assert err.status == 412 and "PRECONDITION" in str(err)
        assert "Failed to process request due to 'app:v1' configured as immutable." in str(err)
    assert client.manifest_digest("immut/app", "v1") == first
    failed = requests.get(f"{api}/auditlog-exts", auth=auth, timeout=5,
                          params={"q": "resource=immut/app:v1,operation_result=false"}).json()
    assert [(e["operation"], e["operation_result"]) for e in failed] == [("create", False)]
    base = f"{api}/projects/immut/repositories/app/artifacts"
    assert requests.get(f"{base}/v1", auth=auth, timeout=5).json()["tags"][0]["immutable"] is True
    assert errors(requests.delete(f"{base}/v1/tags/v1", auth=auth, timeout=5))[:2] == (412, "PRECONDITION")
    assert errors(requests.delete(f"{base}/{first}", auth=auth, timeout=5))[:2] == (412, "PRECONDITION")
    refused = requests.delete(f"{registry.url}/v2/immut/app/manifests/{first}", auth=auth, timeout=5)
    assert refused.status_code == 412
    # disabled, the rule no longer holds
    rid = rules[0]["id"]
    assert requests.put(f"{api}/projects/immut/immutabletagrules/{rid}", auth=auth, timeout=5,
                        json={"id": rid, "disabled": True}).status_code == 200
    moved = client.push_image("immut/app", "v1", image.config, list(image.layers))
    assert client.manifest_digest("immut/app", "v1") == moved != first
    assert requests.delete(f"{api}/projects/immut/immutabletagrules/{rid}", auth=auth, timeout=5).status_code == 200
    assert requests.get(f"{api}/projects/immut/immutabletagrules", auth=auth, timeout=5).json() == []


def test_project_quota(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    pid = project(registry, "quota", storage_limit=4096)
    quotas = requests.get(f"{api}/quotas", auth=auth, params={"reference_id": pid}, timeout=5).json()
    assert len(quotas) == 1 and quotas[0]["ref"]["name"] == "quota" and quotas[0]["hard"] == {"storage": 4096}
    assert quotas[0]["used"] == {"storage": 0}
    small = make_image("small")
    client = registry.client()
    client.push_image("quota/app", "small", small.config, list(small.layers))
    used = requests.get(f"{api}/quotas/{pid}", auth=auth, timeout=5).json()["used"]["storage"]
    body, _, _ = client.manifest("quota/app", "small")
    assert used == len(body) + len(small.config) + sum(len(b) for b in small.layers)
    big = make_image("big", layer_files=[{"blob.bin": random.Random(1).randbytes(8192)}])  # does not compress
    try:
        client.push_image("quota/app", "big", big.config, list(big.layers))
        raise AssertionError("a push over the quota was taken")
    except RegistryError as err:
        assert err.status == 403 and "DENIED" in str(err)
        assert "will exceed the configured upper limit of 4.0 KiB" in str(err)
    assert errors(requests.put(f"{api}/quotas/{pid}", auth=auth, json={"hard": {"storage": 0}}, timeout=5))[0] == 400
    dev = user(registry, "quota-dev")
    assert errors(requests.put(f"{api}/quotas/{pid}", auth=dev, json={"hard": {"storage": -1}},
                               timeout=5))[0] == 403
    assert requests.put(f"{api}/quotas/{pid}", auth=auth, json={"hard": {"storage": -1}}, timeout=5).status_code == 200
    client.push_image("quota/app", "big", big.config, list(big.layers))


def test_audit_log(registry: RunningRegistry) -> None:
    api, auth = registry.api, registry.auth
    project(registry, "audited")
    digest = push(registry, "audited/app", "1")
    registry.client().manifest("audited/app", "1")
    registry.client().manifest("audited/app", digest)
    assert requests.delete(f"{registry.url}/v2/audited/app/manifests/1", auth=auth, timeout=5).status_code == 202
    robot = requests.post(f"{api}/robots", auth=auth, timeout=5, json={
        "name": "audit", "duration": -1, "level": "project",
        "permissions": [{"kind": "project", "namespace": "audited",
                         "access": [{"resource": "repository", "action": "pull"}]}]})
    assert robot.status_code == 201
    since = "audited"
    ext = requests.get(f"{api}/auditlog-exts", auth=auth, params={"q": f"resource=~{since}", "page_size": 100},
                       timeout=5)
    entries = ext.json()
    assert ext.headers["X-Total-Count"] == str(len(entries))
    assert [(e["operation"], e["resource_type"], e["resource"]) for e in entries] == [
        ("create", "robot", "robot$audited+audit"),
        ("delete", "tag", "audited/app:1"),
        ("pull", "artifact", f"audited/app@{digest}"),
        ("pull", "artifact", "audited/app:1"),
        ("create", "artifact", "audited/app:1"),
        ("create", "project", "audited")]  # newest first
    assert all(e["username"] == "admin" and e["operation_result"] is True for e in entries)
    assert all(e["op_time"].endswith("Z") for e in entries)
    legacy = requests.get(f"{api}/audit-logs", auth=auth, params={"q": "resource=~audited", "page_size": 100},
                          timeout=5).json()
    assert [e["id"] for e in legacy] == [e["id"] for e in entries]
    assert set(legacy[0]) == {"id", "username", "resource", "resource_type", "operation", "op_time"}
    oldest = requests.get(f"{api}/audit-logs", auth=auth, timeout=5,
                          params={"q": "resource=~audited,operation=pull", "sort": "op_time"}).json()
    assert [e["resource"] for e in oldest] == ["audited/app:1", f"audited/app@{digest}"]
    project_logs = requests.get(f"{api}/projects/audited/logs", auth=auth, timeout=5)
    assert project_logs.headers["X-Total-Count"] == str(len(entries))
    # an anonymous pull (a public project) is recorded as the anonymous user's
    push(registry, "library/audited-anon", "1")
    assert registry.client(anonymous=True).manifest("library/audited-anon", "1")
    anon = requests.get(f"{api}/auditlog-exts", auth=auth, timeout=5,
                        params={"q": "resource=library/audited-anon:1,operation=pull"}).json()
    assert [e["username"] for e in anon] == ["anonymous"]
    assert errors(requests.get(f"{api}/audit-logs", timeout=5))[0] == 401
    assert errors(requests.get(f"{api}/audit-logs", auth=user(registry, "audit-peek"), timeout=5))[0] == 403


def test_rule_selectors() -> None:
    """Doublestar patterns as Harbor's immutability and retention rules read them."""
    from labkit.registry.harbor.selectors import matches, rule_applies

    assert matches("**", "team/app") and matches("*", "app") and not matches("*", "team/app")
    assert matches("v?.*", "v1.2") and not matches("v?.*", "v10.2")
    assert matches("{latest,stable}", "stable") and not matches("{latest,stable}", "dev")
    assert matches("release-**", "release-1/x") and not matches("release-*", "release-1/x")
    rule = {"tag_selectors": [{"kind": "doublestar", "decoration": "excludes", "pattern": "dev*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": "team/**"}]}}
    assert rule_applies(rule, "team/app", "v1") and not rule_applies(rule, "team/app", "dev-3")
    assert not rule_applies(rule, "other", "v1") and not rule_applies({**rule, "disabled": True}, "team/app", "v1")
