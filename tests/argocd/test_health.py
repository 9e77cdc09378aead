"""Health as gitops-engine assesses it: rules on objects, and an Application's health following a Deployment
from Progressing to Healthy, and to Degraded when its image cannot be pulled (its progress deadline passes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit.argocd import health as hl

from .gitops import GitOpsLab, ManifestRepo, deployment, status


def test_rules() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 2},
           "spec": {"replicas": 2}, "status": {"observedGeneration": 1}}
    assert hl.resource_health(dep)["status"] == hl.PROGRESSING
    dep["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}
    assert hl.resource_health(dep) == {"status": hl.PROGRESSING, "message":
                                       "Waiting for rollout to finish: 1 of 2 updated replicas are available..."}
    dep["status"]["availableReplicas"] = 2
    assert hl.resource_health(dep) == {"status": hl.HEALTHY}
    dep["spec"]["paused"] = True
    assert hl.resource_health(dep)["status"] == hl.SUSPENDED
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": {
        "phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff",
                                                                          "message": "Back-off pulling image"}}}]}}
    assert hl.resource_health(pod) == {"status": hl.DEGRADED, "message": "Back-off pulling image"}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "status": {
        "conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}}
    assert hl.resource_health(job)["status"] == hl.DEGRADED
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}, "status": {"phase": "Bound"}}
    assert hl.resource_health(pvc)["status"] == hl.HEALTHY
    lb = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}}
    assert hl.resource_health(lb)["status"] == hl.PROGRESSING
    assert hl.resource_health({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}) is None
    assert hl.worst([hl.HEALTHY, hl.PROGRESSING, hl.MISSING]) == hl.MISSING and hl.worst([]) == hl.HEALTHY


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsLab]:
    with GitOpsLab(tmp_path_factory.mktemp("gitops") / "home") as running:
        yield running


def test_deployment_progressing_healthy_then_degraded(lab: GitOpsLab, tmp_path_factory: pytest.TempPathFactory
                                                      ) -> None:
    repo = ManifestRepo(lab, "health", tmp_path_factory.mktemp("clone"))
    web = deployment("hw", replicas=2)
    web["spec"]["progressDeadlineSeconds"] = 4
    # ready 2 s after start at the earliest, so the Deployment is Progressing for a while even on a fast machine
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": 8080}, "initialDelaySeconds": 2, "periodSeconds": 1}
    repo.write({"app/web.yaml": web})
    lab.create_app("hw", repo.url, "app", syncPolicy={"automated": {"selfHeal": True}})
    seen: list[str] = []

    def healthy(app: dict) -> bool:
        health = status(app)[1]
        if health and (not seen or seen[-1] != health):
            seen.append(health)
        return health == "Healthy"

    lab.wait_app("hw", healthy, timeout=90)
    # polling may miss Progressing on a busy machine; the controller's events record each change
    events = lab.kubectl("get", "events", "-n", "argocd", "--field-selector", "involvedObject.name=hw",
                         "-o", "jsonpath={.items[*].message}").stdout
    assert "Progressing" in seen or "Updated health status: Progressing -> Healthy" in events, (seen, events)
    web["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost:5001/test/missing:1"
    repo.write({"app/web.yaml": web}, "a bad image")
    lab.kubectl("annotate", "application", "hw", "-n", "argocd", "argocd.argoproj.io/refresh=normal")
    app = lab.wait_app("hw", lambda a: status(a)[1] == "Degraded", timeout=90)
    dep = next(r for r in app["status"]["resources"] if r["kind"] == "Deployment")
    assert dep["health"] == {"status": "Degraded", "message": 'Deployment "hw" exceeded its progress deadline'}
