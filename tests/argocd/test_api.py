"""Argo CD's API server over HTTP with ``requests``: sessions (bearer and cookie), the refusals in grpc-gateway's
shape, Applications through the API (list filters, get, create/update/delete, sync and rollback as operations
written on the resource, events, the resource tree), projects, repositories with a connection check, and
GitLab's push webhook with and without a secret."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import RunningArgoCD, watching

MANIFESTS = "shop/manifests"


def application(argocd: RunningArgoCD, name: str, automated: bool = False, project: str = "default",
                labels: dict[str, str] | None = None, repo: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": project,
        "source": {"repoURL": repo or f"{argocd.gitlab_url}/{MANIFESTS}.git", "targetRevision": "HEAD",
                   "path": "base"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": f"t-{name}"},
    }
    if automated:
        spec["syncPolicy"] = {"automated": {"prune": True, "selfHeal": True}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def assert_error(resp: requests.Response, status: int, code: int, message: str) -> None:
    """grpc-gateway's error: the HTTP status, ``code`` (gRPC) and the message in ``error`` and ``message``."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["message"] == message and body["error"] == message, body


def create(api: requests.Session, argocd: RunningArgoCD, name: str, **kw: Any) -> dict[str, Any]:
    resp = api.post(f"{argocd.url}/api/v1/applications", json=application(argocd, name, **kw), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


# -- sessions ------------------------------------------------------------------------------------------------
def test_session_token_cookie_and_userinfo(argocd: RunningArgoCD) -> None:
    resp = requests.post(f"{argocd.url}/api/v1/session", json={"username": "admin", "password": argocd.password()},
                         timeout=30)
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    header, claims, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["alg"] == "HS256"
    payload = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert payload["iss"] == "argocd" and payload["sub"] == "admin" and payload["exp"] > time.time()
    assert resp.cookies.get("argocd.token") == token
    info = requests.get(f"{argocd.url}/api/v1/session/userinfo", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).json()
    assert info == {"loggedIn": True, "username": "admin", "iss": "argocd", "groups": []}
    by_cookie = requests.get(f"{argocd.url}/api/v1/applications", cookies={"argocd.token": token}, timeout=30)
    assert by_cookie.status_code == 200, by_cookie.text
    assert requests.get(f"{argocd.url}/api/v1/session/userinfo", timeout=30).json() == {"loggedIn": False}
    logout = requests.delete(f"{argocd.url}/api/v1/session", cookies={"argocd.token": token}, timeout=30)
    assert logout.status_code == 200 and logout.cookies.get("argocd.token") is None
    assert 'argocd.token=""' in logout.headers["Set-Cookie"] or "Max-Age=0" in logout.headers["Set-Cookie"]


def test_session_refusals(argocd: RunningArgoCD) -> None:
    url = f"{argocd.url}/api/v1/session"
    assert_error(requests.post(url, json={"username": "admin", "password": "wrong"}, timeout=30),
                 401, 16, "Invalid username or password")
    assert_error(requests.post(url, json={"username": "nobody", "password": argocd.password()}, timeout=30),
                 401, 16, "Invalid username or password")
    assert_error(requests.post(url, json={}, timeout=30), 401, 16, "no credentials supplied")
    assert_error(requests.get(f"{argocd.url}/api/v1/applications", timeout=30), 401, 16, "no session information")
    forged = argocd.login()[:-4] + "AAAA"
    resp = requests.get(f"{argocd.url}/api/v1/applications", headers={"Authorization": f"Bearer {forged}"},
                        timeout=30)
    assert resp.status_code == 401 and resp.json()["message"].startswith("invalid session: "), resp.text


def test_version(argocd: RunningArgoCD, api: requests.Session) -> None:
    anonymous = requests.get(f"{argocd.url}/api/version", timeout=30).json()
    assert list(anonymous) == ["Version"] and anonymous["Version"].startswith("v3.")
    full = api.get(f"{argocd.url}/api/version", timeout=30).json()
    assert full["Version"] == anonymous["Version"] and "KustomizeVersion" in full and "Platform" in full


# -- applications ----------------------------------------------------------------------------------------------
def test_create_get_update_and_the_refusals(argocd: RunningArgoCD, api: requests.Session) -> None:
    url = f"{argocd.url}/api/v1/applications"
    created = create(api, argocd, "crud")
    assert created["kind"] == "Application" and created["metadata"]["namespace"] == "argocd"
    seen = argocd.kubectl("get", "applications.argoproj.io", "crud", "-n", "argocd", "-o", "json").stdout
    assert json.loads(seen)["spec"]["source"]["path"] == "base"
    assert api.post(url, json=application(argocd, "crud"), timeout=30).status_code == 200  # the same: idempotent
    changed = application(argocd, "crud")
    changed["spec"]["source"]["path"] = "overlays/dev"
    assert_error(api.post(url, json=changed, timeout=30), 400, 3,
                 "existing application spec is different, use upsert flag to force update")
    upserted = api.post(url, params={"upsert": "true"}, json=changed, timeout=30)
    assert upserted.status_code == 200 and upserted.json()["spec"]["source"]["path"] == "overlays/dev"
    assert_error(api.post(url, json=application(argocd, "elsewhere", project="nope"), timeout=30), 400, 3,
                 'app is not allowed in project "nope", or the project does not exist')
    narrow = {"metadata": {"name": "narrow"}, "spec": {"sourceRepos": ["http://allowed.example/*"],
                                                       "destinations": [{"server": "*", "namespace": "ok"}]}}
    assert api.post(f"{argocd.url}/api/v1/projects", json={"project": narrow}, timeout=30).status_code == 200
    assert_error(api.post(url, json=application(argocd, "narrow-app", project="narrow",
                                                repo="http://other.example/x/y.git"), timeout=30), 400, 3,
                 "application spec for narrow-app is invalid: InvalidSpecError: application repo "
                 "http://other.example/x/y.git is not permitted in project 'narrow'")
    assert_error(api.post(url, json=application(argocd, "narrow-app", project="narrow",
                                                repo="http://allowed.example/x/y.git"), timeout=30), 400, 3,
                 "application spec for narrow-app is invalid: InvalidSpecError: application destination server "
                 "'https://kubernetes.default.svc' and namespace 't-narrow-app' do not match any of the allowed "
                 "destinations in project 'narrow'")
    got = api.get(f"{url}/crud", timeout=30).json()
    got["spec"]["source"]["path"] = "base"
    assert api.put(f"{url}/crud", json=got, timeout=30).json()["spec"]["source"]["path"] == "base"
    spec = api.put(f"{url}/crud/spec", json={**got["spec"], "revisionHistoryLimit": 3}, timeout=30)
    assert spec.status_code == 200 and spec.json()["revisionHistoryLimit"] == 3


def test_a_missing_application_is_permission_denied(argocd: RunningArgoCD, api: requests.Session) -> None:
    url = f"{argocd.url}/api/v1/applications/no-such-app"
    for method, path in (("GET", ""), ("POST", "/sync"), ("POST", "/rollback"), ("GET", "/resource-tree"),
                         ("GET", "/managed-resources"), ("DELETE", "/operation"), ("GET", "/events"),
                         ("DELETE", "")):
        assert_error(api.request(method, url + path, json={} if method == "POST" else None, timeout=30),
                     403, 7, "permission denied")
    assert_error(api.get(url, params={"project": "default"}, timeout=30), 404, 5,
                 'applications.argoproj.io "no-such-app" not found')
    assert_error(api.get(url, params={"appNamespace": "kube-system"}, timeout=30), 403, 7, "permission denied")


def test_list_filters(argocd: RunningArgoCD, api: requests.Session) -> None:
    url = f"{argocd.url}/api/v1/applications"
    project = {"metadata": {"name": "team"}, "spec": {"sourceRepos": ["*"],
                                                      "destinations": [{"server": "*", "namespace": "*"}]}}
    assert api.post(f"{argocd.url}/api/v1/projects", json={"project": project}, timeout=30).status_code == 200
    create(api, argocd, "list-a", labels={"tier": "web"})
    create(api, argocd, "list-b", project="team", labels={"tier": "db"})
    create(api, argocd, "list-c", repo="http://other.example/x/y.git")

    def names(**params: Any) -> list[str]:
        resp = api.get(url, params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        return [a["metadata"]["name"] for a in resp.json()["items"] if a["metadata"]["name"].startswith("list-")]

    assert names() == ["list-a", "list-b", "list-c"]
    assert names(name="list-b") == ["list-b"]
    assert names(projects="team") == ["list-b"]
    assert names(projects=["team", "default"]) == ["list-a", "list-b", "list-c"]
    assert names(selector="tier=web") == ["list-a"]
    assert names(selector="tier in (web,db)") == ["list-a", "list-b"]
    assert names(repo="http://other.example/x/y.git") == ["list-c"]
    listed = api.get(url, timeout=30).json()
    assert listed["metadata"]["resourceVersion"]


def test_sync_writes_the_operation_and_an_event(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "manual")
    url = f"{argocd.url}/api/v1/applications/manual"
    resp = api.post(f"{url}/sync", timeout=30, json={
        "revision": "main", "prune": True, "dryRun": True, "strategy": {"apply": {"force": False}},
        "resources": [{"group": "apps", "kind": "Deployment", "name": "gateway"}],
        "syncOptions": {"items": ["CreateNamespace=true"]}})
    assert resp.status_code == 200, resp.text
    op = resp.json()["operation"]
    assert op["initiatedBy"] == {"username": "admin"}
    sync = op["sync"]
    assert sync["revision"] == "main" and sync["prune"] is True and sync["dryRun"] is True
    assert sync["syncOptions"] == ["CreateNamespace=true"] and sync["syncStrategy"] == {"apply": {"force": False}}
    assert sync["resources"] == [{"group": "apps", "kind": "Deployment", "name": "gateway"}]
    assert sync["source"]["path"] == "base"
    events = api.get(f"{url}/events", timeout=30).json()["items"]
    assert any(e["reason"] == "OperationStarted" and e["message"] == "admin initiated partial sync to main"
               for e in events), events


def test_sync_and_rollback_refusals(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "auto", automated=True)
    url = f"{argocd.url}/api/v1/applications/auto"
    assert_error(api.post(f"{url}/sync", json={"revision": "v9"}, timeout=30), 400, 9,
                 "Cannot sync to v9: auto-sync currently set to HEAD")
    assert_error(api.post(f"{url}/rollback", json={"id": 1}, timeout=30), 400, 9,
                 "rollback cannot be initiated when auto-sync is enabled")
    create(api, argocd, "no-history")
    assert_error(api.post(f"{argocd.url}/api/v1/applications/no-history/rollback", json={"id": 7}, timeout=30),
                 400, 3, "application argocd/no-history does not have deployment with id 7")
    assert_error(api.post(f"{url}/sync", json={"manifests": ["kind: Pod"]}, timeout=30), 501, 12,
                 "sync with local manifests is not supported by the labkit simulator")


def test_terminate_without_an_operation(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "idle")
    assert_error(api.delete(f"{argocd.url}/api/v1/applications/idle/operation", timeout=30), 400, 3,
                 "Unable to terminate operation. No operation is in progress")


def test_refresh_sets_the_annotation_the_controller_takes(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "refreshed")
    url = f"{argocd.url}/api/v1/applications/refreshed"
    with watching(argocd, "refreshed") as seen:
        resp = api.get(url, params={"refresh": "hard"}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert "hard" in seen.refreshes, seen.refreshes
    assert_error(api.get(url, params={"refresh": "soft"}, timeout=30), 400, 3,
                 "unknown refresh type 'soft': normal or hard")


def test_delete_without_cascade(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "doomed")
    resp = api.delete(f"{argocd.url}/api/v1/applications/doomed", params={"cascade": "false"}, timeout=30)
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    gone = argocd.kubectl("get", "applications.argoproj.io", "doomed", "-n", "argocd", check=False)
    assert "NotFound" in gone.stderr
    assert_error(api.delete(f"{argocd.url}/api/v1/applications/x", params={"cascade": "false",
                                                                           "propagationPolicy": "foreground"},
                            timeout=30), 403, 7, "permission denied")


def test_resource_tree_of_managed_resources(argocd: RunningArgoCD, api: requests.Session) -> None:
    create(api, argocd, "tree")
    resp = api.get(f"{argocd.url}/api/v1/applications/tree/resource-tree", timeout=30)
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"nodes", "hosts"}


# -- projects and repositories ----------------------------------------------------------------------------------
def test_projects(argocd: RunningArgoCD, api: requests.Session) -> None:
    items = api.get(f"{argocd.url}/api/v1/projects", timeout=30).json()["items"]
    assert "default" in [p["metadata"]["name"] for p in items]
    assert_error(api.get(f"{argocd.url}/api/v1/projects/absent", timeout=30), 404, 5,
                 'appprojects.argoproj.io "absent" not found')


def test_repositories_are_checked_before_they_are_kept(argocd: RunningArgoCD, api: requests.Session) -> None:
    url = f"{argocd.url}/api/v1/repositories"
    repo = f"{argocd.gitlab_url}/{MANIFESTS}.git"
    refused = api.post(url, json={"repo": repo, "username": "root", "password": "wrong"}, timeout=60)
    assert refused.status_code == 500 and refused.json()["code"] == 2, refused.text
    assert refused.json()["message"].startswith("error testing repository connectivity: ")
    assert "wrong" not in refused.text
    ok = api.post(url, json={"repo": repo, "username": "root", "password": argocd.gitlab_token}, timeout=60)
    assert ok.status_code == 200, ok.text
    assert ok.json()["connectionState"]["status"] == "Successful" and "password" not in ok.json()
    listed = api.get(url, timeout=60).json()["items"]
    assert [(r["repo"], r["connectionState"]["status"]) for r in listed] == [(repo, "Successful")]
    secrets = json.loads(argocd.kubectl("get", "secrets", "-n", "argocd", "-l",
                                        "argocd.argoproj.io/secret-type=repository", "-o", "json").stdout)["items"]
    assert [base64.b64decode(s["data"]["url"]).decode() for s in secrets] == [repo]
    assert_error(api.post(url, json={"repo": repo, "type": "helm"}, timeout=30), 501, 12,
                 "repository type 'helm' (only git) is not supported by the labkit simulator")


# -- the webhook ----------------------------------------------------------------------------------------------
def push_event(argocd: RunningArgoCD, branch: str = "main") -> dict[str, Any]:
    return {"object_kind": "push", "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": "1" * 40,
            "project": {"web_url": f"{argocd.gitlab_url}/{MANIFESTS}", "default_branch": "main"}, "commits": []}


def set_webhook_secret(argocd: RunningArgoCD, value: str | None) -> None:
    patch = {"data": {"webhook.gitlab.secret": base64.b64encode(value.encode()).decode() if value else None}}
    argocd.kubectl("patch", "secret", "argocd-secret", "-n", "argocd", "--type", "merge", "-p", json.dumps(patch))


@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_gitlab_push_refreshes_matching_applications(argocd: RunningArgoCD, api: requests.Session,
                                                     secret: str | None) -> None:
    name = f"hooked-{'secret' if secret else 'open'}"
    create(api, argocd, name)
    create(api, argocd, f"{name}-other", repo="http://other.example/x/y.git")
    set_webhook_secret(argocd, secret)
    try:
        hook = f"{argocd.url}/api/webhook"
        headers = {"X-Gitlab-Event": "Push Hook", **({"X-Gitlab-Token": secret} if secret else {})}
        if secret:
            for wrong in ({"X-Gitlab-Event": "Push Hook"}, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "no"}):
                with watching(argocd, name) as seen:
                    resp = requests.post(hook, json=push_event(argocd), headers=wrong, timeout=30)
                assert resp.status_code == 400 and resp.text.strip() == "Webhook processing failed", resp.text
                assert seen.refreshes == []
        with watching(argocd, f"{name}-other") as other, watching(argocd, name) as seen:
            resp = requests.post(hook, json=push_event(argocd), headers=headers, timeout=30)
            assert resp.status_code == 200, resp.text
        assert seen.refreshes[:1] == ["normal"] and other.refreshes == []
        with watching(argocd, name) as seen:  # a push to another branch than the one the Application follows
            requests.post(hook, json=push_event(argocd, "feature"), headers=headers, timeout=30)
        assert seen.refreshes == []
    finally:
        set_webhook_secret(argocd, None)
    unknown = requests.post(hook, json={}, headers={"X-Gitlab-Event": "Issue Hook"}, timeout=30)
    assert unknown.status_code == 400 and unknown.text.strip() == "Unknown webhook event"


# -- with the controller: an operation runs, history, rollback, the tree -----------------------------------------
def _plain_repo(argocd: RunningArgoCD, work: Path, name: str) -> tuple[str, list[str]]:
    """A public GitLab project ``root/<name>`` with two commits of one ConfigMap (data v: "1", then "2"):
    its repoURL and the two SHAs."""
    gl = argocd.gitlab_client()
    gl.projects.create({"name": name, "visibility": "public", "initialize_with_readme": False})
    host = argocd.gitlab_url.removeprefix("http://")
    url = f"http://root:{argocd.gitlab_token}@{host}/root/{name}.git"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, timeout=30)
    shas = []
    for value in ("1", "2"):
        (work / "cm.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: plain}}\n"
                                      f"data: {{v: \"{value}\"}}\n")
        for args in (["add", "cm.yaml"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                                          f"v{value}"]):
            subprocess.run(["git", *args], cwd=work, check=True, timeout=30)
        shas.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True,
                                   text=True).stdout.strip())
    subprocess.run(["git", "push", "-q", url, "main"], cwd=work, check=True, timeout=60, capture_output=True)
    return f"{argocd.gitlab_url}/root/{name}.git", shas


def _until(api: requests.Session, url: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        app = api.get(url, timeout=30).json()
        if done(app) or time.time() > deadline:
            return app
        time.sleep(0.2)


def test_sync_history_rollback_tree_and_managed_resources(argocd: RunningArgoCD, api: requests.Session,
                                                          tmp_path: Path) -> None:
    repo, (first, second) = _plain_repo(argocd, tmp_path / "plain", "plain")
    app = application(argocd, "plain", repo=repo)
    app["spec"]["source"]["path"] = "."
    app["spec"]["destination"]["namespace"] = "plain"
    app["spec"]["syncPolicy"] = {"syncOptions": ["CreateNamespace=true"]}
    assert api.post(f"{argocd.url}/api/v1/applications", json=app, timeout=30).status_code == 200
    url = f"{argocd.url}/api/v1/applications/plain"
    out_of_sync = _until(api, url, lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync")
    assert out_of_sync["status"]["sync"]["revision"] == second, out_of_sync.get("status")
    assert api.post(f"{url}/sync", json={"revision": first}, timeout=30).status_code == 200
    synced = _until(api, url, lambda a: (a["status"].get("operationState") or {}).get("phase") == "Succeeded")
    assert synced["status"]["operationState"]["syncResult"]["revision"] == first, synced["status"]
    assert [h["revision"] for h in synced["status"]["history"]] == [first]
    cm = json.loads(argocd.kubectl("get", "configmap", "plain", "-n", "plain", "-o", "json").stdout)
    assert cm["data"] == {"v": "1"}
    assert api.post(f"{url}/sync", json={}, timeout=30).status_code == 200  # to targetRevision (HEAD)
    _until(api, url, lambda a: len(a["status"].get("history") or []) == 2)
    assert json.loads(argocd.kubectl("get", "configmap", "plain", "-n", "plain", "-o", "json").stdout)[
        "data"] == {"v": "2"}
    first_id = _until(api, url, lambda a: True)["status"]["history"][0]["id"]
    rolled = api.post(f"{url}/rollback", json={"id": first_id}, timeout=30)
    assert rolled.status_code == 200 and rolled.json()["operation"]["sync"]["revision"] == first, rolled.text
    back = _until(api, url, lambda a: len(a["status"].get("history") or []) == 3)
    assert back["status"]["history"][-1]["revision"] == first
    assert json.loads(argocd.kubectl("get", "configmap", "plain", "-n", "plain", "-o", "json").stdout)[
        "data"] == {"v": "1"}
    tree = api.get(f"{url}/resource-tree", timeout=30).json()
    assert [(n["kind"], n["name"]) for n in tree["nodes"]] == [("ConfigMap", "plain")] and tree["hosts"] == []
    managed = api.get(f"{url}/managed-resources", timeout=30).json()["items"]
    assert [(m["kind"], m["name"]) for m in managed] == [("ConfigMap", "plain")]
    assert json.loads(managed[0]["targetState"])["data"] == {"v": "2"}  # what the source says now (HEAD)
    assert json.loads(managed[0]["liveState"])["data"] == {"v": "1"}
    assert api.get(f"{url}/managed-resources", params={"kind": "Deployment"}, timeout=30).json() == {"items": []}
    reasons = [e["reason"] for e in api.get(f"{url}/events", timeout=30).json()["items"]]
    assert reasons.count("OperationStarted") == 3, reasons
    # a cascading delete (the default): the controller deletes the resources, then the Application goes
    assert api.delete(url, timeout=30).json() == {}
    deadline = time.time() + 60
    while time.time() < deadline and api.get(url, timeout=30).status_code != 403:
        time.sleep(0.2)
    assert_error(api.get(url, timeout=30), 403, 7, "permission denied")
    assert argocd.kubectl("get", "configmap", "plain", "-n", "plain", check=False).returncode != 0


def test_terminate_a_running_operation(argocd: RunningArgoCD, api: requests.Session, tmp_path: Path) -> None:
    """A PreSync hook Job whose image never pulls keeps the sync Running: a second sync is refused while it runs,
    ``DELETE …/operation`` asks the controller to stop it, and the operation ends Failed, "Operation terminated"."""
    gl = argocd.gitlab_client()
    gl.projects.create({"name": "hooked", "visibility": "public"})
    work = tmp_path / "hooked"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, timeout=30)
    (work / "job.yaml").write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n"
        "    argocd.argoproj.io/hook: PreSync\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n"
        "      restartPolicy: Never\n      containers:\n      - {name: m, image: localhost:5001/none/none:1}\n")
    (work / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-hook}\ndata: {a: b}\n")
    for args in (["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "hook"]):
        subprocess.run(["git", *args], cwd=work, check=True, timeout=30)
    host = argocd.gitlab_url.removeprefix("http://")
    subprocess.run(["git", "push", "-q", f"http://root:{argocd.gitlab_token}@{host}/root/hooked.git", "main"],
                   cwd=work, check=True, timeout=60, capture_output=True)
    app = application(argocd, "hooked", repo=f"{argocd.gitlab_url}/root/hooked.git")
    app["spec"]["source"]["path"] = "."
    app["spec"]["syncPolicy"] = {"syncOptions": ["CreateNamespace=true"]}
    assert api.post(f"{argocd.url}/api/v1/applications", json=app, timeout=30).status_code == 200
    url = f"{argocd.url}/api/v1/applications/hooked"
    assert api.post(f"{url}/sync", json={}, timeout=30).status_code == 200
    running = _until(api, url, lambda a: (a.get("status") or {}).get("operationState", {}).get("phase") == "Running")
    assert running["status"]["operationState"]["phase"] == "Running", running.get("status")
    assert_error(api.post(f"{url}/sync", json={}, timeout=30), 400, 9,
                 "error setting app operation: another operation is already in progress")
    resp = api.delete(f"{url}/operation", timeout=30)
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    ended = _until(api, url, lambda a: a["status"]["operationState"]["phase"] not in ("Running", "Terminating"))
    state = ended["status"]["operationState"]
    assert (state["phase"], state["message"]) == ("Failed", "Operation terminated"), state
    assert "operation" not in ended
    assert argocd.kubectl("get", "configmap", "after-hook", "-n", "t-hooked", check=False).returncode != 0
