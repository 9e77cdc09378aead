"""Sync operations written with ``kubectl patch``: a kustomize source with CreateNamespace and server-side apply,
waves and PreSync/PostSync/SyncFail hooks (Jobs), ignoreDifferences, retry with backoff, rollback and its
refusal while auto-sync is on, the conditions of an unsupported source and a bad manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .gitops import GitOpsLab, ManifestRepo, configmap, deployment, history, op_phase, status


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsLab]:
    with GitOpsLab(tmp_path_factory.mktemp("gitops") / "home") as running:
        yield running


@pytest.fixture(scope="module")
def repo(lab: GitOpsLab, tmp_path_factory: pytest.TempPathFactory) -> ManifestRepo:
    return ManifestRepo(lab, "manifests", tmp_path_factory.mktemp("clone"))


def job(name: str, hook: str, code: int = 0, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {"argocd.argoproj.io/hook": hook, **annotations}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "run", "image": "localhost:5001/test/web:1",
                "command": ["python", "-c", f"print('{name}'); raise SystemExit({code})"]}]}}}}


def events(lab: GitOpsLab, app: str) -> list[str]:
    out = lab.kubectl("get", "events", "-n", "argocd", "--field-selector", f"involvedObject.name={app}",
                      "-o", "json").stdout
    return [f"{e['reason']}: {e['message']}" for e in json.loads(out)["items"]]


def test_kustomize_source_with_create_namespace_and_server_side_apply(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"kust/base/cm.yaml": configmap("settings", {"mode": "base"}),
                "kust/base/kustomization.yaml": {"resources": ["cm.yaml"]},
                "kust/overlay/kustomization.yaml": {"resources": ["../base"], "namePrefix": "prod-",
                                                     "commonLabels": {"env": "prod"}}})
    lab.create_app("kust", repo.url, "kust/overlay", namespace="prod",
                   syncPolicy={"syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]})
    app = lab.wait_app("kust", lambda a: status(a)[0] == "OutOfSync")
    assert app["status"]["sourceType"] == "Kustomize"
    assert lab.kubectl("get", "namespace", "prod", check=False).returncode != 0
    lab.sync("kust", prune=True)
    app = lab.wait_app("kust", lambda a: op_phase(a) == "Succeeded" and status(a)[0] == "Synced")
    cm = json.loads(lab.kubectl("get", "configmap", "prod-settings", "-n", "prod", "-o", "json",
                                    "--show-managed-fields").stdout)
    assert cm["metadata"]["labels"]["env"] == "prod"
    # server-side apply with Argo CD's field manager (client-side apply would be kubectl-client-side-apply's)
    assert [m["manager"] for m in cm["metadata"]["managedFields"]] == ["argocd-controller"]
    assert any(e.startswith("OperationCompleted: Sync operation to") and "succeeded" in e
               for e in events(lab, "kust"))


def test_waves_and_hooks(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"waves/pre.yaml": job("migrate", "PreSync"),
                "waves/first.yaml": configmap("first", **{"argocd.argoproj.io/sync-wave": "-1"}),
                "waves/second.yaml": configmap("second", **{"argocd.argoproj.io/sync-wave": "2"}),
                "waves/post.yaml": job("smoke", "PostSync", **{"argocd.argoproj.io/hook-delete-policy":
                                                                "HookSucceeded"})})
    lab.create_app("waves", repo.url, "waves")
    lab.wait_app("waves", lambda a: status(a)[0] == "OutOfSync")
    lab.sync("waves")
    app = lab.wait_app("waves", lambda a: op_phase(a) in ("Succeeded", "Failed", "Error"), timeout=120)
    state = app["status"]["operationState"]
    assert state["phase"] == "Succeeded", state
    order = [(r["kind"], r["name"], r.get("hookPhase", "")) for r in state["syncResult"]["resources"]]
    assert order == [("Job", "migrate", "Succeeded"), ("ConfigMap", "first", ""), ("ConfigMap", "second", ""),
                     ("Job", "smoke", "Succeeded")], order
    assert lab.kubectl("get", "job", "migrate", check=False).returncode == 0  # BeforeHookCreation: kept
    assert lab.kubectl("get", "job", "smoke", check=False).returncode != 0  # HookSucceeded: deleted
    assert {r["name"] for r in app["status"]["resources"]} == {"first", "second"}  # hooks are not resources


def test_a_failed_hook_fails_the_sync_and_runs_syncfail(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"failing/pre.yaml": job("check", "PreSync", code=1), "failing/cm.yaml": configmap("never"),
                "failing/fail.yaml": job("cleanup", "SyncFail")})
    lab.create_app("failing", repo.url, "failing")
    lab.wait_app("failing", lambda a: status(a)[0] == "OutOfSync")
    lab.sync("failing")
    app = lab.wait_app("failing", lambda a: op_phase(a) in ("Succeeded", "Failed", "Error"), timeout=120)
    state = app["status"]["operationState"]
    assert state["phase"] == "Failed" and "PreSync hook Job/check failed" in state["message"], state
    assert lab.kubectl("get", "configmap", "never", check=False).returncode != 0
    assert any(r["name"] == "cleanup" and r.get("hookPhase") == "Succeeded"
               for r in state["syncResult"]["resources"])
    assert any("failed" in e and e.startswith("OperationCompleted") for e in events(lab, "failing"))


def test_ignore_differences(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"ignored/web.yaml": deployment("ignored-web", replicas=1)})
    lab.create_app("ignored", repo.url, "ignored", syncPolicy={"automated": {}}, ignoreDifferences=[
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])
    lab.wait_app("ignored", lambda a: status(a)[0] == "Synced")
    lab.kubectl("scale", "deployment", "ignored-web", "--replicas=2")
    lab.kubectl("annotate", "application", "ignored", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("ignored", lambda a: "argocd.argoproj.io/refresh" not in (a["metadata"].get("annotations")
                                                                                 or {}))
    assert status(app)[0] == "Synced"
    assert lab.kubectl("get", "deployment", "ignored-web", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    lab.kubectl("label", "deployment", "ignored-web", "extra=yes")  # a field Git does not set: still Synced
    lab.kubectl("set", "image", "deployment/ignored-web", "web=localhost:5001/test/web:2")  # this one counts
    lab.wait_app("ignored", lambda a: status(a)[0] == "OutOfSync" or op_phase(a) == "Running"
                 or len(history(a)) > 1)


def test_retry_with_backoff(lab: GitOpsLab, repo: ManifestRepo) -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}, "data": {"a": "b"}}
    repo.write({"retry/cm.yaml": bad})
    lab.create_app("retry", repo.url, "retry", syncPolicy={"automated": {}, "retry": {
        "limit": 2, "backoff": {"duration": "1s", "factor": 2, "maxDuration": "5s"}}})
    app = lab.wait_app("retry", lambda a: op_phase(a) == "Failed", timeout=60)
    state = app["status"]["operationState"]
    assert state["retryCount"] == 2 and "one or more objects failed to apply" in state["message"], state
    assert state["syncResult"]["resources"][0]["status"] == "SyncFailed"
    assert "Not_Valid" in state["syncResult"]["resources"][0]["message"]
    assert any(e.startswith("OperationCompleted: Sync operation to") and "failed" in e and "Not_Valid" in e
               for e in events(lab, "retry"))  # the bad manifest's event says why


def test_rollback_and_its_refusal_while_auto_sync_is_on(lab: GitOpsLab, repo: ManifestRepo) -> None:
    first = repo.write({"roll/cm.yaml": configmap("roll", {"v": "1"})})
    lab.create_app("roll", repo.url, "roll", syncPolicy={"automated": {"prune": True}})
    lab.wait_app("roll", lambda a: (a.get("status", {}).get("sync") or {}).get("revision") == first
                 and status(a)[0] == "Synced")
    second = repo.write({"roll/cm.yaml": configmap("roll", {"v": "2"})})
    lab.kubectl("annotate", "application", "roll", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("roll", lambda a: len(history(a)) == 2 and status(a)[0] == "Synced")
    assert [h["revision"] for h in app["status"]["history"]] == [first, second]
    controller = lab.argocd.controller
    with pytest.raises(ValueError, match="rollback cannot be initiated when auto-sync is enabled"):
        lab.run(controller.rollback("roll", 0))
    lab.kubectl("patch", "application", "roll", "-n", "argocd", "--type", "json", "-p",
                '[{"op": "remove", "path": "/spec/syncPolicy/automated"}]')
    lab.run(controller.rollback("roll", 0))
    app = lab.wait_app("roll", lambda a: len(history(a)) == 3 and op_phase(a) == "Succeeded")
    assert app["status"]["history"][-1]["revision"] == first
    assert lab.kubectl("get", "configmap", "roll", "-o", "jsonpath={.data.v}").stdout == "1"
    # the comparison after the operation (its own status write, as in Argo CD): Git says 2, the cluster runs 1
    lab.wait_app("roll", lambda a: status(a)[0] == "OutOfSync")


def test_unsupported_source_and_bad_manifest_conditions(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"chart/Chart.yaml": {"apiVersion": "v2", "name": "c", "version": "0.1.0"},
                "broken/cm.yaml": "kind: ConfigMap\nmetadata: {name: x\n"})
    lab.create_app("helm", repo.url, "chart")
    app = lab.wait_app("helm", lambda a: bool(a.get("status", {}).get("conditions")))
    cond = app["status"]["conditions"][0]
    assert cond["type"] == "ComparisonError" and "Helm sources are not supported by the labkit simulator" in \
        cond["message"] and status(app)[0] == "Unknown"
    lab.create_app("broken", repo.url, "broken", syncPolicy={"automated": {}})
    app = lab.wait_app("broken", lambda a: bool(a.get("status", {}).get("conditions")))
    cond = app["status"]["conditions"][0]
    assert cond["type"] == "ComparisonError" and 'Failed to unmarshal "cm.yaml"' in cond["message"], cond


def test_dry_run_partial_sync_prune_options_and_cascading_delete(lab: GitOpsLab, repo: ManifestRepo) -> None:
    keep = {"argocd.argoproj.io/sync-options": "Prune=false"}
    repo.write({"opts/a.yaml": configmap("opt-a"), "opts/b.yaml": configmap("opt-b", **keep),
                "opts/c.yaml": configmap("opt-c"),
                "opts/hook.yaml": {**job("", "PostSync"), "metadata": {"generateName": "notify-", "annotations": {
                    "argocd.argoproj.io/hook": "PostSync"}}}})
    lab.create_app("opts", repo.url, "opts")
    lab.kubectl("patch", "application", "opts", "-n", "argocd", "--type", "merge", "-p",
                '{"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io"]}}')
    lab.wait_app("opts", lambda a: status(a)[0] == "OutOfSync")
    lab.sync("opts", dryRun=True)
    app = lab.wait_app("opts", lambda a: op_phase(a) == "Succeeded")
    assert lab.kubectl("get", "configmap", "opt-a", check=False).returncode != 0 and history(app) == []
    lab.sync("opts", resources=[{"kind": "ConfigMap", "name": "opt-a"}])
    app = lab.wait_app("opts", lambda a: op_phase(a) == "Succeeded" and len(history(a)) == 1)
    assert [r["name"] for r in app["status"]["operationState"]["syncResult"]["resources"]] == ["opt-a"]
    assert lab.kubectl("get", "configmap", "opt-b", check=False).returncode != 0
    lab.sync("opts")
    app = lab.wait_app("opts", lambda a: op_phase(a) == "Succeeded" and len(history(a)) == 2)
    notify = [r for r in app["status"]["operationState"]["syncResult"]["resources"] if r["kind"] == "Job"]
    assert notify and notify[0]["name"].startswith("notify-") and notify[0]["hookPhase"] == "Succeeded"
    repo.write({"opts/b.yaml": None, "opts/c.yaml": None}, "drop b and c")
    lab.kubectl("annotate", "application", "opts", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    lab.wait_app("opts", lambda a: any(r.get("requiresPruning") for r in a.get("status", {}).get("resources", [])))
    lab.sync("opts", prune=True)
    app = lab.wait_app("opts", lambda a: op_phase(a) == "Succeeded" and len(history(a)) == 3)
    results = {r["name"]: (r["status"], r["message"]) for r in app["status"]["operationState"]["syncResult"][
        "resources"] if r["kind"] == "ConfigMap"}
    assert results["opt-c"] == ("Pruned", "pruned") and results["opt-b"] == ("PruneSkipped", "ignored (no prune)")
    assert lab.kubectl("get", "configmap", "opt-b", check=False).returncode == 0
    lab.kubectl("delete", "application", "opts", "-n", "argocd", "--wait=false")
    lab.wait_app_gone("opts")
    assert lab.kubectl("get", "configmap", "opt-a", check=False).returncode != 0


def test_allow_empty(lab: GitOpsLab, repo: ManifestRepo) -> None:
    repo.write({"empty/README.md": "manifests\n", "empty/cm.yaml": configmap("soon-gone")})
    lab.create_app("empty", repo.url, "empty", syncPolicy={"automated": {"prune": True}})
    lab.wait_app("empty", lambda a: status(a)[0] == "Synced")
    repo.write({"empty/cm.yaml": None}, "nothing left")
    lab.kubectl("annotate", "application", "empty", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("empty", lambda a: any(c["type"] == "SyncError" for c in a.get("status", {}).get(
        "conditions") or []))
    assert "auto-sync will wipe out all resources" in app["status"]["conditions"][-1]["message"]
    assert lab.kubectl("get", "configmap", "soon-gone", check=False).returncode == 0
    lab.kubectl("patch", "application", "empty", "-n", "argocd", "--type", "merge", "-p",
                '{"spec": {"syncPolicy": {"automated": {"prune": true, "allowEmpty": true}}}}')
    lab.wait_app("empty", lambda a: status(a)[0] == "Synced" and len(history(a)) == 2)
    assert lab.kubectl("get", "configmap", "soon-gone", check=False).returncode != 0


def test_terminate_a_running_operation(lab: GitOpsLab, repo: ManifestRepo) -> None:
    slow = job("slow", "PreSync")
    slow["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "-c", "import time; time.sleep(120)"]
    repo.write({"slow/pre.yaml": slow, "slow/cm.yaml": configmap("after-slow")})
    lab.create_app("slow", repo.url, "slow")
    lab.wait_app("slow", lambda a: status(a)[0] == "OutOfSync")
    lab.sync("slow")
    lab.wait_app("slow", lambda a: op_phase(a) == "Running")
    lab.run(lab.argocd.controller.terminate_operation("slow"))
    app = lab.wait_app("slow", lambda a: op_phase(a) == "Failed")
    assert app["status"]["operationState"]["message"] == "Operation terminated" and not app.get("operation")
    assert lab.kubectl("get", "configmap", "after-slow", check=False).returncode != 0


def test_unsupported_sync_option_and_a_shared_resource_fail_the_sync(lab: GitOpsLab, repo: ManifestRepo) -> None:
    lab.create_app("replace", repo.url, "roll", syncPolicy={"syncOptions": ["Replace=true"]})
    lab.wait_app("replace", lambda a: bool(status(a)[0]))
    lab.sync("replace")
    app = lab.wait_app("replace", lambda a: op_phase(a) == "Failed")
    assert "sync option Replace=true is not supported by the labkit simulator" in \
        app["status"]["operationState"]["message"]
    lab.create_app("shared", repo.url, "roll", syncPolicy={"syncOptions": ["FailOnSharedResource=true"]})
    lab.wait_app("shared", lambda a: bool(status(a)[0]))
    lab.sync("shared")
    app = lab.wait_app("shared", lambda a: op_phase(a) == "Failed")
    assert "ConfigMap/roll is part of applications argocd/shared and roll" in \
        app["status"]["operationState"]["message"]
