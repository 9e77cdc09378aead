"""``lab.argocd`` on a running sim lab: the admin's password from the Secret, a signed-in session, the Applications
as a table, repoURLs from the endpoint, the webhook secret, and Argo CD's refusals as LabError."""

from __future__ import annotations

import pytest
import requests

from labkit.core.errors import LabError
from labkit.lab import Lab


def test_the_view_signs_in_and_reads_applications(shared_lab: Lab) -> None:
    view = shared_lab.argocd
    assert view.endpoint.namespace == "argocd" and view.endpoint.user == "admin"
    assert view.endpoint.git == shared_lab.gitlab.url
    assert requests.post(f"{view.url}/api/v1/session", timeout=30,
                         json={"username": "admin", "password": view.password()}).status_code == 200
    assert view.session().get(f"{view.url}/api/v1/session/userinfo", timeout=30).json()["loggedIn"] is True
    repo = view.repo_url("shop/manifests")
    assert repo == f"{shared_lab.gitlab.url}/shop/manifests.git"
    assert view.webhook_secret()
    app = {"metadata": {"name": "view-table", "labels": {"team": "a"}}, "spec": {
        "project": "default", "source": {"repoURL": repo, "targetRevision": "main", "path": "."},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "view-table"}}}
    view.api("POST", "/applications", json=app)
    try:
        table = view.applications(selector="team=a")
        assert list(table["name"]) == ["view-table"]
        row = table.iloc[0]
        assert (row["project"], row["repo"], row["path"], row["revision"]) == ("default", repo, ".", "main")
        assert view.application("view-table", refresh="normal")["metadata"]["name"] == "view-table"
        with pytest.raises(LabError, match="403 to GET /applications/nope: permission denied"):
            view.application("nope")
    finally:
        view.api("DELETE", "/applications/view-table", params={"cascade": "false"})
