"""Chapter 8's Diagnose fault on a sim lab: the shop's Deployments annotated ``fluentbit.io/exclude: "true"``
(the pipeline's kubernetes filter then drops their lines), and the repair removing it."""

from __future__ import annotations

from labkit.lab import Lab
from labkit.logging.chapter import EXCLUDE_ANNOTATION, NAMESPACE
from labkit.logging.lab import LoggingView

from ..conftest import DEPLOY, kubectl


def annotations(lab: Lab) -> dict[str, dict[str, str]]:
    return {d.metadata.name: d.spec.template.metadata.annotations or {}
            for d in lab.kubernetes.apps().list_namespaced_deployment(NAMESPACE).items}


def test_exclude_fault_and_repair(lab: Lab) -> None:
    kubectl(lab, "create", "namespace", NAMESPACE)
    kubectl(lab, "apply", "-n", NAMESPACE, "-f", "-", input=DEPLOY.replace("{app: web}", "{app: web, tier: a}"))
    view = LoggingView(lab)
    names = view.deployments()
    assert names == ["web"]
    assert view.restore() == []
    view.break_shipping()
    assert {n: a.get(EXCLUDE_ANNOTATION) for n, a in annotations(lab).items()} == dict.fromkeys(names, "true")
    repaired = view.restore()
    assert len(repaired) == len(names)
    assert all(EXCLUDE_ANNOTATION not in a for a in annotations(lab).values())
    template = lab.kubernetes.apps().read_namespaced_deployment("web", NAMESPACE).spec.template
    assert template.metadata.labels == {"app": "web", "tier": "a"}  # the rest of the template kept
