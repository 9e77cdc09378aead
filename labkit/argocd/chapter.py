"""Chapter 6's helpers on ``lab.argocd``: the chapter's Application (``shop``, syncing the ``shop/manifests``
repository into namespace ``shop`` with automated sync, self-heal and prune) and its repository credentials, a
live timeline of it, waiting for Synced/Healthy with a deadline, commits to the manifest repository (through
``lab.gitlab``, with ``git``), the sync history and the resource tree as a graph.

The Application and the repository Secret are written as a person would with ``kubectl apply``: through the
Kubernetes API (the ``kubernetes`` client); the tree comes from the API server's ``/resource-tree``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ..endpoints import ArgoCDEndpoint
    from .timeline import Timeline

APP = "shop"  # the chapter's Application
MANIFESTS = "shop/manifests"  # its repository in the lab's GitLab
DESTINATION = "shop"  # the namespace it syncs into
IN_CLUSTER = "https://kubernetes.default.svc"
GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
REPO_SECRET = "repo-shop-manifests"
SYNC_SECONDS = 60.0  # how long a notebook waits for Synced/Healthy by default
BAD_REFERENCE = ("  - catalog.yaml\n", "  - catalog.yml\n")  # the Diagnose fault: a file the repository lacks


@dataclass
class ResourceTree:
    """An Application's tree: one row per node (``views.tree_frame``) and its drawing."""

    frame: pd.DataFrame
    figure: Figure


def application_manifest(name: str, repo_url: str, namespace: str, path: str = ".", revision: str = "main",
                         destination: str = DESTINATION, automated: bool = True, self_heal: bool = True,
                         prune: bool = True) -> dict[str, Any]:
    """An Application as its YAML would be written: ``repo_url`` at ``revision``/``path`` into ``destination`` of
    the cluster Argo CD runs in, the namespace created when missing."""
    policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"]}
    if automated:
        policy["automated"] = {"prune": prune, "selfHeal": self_heal}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"project": "default",
                     "source": {"repoURL": repo_url, "targetRevision": revision, "path": path},
                     "destination": {"server": IN_CLUSTER, "namespace": destination},
                     "syncPolicy": policy}}


def synced_and_healthy(revision: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """A condition on an Application: Synced (at ``revision``, a commit SHA, when given), Healthy, and no
    operation running."""
    def reached(app: dict[str, Any]) -> bool:
        status = app.get("status") or {}
        sync, health = status.get("sync") or {}, status.get("health") or {}
        running = (status.get("operationState") or {}).get("phase") in ("Running", "Terminating")
        return (sync.get("status") == "Synced" and health.get("status") == "Healthy" and not running
                and (revision is None or str(sync.get("revision", "")).startswith(revision)))
    return reached


class ChapterHelpers:
    """Mixed into ``ArgoCDView``: what notebook 06 and ``lab.chapter(6)`` do with Argo CD."""

    lab: Any
    endpoint: ArgoCDEndpoint
    api: Callable[..., Any]  # ArgoCDView's: ``api(method, path, **kw)`` as the admin
    repo_url: Callable[[str], str]  # ArgoCDView's: a GitLab project as Argo CD reaches it
    webhook_secret: Callable[[], str]  # ArgoCDView's: webhook.gitlab.secret

    # -- the Application through the Kubernetes API -------------------------------------------------------
    def _objects(self) -> Any:
        import kubernetes

        return kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(self.lab.kubeconfig))

    def get(self, name: str = APP) -> dict[str, Any] | None:
        """The Application as stored (``kubectl get application NAME -n argocd -o yaml``), or None."""
        import kubernetes

        try:
            return dict(self._objects().get_namespaced_custom_object(GROUP, VERSION, self.endpoint.namespace,
                                                                     PLURAL, name))
        except kubernetes.client.ApiException as err:
            if err.status == 404:
                return None
            raise

    def add_repository(self, project: str = MANIFESTS) -> str:
        """The lab GitLab project's credentials for Argo CD: a Secret labelled
        ``argocd.argoproj.io/secret-type: repository`` (url, username, password: root's token), as ``argocd repo
        add`` writes it; its repoURL."""
        import kubernetes

        url = self.repo_url(project)
        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(self.lab.kubeconfig))
        body = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "repo-" + project.replace("/", "-"), "namespace": self.endpoint.namespace,
                             "labels": {"argocd.argoproj.io/secret-type": "repository"}},
                "stringData": {"type": "git", "url": url, "username": "root", "password": self.lab.gitlab.token}}
        try:
            core.create_namespaced_secret(self.endpoint.namespace, body)
        except kubernetes.client.ApiException as err:
            if err.status != 409:
                raise
            core.replace_namespaced_secret(body["metadata"]["name"], self.endpoint.namespace, body)
        return url

    def create_application(self, name: str = APP, project: str = MANIFESTS, **spec: Any) -> dict[str, Any]:
        """The chapter's Application (``application_manifest``'s keywords in ``spec``), created or replaced; its
        repository's credentials added first."""
        import kubernetes

        body = application_manifest(name, self.add_repository(project), self.endpoint.namespace, **spec)
        objects = self._objects()
        try:
            return dict(objects.create_namespaced_custom_object(GROUP, VERSION, self.endpoint.namespace, PLURAL,
                                                                body))
        except kubernetes.client.ApiException as err:
            if err.status != 409:
                raise
        current = self.get(name) or {}
        body["metadata"]["resourceVersion"] = current.get("metadata", {}).get("resourceVersion")
        return dict(objects.replace_namespaced_custom_object(GROUP, VERSION, self.endpoint.namespace, PLURAL, name,
                                                             body))

    def delete_application(self, name: str = APP) -> bool:
        """Delete the Application (without the finalizer, what it deployed stays); whether there was one."""
        import kubernetes

        try:
            self._objects().delete_namespaced_custom_object(GROUP, VERSION, self.endpoint.namespace, PLURAL, name)
            return True
        except kubernetes.client.ApiException as err:
            if err.status == 404:
                return False
            raise

    # -- watching it --------------------------------------------------------------------------------------
    def timeline(self, name: str = APP, every: float = 0.25) -> Timeline:
        """A live timeline of the Application's sync, health and operation, sampled every ``every`` s in the
        background and drawn in this cell's output; ``.mark(label)``, ``.wait(...)``, ``.stop()``."""
        from .timeline import Timeline

        return Timeline(lambda: self.get(name), f"Application {name}: sync, health and operation", every)

    def wait(self, name: str = APP, revision: str | None = None, timeout: float = SYNC_SECONDS,
             timeline: Timeline | None = None) -> dict[str, Any]:
        """The Application once it is Synced (at ``revision`` when given) and Healthy with no operation running;
        LabError with its last state after ``timeout`` seconds."""
        from .timeline import Timeline

        what = f"{name} Synced{' at ' + revision[:8] if revision else ''} and Healthy"
        if timeline is not None:
            return timeline.wait(synced_and_healthy(revision), timeout, what)
        with Timeline(lambda: self.get(name), what, every=0.2) as own:
            return own.wait(synced_and_healthy(revision), timeout, what)

    def add_webhook(self, project: str = MANIFESTS) -> str:
        """A GitLab push hook on ``project`` to Argo CD's ``/api/webhook`` (with ``webhook.gitlab.secret`` as its
        token), so a push refreshes the Application at once instead of at the next reconciliation; its URL."""
        url = f"{self.endpoint.url.rstrip('/')}/api/webhook"
        hooks = self.lab.gitlab.project(project).hooks
        if not any(h.url == url for h in hooks.list(get_all=True)):
            hooks.create({"url": url, "push_events": True, "token": self.webhook_secret(),
                          "enable_ssl_verification": False})
        return url

    # -- the manifest repository --------------------------------------------------------------------------
    def clone(self, dest: str | os.PathLike[str] | None = None, fresh: bool = False) -> Path:
        """A working copy of ``shop/manifests`` (``git clone`` with root's token), as ``lab.gitlab.clone``."""
        return Path(self.lab.gitlab.clone(dest, project=MANIFESTS, fresh=fresh))

    def commit(self, edit: Callable[[Path], Any], message: str) -> str:
        """Change ``shop/manifests`` as a person would (clone, ``edit(work)``, commit, ``git push``): the commit."""
        sha = self.lab.gitlab.commit(edit, message, project=MANIFESTS)
        if sha is None:
            raise LabError(f"the edit for {message!r} changed nothing in {MANIFESTS}")
        return str(sha)

    # -- what happened ------------------------------------------------------------------------------------
    def history(self, name: str = APP) -> pd.DataFrame:
        """The Application's sync history (``status.history``, newest first): the ids ``rollback`` takes."""
        from .views import history_frame

        return history_frame(self.get(name) or {})

    def tree(self, name: str = APP) -> ResourceTree:
        """The resource tree from the API server, as a table and as Argo CD's UI draws it."""
        from .views import plot_tree, tree_frame

        app = self.get(name)
        if app is None:
            raise LabError(f"no Application {name} in namespace {self.endpoint.namespace}")
        frame = tree_frame(app, self.api("GET", f"/applications/{name}/resource-tree"))
        return ResourceTree(frame, plot_tree(frame, f"Application {name}: resource tree"))

    # -- the chapter's start and its fault ------------------------------------------------------------------
    def restore(self) -> list[str]:
        """Chapter 6's starting state: no ``shop`` Application (the notebook creates it; deleting it without the
        resources finalizer leaves the shop running), the manifest repository as seeded (``lab.gitlab.repair``
        restores it with the shop's project). What was done."""
        return [f"Application {APP} removed (the chapter creates it)"] if self.delete_application(APP) else []

    def break_manifests(self) -> str:
        """The Diagnose fault: a commit to ``shop/manifests`` whose ``kustomization.yaml`` names a file that is
        not in the repository, so Argo CD cannot render the manifests (a ComparisonError condition, an event, and
        sync stays at the last revision it could render). The commit."""
        def edit(work: Path) -> None:
            kustomization = work / "kustomization.yaml"
            text = kustomization.read_text()
            if BAD_REFERENCE[0] not in text:
                raise LabError("kustomization.yaml of shop/manifests does not list catalog.yaml any more")
            kustomization.write_text(text.replace(*BAD_REFERENCE, 1))

        return self.commit(edit, "manifests: catalog's file in the YAML naming style")

