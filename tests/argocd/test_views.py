"""The chapter's pictures from Applications as Argo CD writes them: the timeline's rows, its moments of change and
its plot; the resource tree placed under its parentRefs and drawn; the sync history as a table. The documents
follow Argo CD's ``Application`` status and ``ApplicationTree`` (``/api/v1/applications/{name}/resource-tree``)."""

from __future__ import annotations

import threading
from typing import Any

import matplotlib
import pandas as pd
import pytest

from labkit.argocd.chapter import application_manifest, synced_and_healthy
from labkit.argocd.timeline import Timeline
from labkit.argocd.views import changes, history_frame, plot_timeline, plot_tree, sample, tree_frame
from labkit.core.errors import LabError

matplotlib.use("Agg")


def app(sync: str, health: str, revision: str = "a" * 40, phase: str = "", conditions: Any = None) -> dict[str, Any]:
    status: dict[str, Any] = {"sync": {"status": sync, "revision": revision}, "health": {"status": health}}
    if phase:
        status["operationState"] = {"phase": phase, "message": "successfully synced (all tasks run)"}
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": "shop", "namespace": "argocd"}, "status": status}


def test_the_timeline_marks_each_change_of_sync_health_operation_and_revision() -> None:
    apps = [app("Synced", "Healthy"), app("Synced", "Healthy"), app("OutOfSync", "Healthy"),
            app("OutOfSync", "Healthy", phase="Running"), app("Synced", "Progressing", phase="Succeeded"),
            app("Synced", "Healthy", phase="Succeeded"), app("Synced", "Healthy", "b" * 40, "Succeeded")]
    frame = pd.DataFrame([sample(a, t * 0.5) for t, a in enumerate(apps)])
    assert list(frame["revision"].unique()) == ["aaaaaaaa", "bbbbbbbb"]
    assert changes(frame) == [(1.0, "sync: OutOfSync"), (1.5, "operation: Running"),
                              (2.0, "sync: Synced, health: Progressing, operation: Succeeded"),
                              (2.5, "health: Healthy"), (3.0, "revision: bbbbbbbb")]
    fig = plot_timeline(frame, "Application shop", {"kubectl scale": 0.8})
    ax = fig.axes[0]
    assert ax.get_title() == "Application shop — Synced / Healthy"
    assert ax.get_xlabel() == "seconds since the watch started"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["operation", "health", "sync"]
    assert "kubectl scale" in [t.get_text() for t in ax.texts]
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"Synced", "OutOfSync", "Healthy", "Progressing", "Running", "Succeeded"} <= legend


def test_a_condition_is_the_row_message() -> None:
    row = sample(app("Unknown", "Healthy", conditions=[{"type": "ComparisonError", "message": "kustomize failed"}]),
                 1.0)
    assert row["message"] == "ComparisonError: kustomize failed" and row["sync"] == "Unknown"


def test_the_live_timeline_samples_waits_with_a_deadline_and_marks() -> None:
    states = [app("OutOfSync", "Missing")] * 3 + [app("Synced", "Progressing")] * 3 + [app("Synced", "Healthy")]
    lock = threading.Lock()

    def read() -> dict[str, Any]:
        with lock:
            return states.pop(0) if len(states) > 1 else states[0]

    with Timeline(read, "shop", every=0.02) as timeline:
        timeline.mark("created")
        reached = timeline.wait(synced_and_healthy("aaaa"), 5, "shop Synced and Healthy")
        assert reached["status"]["health"]["status"] == "Healthy"
        with pytest.raises(LabError, match="shop at bbbb was not reached in 0 s: the Application was Synced/Healthy"):
            timeline.wait(synced_and_healthy("bbbb"), 0.2, "shop at bbbb")
        figure = timeline.stop()
    assert figure is not None and "created" in timeline.marks
    seen = list(dict.fromkeys(timeline.frame["health"]))
    assert seen == ["Missing", "Progressing", "Healthy"]


def test_an_operation_still_running_is_not_reached() -> None:
    running = app("Synced", "Healthy", phase="Running")
    assert not synced_and_healthy()(running)
    assert synced_and_healthy()(app("Synced", "Healthy", phase="Succeeded"))


def tree_node(kind: str, name: str, uid: str, parent: tuple[str, str, str, str] | None = None, group: str = "",
              health: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"group": group, "version": "v1", "kind": kind, "namespace": "shop", "name": name,
                            "uid": uid}
    if parent:
        node["parentRefs"] = [{"group": parent[0], "kind": parent[1], "namespace": "shop", "name": parent[2],
                               "uid": parent[3]}]
    if health:
        node["health"] = {"status": health}
    return node


def test_the_resource_tree_hangs_each_node_under_its_parent() -> None:
    application = app("OutOfSync", "Progressing")
    application["status"]["resources"] = [
        {"group": "", "version": "v1", "kind": "Service", "namespace": "shop", "name": "gateway",
         "status": "Synced", "health": {"status": "Healthy"}},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "gateway",
         "status": "OutOfSync", "health": {"status": "Progressing"}},
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "gone",
         "status": "OutOfSync", "health": {"status": "Missing"}}]
    tree = {"nodes": [
        tree_node("Pod", "gateway-7d9-abcde", "p1", ("apps", "ReplicaSet", "gateway-7d9", "r1"), health="Healthy"),
        tree_node("Deployment", "gateway", "d1", group="apps", health="Progressing"),
        tree_node("ReplicaSet", "gateway-7d9", "r1", ("apps", "Deployment", "gateway", "d1"), "apps", "Healthy"),
        tree_node("Service", "gateway", "s1", health="Healthy"),
        tree_node("EndpointSlice", "gateway-x1", "e1", ("", "Service", "gateway", "s1"), "discovery.k8s.io")]}
    frame = tree_frame(application, tree)
    by_name = {(r.kind, r.name): r for r in frame.itertuples()}
    assert by_name[("Application", "shop")].depth == 0
    assert by_name[("Deployment", "gateway")].depth == 1 and by_name[("Deployment", "gateway")].sync == "OutOfSync"
    assert by_name[("ReplicaSet", "gateway-7d9")].parent == "apps/Deployment/shop/gateway"
    assert by_name[("Pod", "gateway-7d9-abcde")].depth == 3
    assert by_name[("EndpointSlice", "gateway-x1")].parent == "/Service/shop/gateway"
    assert by_name[("ConfigMap", "gone")].health == "Missing"  # declared, not in the cluster
    fig = plot_tree(frame, "Application shop: resource tree")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"deploy", "rs", "pod", "svc", "endpointslice", "app"} <= set(texts)
    assert "gateway-7d9-abcde" in texts
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"health: Healthy", "health: Progressing", "health: Missing", "sync: OutOfSync", "sync: Synced"} <= labels


def test_the_history_is_newest_first_with_how_long_each_sync_took() -> None:
    application = app("Synced", "Healthy")
    application["status"]["history"] = [
        {"id": 0, "revision": "a" * 40, "deployStartedAt": "2026-11-26T10:00:00Z",
         "deployedAt": "2026-11-26T10:00:02Z", "source": {"path": "."}, "initiatedBy": {"automated": True}},
        {"id": 1, "revision": "b" * 40, "deployStartedAt": "2026-11-26T10:05:00Z",
         "deployedAt": "2026-11-26T10:05:01Z", "source": {"path": "."}, "initiatedBy": {"username": "admin"}}]
    frame = history_frame(application)
    assert frame["id"].tolist() == [1, 0] and frame["revision"].tolist() == ["bbbbbbbb", "aaaaaaaa"]
    assert frame["seconds"].tolist() == [1.0, 2.0] and frame["initiated_by"].tolist() == ["admin", "automated"]
    assert history_frame({}).empty


def test_the_chapter_application_is_automated_with_self_heal_and_prune() -> None:
    body = application_manifest("shop", "http://gitlab/shop/manifests.git", "argocd")
    assert body["spec"]["syncPolicy"] == {"syncOptions": ["CreateNamespace=true"],
                                          "automated": {"prune": True, "selfHeal": True}}
    assert body["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "shop"}
    manual = application_manifest("shop", "http://gitlab/shop/manifests.git", "argocd", automated=False)
    assert "automated" not in manual["spec"]["syncPolicy"]
