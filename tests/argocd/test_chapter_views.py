"""The chapter's pictures on a running Argo CD: the ``shop`` Application (``application_manifest``: automated sync,
self-heal, prune) and its repository Secret created with the ``kubernetes`` client, watched on a ``Timeline`` that
samples it through the Kubernetes API; a hand-made ``kubectl scale`` seen and healed on it; the API server's
resource tree placed and drawn as Argo CD's UI does; the sync history. Here the cluster is its API server alone
(no nodes run the pods), so the shop is Synced but stays Progressing: its health is the notebook's to check."""

from __future__ import annotations

from typing import Any

import kubernetes
import matplotlib
import pytest

from labkit.argocd.chapter import GROUP, PLURAL, VERSION, application_manifest, synced_and_healthy
from labkit.argocd.timeline import Timeline
from labkit.argocd.views import history_frame, plot_tree, tree_frame

from .conftest import RunningArgoCD

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def clients(argocd: RunningArgoCD) -> tuple[Any, Any]:
    api = kubernetes.config.new_client_from_config(str(argocd.ctx.paths.kubeconfig))
    return kubernetes.client.CustomObjectsApi(api), kubernetes.client.AppsV1Api(api)


@pytest.fixture(scope="module")
def shop(argocd: RunningArgoCD, clients: tuple[Any, Any]) -> dict[str, Any]:
    objects, _ = clients
    repo = f"{argocd.gitlab_url}/shop/manifests.git"
    core = kubernetes.client.CoreV1Api(objects.api_client)
    core.create_namespaced_secret("argocd", {
        "metadata": {"name": "repo-shop-manifests", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"type": "git", "url": repo, "username": "root", "password": argocd.gitlab_token}})
    return dict(objects.create_namespaced_custom_object(GROUP, VERSION, "argocd", PLURAL,
                                                        application_manifest("shop", repo, "argocd")))


def synced(app: dict[str, Any]) -> bool:
    status = app.get("status") or {}
    return ((status.get("sync") or {}).get("status") == "Synced"
            and (status.get("operationState") or {}).get("phase") == "Succeeded")


def reader(clients: tuple[Any, Any]) -> Any:
    objects, _ = clients
    return lambda: objects.get_namespaced_custom_object(GROUP, VERSION, "argocd", PLURAL, "shop")


def test_the_shop_syncs_and_a_hand_made_scale_is_healed_on_the_timeline(argocd: RunningArgoCD, shop: dict[str, Any],
                                                                        clients: tuple[Any, Any]) -> None:
    _, apps = clients
    with Timeline(reader(clients), "shop", every=0.1) as timeline:
        app = timeline.wait(synced, 60, "shop Synced")
        assert not synced_and_healthy()(app)  # Progressing: no node runs its pods here
        declared = apps.read_namespaced_deployment("gateway", "shop").spec.replicas
        timeline.mark("kubectl scale")
        argocd.kubectl("scale", "deployment", "gateway", "-n", "shop", "--replicas=5")
        healed = timeline.wait(
            lambda a: ((a.get("status") or {}).get("operationState") or {}).get("operation", {})
            .get("initiatedBy", {}).get("automated") is True
            and apps.read_namespaced_deployment("gateway", "shop").spec.replicas == declared,
            30, "a self-heal sync")
        timeline.wait(synced, 60, "shop Synced again")
        figure = timeline.stop()
    assert figure is not None
    assert app["status"]["sync"]["revision"] == healed["status"]["sync"]["revision"]
    assert healed["status"]["operationState"]["phase"] in ("Running", "Succeeded")
    assert timeline.changes(timeline.marks["kubectl scale"]), "the self-heal operation shows on the timeline"
    assert history_frame(healed)["id"].tolist()[-1] == 0


def test_the_resource_tree_of_the_shop(argocd: RunningArgoCD, shop: dict[str, Any],
                                       clients: tuple[Any, Any]) -> None:
    with Timeline(reader(clients), "shop", every=0.1) as timeline:
        app = timeline.wait(synced, 60, "shop Synced")
    resp = argocd.session().get(f"{argocd.url}/api/v1/applications/shop/resource-tree", timeout=30)
    assert resp.status_code == 200, resp.text
    frame = tree_frame(app, resp.json())
    kinds = set(frame["kind"])
    assert {"Application", "Deployment", "Service", "Namespace"} <= kinds, frame
    assert (frame[frame["kind"] == "Pod"]["depth"] == 3).all()  # under their ReplicaSets, when there are any
    deployments = frame[frame["kind"] == "Deployment"]
    assert set(deployments["name"]) == {"catalog", "orders", "gateway"} and set(deployments["sync"]) == {"Synced"}
    figure = plot_tree(frame, "shop")
    assert "gateway" in [t.get_text() for t in figure.axes[0].texts]
