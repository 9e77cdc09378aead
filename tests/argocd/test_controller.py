"""The Application controller against a lab: CRDs, directory and kustomize sources, automated sync, drift and
self-heal, prune, the conditions of unsupported and bad sources, rollback and its refusal."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


def test_private_repository_with_credentials_and_the_shop_manifests(lab: GitOpsLab, tmp_path: Path) -> None:
    """The shop's own manifests (a kustomization) from a private project: refused without the repository
    Secret, synced with it, and in sync after (the server's defaults and normal forms do not count)."""
    import gitlab

    gl = gitlab.Gitlab(lab.gitlab_url, private_token=lab.gitlab_token)
    gl.projects.create({"name": "shop-manifests", "visibility": "private"})
    host = lab.gitlab_url.removeprefix("http://")
    work = tmp_path / "shop"
    shutil.copytree(Path(__file__).parents[2] / "manifests" / "apps", work)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "shop"],
                 ["push", "-q", f"http://root:{lab.gitlab_token}@{host}/root/shop-manifests.git", "main"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True, timeout=60)
    url = f"{lab.gitlab_url}/root/shop-manifests.git"
    lab.create_app("shop-private", url, ".", namespace="shop", syncPolicy={"automated": {"prune": True}})
    app = lab.wait_app("shop-private", lambda a: bool(a.get("status", {}).get("conditions")))
    assert app["status"]["conditions"][0]["type"] == "ComparisonError"
    lab.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-repo", "namespace": "argocd", "labels": {
            "argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"url": url, "username": "root", "password": lab.gitlab_token}}))
    lab.kubectl("annotate", "application", "shop-private", "-n", "argocd", "argocd.argoproj.io/refresh=hard")
    app = lab.wait_app("shop-private", lambda a: op_phase(a) == "Succeeded" and status(a)[0] == "Synced", 90)
    kinds = {(r["kind"], r["name"]) for r in app["status"]["resources"]}
    assert {("Namespace", "shop"), ("Deployment", "gateway"), ("Deployment", "catalog")} <= kinds
    assert not app["status"].get("conditions")
    time.sleep(2)  # the controllers fill in the status, defaults are in place: still in sync
    lab.kubectl("annotate", "application", "shop-private", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("shop-private", lambda a: "argocd.argoproj.io/refresh" not in a["metadata"].get(
        "annotations", {}))
    assert status(app)[0] == "Synced", [r for r in app["status"]["resources"] if r["status"] != "Synced"]
