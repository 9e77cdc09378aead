"""What the controller tests share: a lab of the Kubernetes API, the registry (the runnable test image), GitLab
and Argo CD on loopback; a manifest repository in GitLab pushed to with the system ``git``; Applications created
and read with the ``kubernetes`` client and ``kubectl``."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from labkit.argocd.component import ArgoCD
from labkit.gitlab.component import GitLab
from labkit.kube.component import KubeApiServer
from labkit.registry.component import Registry

from ..components import ComponentLoop
from ..kube.oci import push_image
from .conftest import RunningArgoCD

IMAGE = "localhost:5001/test/web"  # as the nodes name the lab's registry


class GitOpsLab(RunningArgoCD):
    """The registry (holding ``test/web`` tags 1 and 2), the Kubernetes API, GitLab and Argo CD."""

    def __init__(self, home: Path) -> None:
        ComponentLoop.__init__(self, home, "argocd")
        self.started = []
        registry = self.add(Registry(), "registry", "Registry")
        self.add(KubeApiServer(), "kubernetes", "Kubernetes")
        self.add(GitLab(), "gitlab", "GitLab")
        self.argocd = self.add(ArgoCD(), "argocd", "Argo CD")
        api, auth = registry.endpoint().api, ("admin", self.ctx.secrets.get("registry-admin-password"))
        resp = requests.post(f"{api}/projects", auth=auth, timeout=10, json={
            "project_name": "test", "metadata": {"public": "true"}})
        assert resp.status_code in (201, 409), resp.text
        for tag in ("1", "2"):
            push_image(registry.endpoint().url, "test/web", tag, version=tag, auth=auth)

    def custom(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(
            str(self.ctx.paths.kubeconfig)))

    def app(self, name: str) -> dict[str, Any]:
        return self.custom().get_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications", name)

    def create_app(self, name: str, repo: str, path: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"project": "default", "source": {"repoURL": repo, "path": path, "targetRevision": "HEAD",
                                                          **spec.pop("source", {})},
                         "destination": {"server": "https://kubernetes.default.svc",
                                         "namespace": spec.pop("namespace", "default")}, **spec}}
        return self.custom().create_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications",
                                                             body)

    def wait_app(self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        app: dict[str, Any] = {}
        while time.monotonic() < deadline:
            app = self.app(name)
            if check(app):
                return app
            time.sleep(0.1)
        raise AssertionError(f"{name} never got there: {yaml.safe_dump(app.get('status'))[:3000]}")

    def wait_app_gone(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.kubectl("get", "application", name, "-n", "argocd", check=False).returncode == 0:
            assert time.monotonic() < deadline, f"{name} is still there"
            time.sleep(0.2)

    def sync(self, name: str, **sync: Any) -> None:
        """``kubectl patch`` an operation on the Application, as Argo CD's CLI writes one."""
        import json

        self.kubectl("patch", "application", name, "-n", "argocd", "--type", "merge", "-p",
                     json.dumps({"operation": {"sync": sync, "initiatedBy": {"username": "admin"}}}))


def status(app: dict[str, Any]) -> tuple[str, str]:
    st = app.get("status") or {}
    return (st.get("sync") or {}).get("status", ""), (st.get("health") or {}).get("status", "")


def op_phase(app: dict[str, Any]) -> str:
    return ((app.get("status") or {}).get("operationState") or {}).get("phase", "")


class ManifestRepo:
    """A GitLab project cloned with the system ``git``: write files, commit, push."""

    def __init__(self, lab: GitOpsLab, name: str, workdir: Path) -> None:
        import gitlab

        gl = gitlab.Gitlab(lab.gitlab_url, private_token=lab.gitlab_token)
        gl.projects.create({"name": name, "visibility": "public", "initialize_with_readme": True})
        host = lab.gitlab_url.removeprefix("http://")
        self.url = f"{lab.gitlab_url}/root/{name}.git"
        self.push_url = f"http://root:{lab.gitlab_token}@{host}/root/{name}.git"
        self.dir = workdir / name
        self.git("clone", "-q", self.push_url, str(self.dir), cwd=workdir)
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "no_proxy": "*"}
        res = subprocess.run(["git", *args], cwd=cwd or self.dir, capture_output=True, text=True, env=env,
                             timeout=60)
        assert res.returncode == 0, f"git {' '.join(args)}: {res.stderr}"
        return res.stdout.strip()

    def write(self, files: dict[str, Any], message: str = "manifests") -> str:
        """Write (a dict/list: YAML documents; None: delete) and push; the new commit's SHA."""
        for rel, content in files.items():
            path = self.dir / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            docs = content if isinstance(content, list) else [content]
            path.write_text(content if isinstance(content, str) else yaml.safe_dump_all(docs, sort_keys=False))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "HEAD")
        return self.git("rev-parse", "HEAD")


def deployment(name: str, image: str = f"{IMAGE}:1", replicas: int = 1, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 8080}]}]}}}}


def configmap(name: str, data: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "data": data or {"k": "v"}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def history(app: dict[str, Any]) -> list[dict[str, Any]]:
    return list((app.get("status") or {}).get("history") or [])
