"""Argo CD's kind part through the contract harness: the ``argo-cd`` chart (played by the sim's Argo CD behind
``argocd-server``'s NodePort), reached from this machine on the published port, its admin password read from
``argocd-initial-admin-secret``, and GitLab reached by the name pods use (the GitLab container's, not 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import requests
import yaml

from labkit.argocd.kind import ArgoCDKind, git_base
from labkit.backends.kind.backend import render
from labkit.backends.kind.lab import KindLab
from labkit.gitlab.kind import GitLabKind
from labkit.kube.kind import KubernetesKind
from labkit.registry.kind import RegistryKind

from .harness import Harness


def _secret(rendered: KindLab, name: str, key: str) -> str:
    import kubernetes

    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(rendered.kubeconfig))
    return base64.b64decode(core.read_namespaced_secret(name, "argocd").data[key]).decode()


def test_argocd_chart_api_password_and_the_in_cluster_repo_url(harness: Harness, rendered: KindLab) -> None:
    part = ArgoCDKind()
    render(rendered)
    chart = rendered.versions["charts"]["argo-cd"]
    values = yaml.safe_load(part.values_file(rendered).read_text())
    assert values["server"]["service"] == {"type": "NodePort", "nodePortHttp": chart["node_port"]}
    assert values["configs"]["params"]["server.insecure"] is True
    for cmd in KubernetesKind().create(rendered, False):
        rendered.run(cmd.argv)
    rendered.run(rendered.compose("up", "--detach", "--wait", "haproxy", "gitlab", profiles=("gitlab",)))
    for cmd in [*RegistryKind().configure(rendered), *GitLabKind().configure(rendered), *part.configure(rendered)]:
        rendered.run(cmd.argv)
    calls = [c for c in harness.calls() if Path(c[0]).name == "helm" and "argo-cd" in c]
    assert calls and calls[-1][calls[-1].index("--version") + 1] == str(chart["version"])
    ep = part.endpoint(rendered)
    assert ep.url == f"http://127.0.0.1:{rendered.ports['argocd']}" and part.health(rendered, ep)[0]
    assert ep.git == git_base(rendered) == f"http://{rendered.container('gitlab')}:{rendered.ports['gitlab']}"
    # the admin signs in with the password argocd-server wrote into argocd-initial-admin-secret
    login = requests.post(f"{ep.url}/api/v1/session", timeout=30, json={
        "username": "admin", "password": _secret(rendered, "argocd-initial-admin-secret", "password")})
    assert login.status_code == 200, login.text
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {login.json()['token']}"
    # the repository by the name pods resolve: Argo CD's connection check reaches GitLab's container
    token = Path(GitLabKind().endpoint(rendered).token_file).read_text().strip()
    repo = f"{ep.git}/shop/manifests.git"
    created = api.post(f"{ep.url}/api/v1/repositories", timeout=60,
                       json={"repo": repo, "username": "root", "password": token})
    assert created.status_code == 200 and created.json()["connectionState"]["status"] == "Successful", created.text
    # an Application on that URL: the controller clones it (by the name pods use) and syncs the shop's manifests
    app = {"metadata": {"name": "shop"}, "spec": {
        "project": "default", "source": {"repoURL": repo, "targetRevision": "main", "path": "."},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    assert api.post(f"{ep.url}/api/v1/applications", json=app, timeout=30).status_code == 200
    head = subprocess.run(["git", "ls-remote", f"http://root:{token}@127.0.0.1:{rendered.ports['gitlab']}"
                           "/shop/manifests.git", "main"], capture_output=True, text=True, timeout=60).stdout.split()[0]
    deadline, status = time.time() + 90, {}
    while time.time() < deadline:
        status = api.get(f"{ep.url}/api/v1/applications/shop", timeout=30).json().get("status") or {}
        if status.get("sync", {}).get("status") == "Synced":
            break
        time.sleep(1)
    assert status.get("sync") == {"status": "Synced", "revision": head, "comparedTo": status["sync"]["comparedTo"]}, \
        status
    deployments = json.loads(rendered.run(rendered.kubectl("get", "deployments", "-n", "shop", "-o", "json")))
    assert {d["metadata"]["name"] for d in deployments["items"]} >= {"gateway", "catalog", "orders"}
    # the webhook secret of the chart's values is Argo CD's
    assert _secret(rendered, "argocd-secret", "webhook.gitlab.secret") == values["configs"]["secret"]["gitlabSecret"]
    hook = requests.post(f"{ep.url}/api/webhook", json={}, headers={"X-Gitlab-Event": "Push Hook"}, timeout=30)
    assert hook.status_code == 400 and hook.text.strip() == "Webhook processing failed"
