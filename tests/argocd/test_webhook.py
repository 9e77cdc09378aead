"""GitLab's own push webhook to Argo CD, end to end with the real clients: a project hook made with python-gitlab
(Argo CD's ``/api/webhook``, the ``webhook.gitlab.secret`` as its token), a ``git push`` to ``shop/manifests``,
and the Application that follows that repository refreshed at once (the refresh annotation on the resource),
while one following another branch is not; a hook with a wrong token refreshes nothing."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import requests

from .conftest import RunningArgoCD, watching

PROJECT = "shop/manifests"


def _application(argocd: RunningArgoCD, name: str, revision: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        "source": {"repoURL": f"{argocd.gitlab_url}/{PROJECT}.git", "targetRevision": revision, "path": "base"}}}


def _push(argocd: RunningArgoCD, work: Path, message: str) -> None:
    host = argocd.gitlab_url.removeprefix("http://")
    url = f"http://root:{argocd.gitlab_token}@{host}/{PROJECT}.git"
    if not work.exists():
        subprocess.run(["git", "clone", "-q", url, str(work)], check=True, timeout=60, capture_output=True)
    (work / "NOTES.md").write_text(message + "\n")
    for args in (["add", "NOTES.md"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                                       message], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=work, check=True, timeout=60, capture_output=True)


def test_a_git_push_refreshes_the_application_through_gitlabs_hook(argocd: RunningArgoCD, tmp_path: Path) -> None:
    api = argocd.session()
    for name, revision in (("follows-main", "main"), ("follows-head", "HEAD"), ("follows-dev", "dev")):
        resp = api.post(f"{argocd.url}/api/v1/applications", json=_application(argocd, name, revision), timeout=30)
        assert resp.status_code == 200, resp.text
    secret = json.loads(argocd.kubectl("get", "secret", "argocd-secret", "-n", "argocd", "-o", "json").stdout)
    token = base64.b64decode(secret["data"]["webhook.gitlab.secret"]).decode()
    assert token
    gl = argocd.gitlab_client()
    project = gl.projects.get(PROJECT)
    hook = project.hooks.create({"url": f"{argocd.url}/api/webhook", "push_events": True, "token": "wrong"})
    try:
        with watching(argocd, "follows-main") as seen:
            _push(argocd, tmp_path / "work", "a push with a hook whose token is wrong")
        assert seen.refreshes == []
        hook.token = token
        hook.save()
        with watching(argocd, "follows-main") as main, watching(argocd, "follows-head") as head, \
                watching(argocd, "follows-dev") as dev:
            _push(argocd, tmp_path / "work", "a push Argo CD hears about")
        assert main.refreshes[:1] == ["normal"] and head.refreshes[:1] == ["normal"] and dev.refreshes == []
    finally:
        hook.delete()
    plain = requests.get(f"{argocd.url}/api/webhook", timeout=30)
    assert plain.status_code == 400 and plain.text.strip() == "Unknown webhook event"
    wrong_method = requests.get(f"{argocd.url}/api/webhook", headers={"X-Gitlab-Event": "Push Hook"}, timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.text.strip() == "Webhook processing failed"


def test_which_repo_urls_a_push_names() -> None:
    """Argo CD's matching of a push's project URL to repoURLs: host and path, any scheme, port, user or ``.git``;
    GitLab's SSH hosts too; never another host (why the kind lab's 127.0.0.1 pushes match no in-cluster URL)."""
    from labkit.argocd.api.urls import same_repo, web_url_matches

    web = "http://gitlab.example.com/shop/manifests"
    for repo in ("https://gitlab.example.com/shop/manifests.git", "git@gitlab.example.com:shop/manifests.git",
                 "ssh://git@altssh.gitlab.example.com:443/shop/manifests.git", "http://GitLab.example.com:8929/shop/Manifests"):
        assert web_url_matches(web, repo), repo
    for repo in ("http://gitlab.example.com/shop/manifests2.git", "http://labkit-x-gitlab:8929/shop/manifests.git",
                 "http://127.0.0.1:8929/shop/manifests.git"):
        assert not web_url_matches(web, repo), repo
    assert same_repo("HTTP://h/a/b.git/", "http://h/a/b") and not same_repo("http://h/a/b", "http://h:81/a/b")
