"""Argo CD alone with what it needs, on real loopback listeners in a temporary lab home (one loop on a thread):
the Kubernetes API server, GitLab (the Git server and its webhooks) and Argo CD, started in the lab's order, so
tests drive them with the real clients (``requests``, ``kubectl``, the ``kubernetes`` client, ``git``)."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.argocd.component import ArgoCD
from labkit.core.component import Component
from labkit.gitlab.component import GitLab
from labkit.gitlab.seed import root_token
from labkit.kube.component import KubeApiServer

from ..components import ComponentLoop


class RunningArgoCD(ComponentLoop):
    def __init__(self, home: Path) -> None:
        super().__init__(home, "argocd")
        self.started: list[Component] = []
        self.add(KubeApiServer(), "kubernetes", "Kubernetes")
        self.add(GitLab(), "gitlab", "GitLab")
        self.argocd = self.add(ArgoCD(), "argocd", "Argo CD")

    def add(self, component: Any, name: str, title: str) -> Any:
        self.start(component, name, title)
        self.started.append(component)
        self.ctx.endpoints[name] = component.endpoint()
        return component

    @property
    def url(self) -> str:
        return self.argocd.endpoint().url

    @property
    def gitlab_url(self) -> str:
        return self.ctx.endpoints["gitlab"].url

    @property
    def gitlab_token(self) -> str:
        return root_token(self.ctx.secrets)

    def gitlab_client(self) -> Any:
        """python-gitlab signed in as GitLab's root."""
        import gitlab

        return gitlab.Gitlab(self.gitlab_url, private_token=self.gitlab_token)

    def password(self) -> str:
        """The admin's first password, as a person reads it: the Secret, through the ``kubernetes`` client."""
        import kubernetes

        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(self.ctx.paths.kubeconfig)))
        secret = core.read_namespaced_secret("argocd-initial-admin-secret", "argocd")
        return base64.b64decode(secret.data["password"]).decode()

    def login(self) -> str:
        resp = requests.post(f"{self.url}/api/v1/session", json={"username": "admin", "password": self.password()},
                             timeout=30)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["token"])

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {self.login()}"
        return s

    def stop_components(self) -> None:
        for component in reversed(self.started):
            self.run(component.stop())


@pytest.fixture(scope="module")
def argocd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningArgoCD]:
    with RunningArgoCD(tmp_path_factory.mktemp("argocd") / "home") as running:
        yield running


@pytest.fixture(scope="module")
def api(argocd: RunningArgoCD) -> requests.Session:
    """An admin session (its bearer token from ``POST /api/v1/session``)."""
    return argocd.session()


class Seen:
    def __init__(self) -> None:
        self.refreshes: list[str] = []


class watching:
    """Watch one Application through the Kubernetes API and record each refresh annotation written on it."""

    def __init__(self, argocd: RunningArgoCD, name: str) -> None:
        import kubernetes

        client = kubernetes.config.new_client_from_config(str(argocd.ctx.paths.kubeconfig))
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.watch = kubernetes.watch.Watch()
        self.name = name
        self.seen = Seen()
        listed = self.custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications")
        self.rv = listed["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import urllib3

        with contextlib.suppress(urllib3.exceptions.ProtocolError):  # the stream cut by stop()
            self._stream()

    def _stream(self) -> None:
        for event in self.watch.stream(self.custom.list_namespaced_custom_object, "argoproj.io", "v1alpha1",
                                       "argocd", "applications", resource_version=self.rv,
                                       field_selector=f"metadata.name={self.name}", timeout_seconds=30):
            value = (event["object"]["metadata"].get("annotations") or {}).get("argocd.argoproj.io/refresh")
            if value:
                self.seen.refreshes.append(value)

    def __enter__(self) -> Seen:
        self.thread.start()
        time.sleep(0.3)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        deadline = time.time() + 5
        while time.time() < deadline and not self.seen.refreshes:
            time.sleep(0.05)
        self.watch.stop()
