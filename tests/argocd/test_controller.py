"""The Application controller against a lab: CRDs, directory and kustomize sources, automated sync, drift and
self-heal, prune, the conditions of unsupported and bad sources, rollback and its refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .gitops import GitOpsLab, ManifestRepo, configmap, deployment, op_phase, service, status


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsLab]:
    with GitOpsLab(tmp_path_factory.mktemp("gitops") / "home") as running:
        yield running


@pytest.fixture(scope="module")
def repo(lab: GitOpsLab, tmp_path_factory: pytest.TempPathFactory) -> ManifestRepo:
    return ManifestRepo(lab, "manifests", tmp_path_factory.mktemp("clone"))


def test_crds_and_the_default_project(lab: GitOpsLab) -> None:
    crds = lab.kubectl("get", "crd", "-o", "name").stdout.split()
    assert {"customresourcedefinition.apiextensions.k8s.io/applications.argoproj.io",
            "customresourcedefinition.apiextensions.k8s.io/appprojects.argoproj.io"} <= set(crds)
    assert lab.kubectl("get", "appproject", "default", "-n", "argocd", "-o", "name").stdout.strip() == \
        "appproject.argoproj.io/default"


def test_directory_auto_sync_self_heal_and_prune(lab: GitOpsLab, repo: ManifestRepo) -> None:
    sha = repo.write({"shop/web.yaml": [deployment("web"), service("web")], "shop/cm.yaml": configmap("settings"),
                      "shop/README.md": "not a manifest\n"})
    lab.create_app("shop", repo.url, "shop", syncPolicy={"automated": {"selfHeal": True, "prune": True}})
    app = lab.wait_app("shop", lambda a: status(a) == ("Synced", "Healthy"))
    st = app["status"]
    assert st["sync"]["revision"] == sha and op_phase(app) == "Succeeded"
    assert st["history"][0]["revision"] == sha and st["history"][0]["id"] == 0
    assert st["summary"]["images"] == ["localhost:5001/test/web:1"]
    assert {(r["kind"], r["status"]) for r in st["resources"]} == {
        ("Deployment", "Synced"), ("Service", "Synced"), ("ConfigMap", "Synced")}
    tid = lab.kubectl("get", "deployment", "web", "-o",
                      r"jsonpath={.metadata.annotations.argocd\.argoproj\.io/tracking-id}").stdout
    assert tid == "shop:apps/Deployment:default/web"
    # drift: scaled by hand; self-heal puts it back
    start = time.monotonic()
    lab.kubectl("scale", "deployment", "web", "--replicas=3")
    lab.wait_app("shop", lambda a: a.get("status", {})["history"][-1]["id"] >= 1, timeout=30)
    healed = time.monotonic() - start
    assert lab.kubectl("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}").stdout == "1"
    print(f"drift healed in {healed:.2f}s")
    assert healed <= 3.0, f"drift healed in {healed:.2f}s"
    # a manifest deleted from Git is pruned
    repo.write({"shop/cm.yaml": None}, "drop the config map")
    lab.kubectl("annotate", "application", "shop", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("shop", lambda a: all(r["kind"] != "ConfigMap" for r in a.get("status", {})["resources"])
                       and status(a)[0] == "Synced")
    assert lab.kubectl("get", "configmap", "settings", check=False).returncode != 0
    results = app["status"]["operationState"]["syncResult"]["resources"]
    assert {"kind": "ConfigMap", "status": "Pruned"}.items() <= next(r for r in results if r["kind"] ==
                                                                    "ConfigMap").items()


def test_fifty_applications_in_one_pass(lab: GitOpsLab, repo: ManifestRepo) -> None:
    """The issue's goal: 50 Applications of the shop's size compared in one pass within 10 s."""
    repo.write({f"many/{n}.yaml": [deployment(f"many-{n}", replicas=0), service(f"many-{n}")] for n in ("a", "b")}
               | {"many/cm.yaml": configmap("many")})
    names = [f"many-{i:02d}" for i in range(50)]
    for name in names:
        lab.create_app(name, repo.url, "many", namespace=name)
    lab.wait_app(names[-1], lambda a: bool(a.get("status", {}).get("reconciledAt")), timeout=120)
    controller = lab.argocd.controller
    marks = {n: lab.app(n)["metadata"]["resourceVersion"] for n in names}
    start = time.monotonic()
    for name in names:
        lab.run(controller.refresh(name))
    for name in names:
        lab.wait_app(name, lambda a, n=name: a["metadata"]["resourceVersion"] != marks[n], timeout=60)
    took = time.monotonic() - start
    print(f"50 Applications reconciled in {took:.2f}s")
    assert took <= 10.0, f"50 Applications reconciled in {took:.2f}s"
    assert all(status(lab.app(n))[0] == "OutOfSync" for n in names)  # never synced: the namespaces are missing
