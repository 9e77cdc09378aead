"""``lab.argocd``: the lab's Argo CD from a notebook, the same on every backend: its API server with an
authenticated ``requests`` session (the admin's first password read, as Argo CD documents, from the
``argocd-initial-admin-secret`` Secret through the Kubernetes API), and the Applications as a table.
The chapter's helpers (``views.py``, the timeline and the resource tree) build on these."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError
from ..core.view import ProductView
from ..endpoints import ArgoCDEndpoint
from .chapter import ChapterHelpers

if TYPE_CHECKING:
    import pandas as pd
    import requests

INITIAL_ADMIN_SECRET = "argocd-initial-admin-secret"
APP_COLUMNS = ("name", "project", "repo", "path", "revision", "sync", "health", "operation", "synced_revision",
               "reconciled_at")


class ArgoCDView(ChapterHelpers, ProductView):
    _session: requests.Session | None = None

    @property
    def endpoint(self) -> ArgoCDEndpoint:
        return self.lab.endpoints.get(ArgoCDEndpoint)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def password(self) -> str:
        """The admin's first password, from ``argocd-initial-admin-secret`` (its ``password`` key) in Argo CD's
        namespace: what ``kubectl -n argocd get secret argocd-initial-admin-secret`` shows, base64-decoded."""
        return self._secret_value(INITIAL_ADMIN_SECRET, "password")

    def _secret_value(self, name: str, key: str) -> str:
        """One key of a Secret in Argo CD's namespace, decoded, through the Kubernetes API."""
        import kubernetes

        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(self.lab.kubeconfig))
        try:
            secret = core.read_namespaced_secret(name, self.endpoint.namespace)
        except kubernetes.client.ApiException as err:
            if err.status == 404:
                raise LabError(f"no {name} Secret in namespace {self.endpoint.namespace}: "
                               "Argo CD is not installed yet (`labkit status`)") from None
            raise
        if key not in (secret.data or {}):
            raise LabError(f"the {name} Secret has no {key!r}")
        return base64.b64decode(secret.data[key]).decode()

    def webhook_secret(self) -> str:
        """``webhook.gitlab.secret`` of the ``argocd-secret`` Secret: the token a GitLab webhook to
        ``{url}/api/webhook`` must send (``X-Gitlab-Token``)."""
        return self._secret_value("argocd-secret", "webhook.gitlab.secret")

    def repo_url(self, project: str) -> str:
        """The repoURL of a lab GitLab project (``shop/manifests``) as Argo CD reaches it, on either backend."""
        base = self.endpoint.git or self.lab.gitlab.url
        return f"{base.rstrip('/')}/{project}.git"

    def login(self, username: str | None = None, password: str | None = None) -> str:
        """A session token from ``POST /api/v1/session`` (default: the admin with the first password)."""
        import requests

        session = requests.Session()
        session.trust_env = False  # the lab is on loopback: no proxy
        resp = session.post(f"{self.url}/api/v1/session", timeout=30, json={
            "username": username or self.endpoint.user, "password": password or self.password()})
        if resp.status_code != 200:
            raise LabError(f"Argo CD refused the login: {resp.status_code} {resp.text}")
        return str(resp.json()["token"])

    def session(self) -> requests.Session:
        """A ``requests`` session that sends the admin's session token (``Authorization: Bearer``), made once."""
        import requests

        if self._session is None:
            session = requests.Session()
            session.trust_env = False  # the lab is on loopback: no proxy
            session.headers["Authorization"] = f"Bearer {self.login()}"
            self._session = session
        return self._session

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """``method /api/v1{path}`` as the admin: the JSON answer; LabError with Argo CD's message otherwise."""
        kw.setdefault("timeout", 60)
        resp = self.session().request(method, f"{self.url}/api/v1{path}", **kw)
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise LabError(f"Argo CD answered {resp.status_code} to {method} {path}: {message}")
        return resp.json() if resp.content else {}

    def application(self, name: str, refresh: str | None = None) -> dict[str, Any]:
        """One Application as the API server answers it (``refresh``: ``normal`` or ``hard`` first)."""
        return self.api("GET", f"/applications/{name}", params={"refresh": refresh} if refresh else None)

    def applications(self, **filters: Any) -> pd.DataFrame:
        """Every Application (filters as the API takes them: ``projects``, ``selector``, ``repo``, ``name``), one
        row each: its source, sync and health status, the running operation and the last reconciliation."""
        import pandas as pd

        items = self.api("GET", "/applications", params=filters or None).get("items") or []
        return pd.DataFrame([application_row(a) for a in items], columns=list(APP_COLUMNS))


def application_row(app: dict[str, Any]) -> dict[str, Any]:
    """The table row of one Application."""
    spec, status = app.get("spec") or {}, app.get("status") or {}
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    sync, health = status.get("sync") or {}, status.get("health") or {}
    return {"name": app["metadata"]["name"], "project": spec.get("project", ""), "repo": source.get("repoURL", ""),
            "path": source.get("path", ""), "revision": source.get("targetRevision", "HEAD"),
            "sync": sync.get("status", "Unknown"), "health": health.get("status", "Unknown"),
            "operation": (status.get("operationState") or {}).get("phase", ""),
            "synced_revision": sync.get("revision", ""), "reconciled_at": status.get("reconciledAt", "")}
