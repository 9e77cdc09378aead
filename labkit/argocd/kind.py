"""Argo CD on the kind backend: its helm chart (``charts.argo-cd`` in ``manifests/versions.yaml``) in the cluster.

The API server (``argocd-server``) is a plain-HTTP NodePort (``server.insecure``), which the kind config publishes
from the laptop's ``127.0.0.1:<ports.argocd>`` (an ``extraPortMappings`` of the node in ``charts.argo-cd.node``, as
Harbor's), so ``lab.argocd`` and ``requests`` reach it as on the sim. The admin's first password is the one
``argocd-server`` writes into the ``argocd-initial-admin-secret`` Secret, read through the Kubernetes API.

The Git repository, seen from inside the cluster: Argo CD's repo server runs in a pod, where ``127.0.0.1`` is the
pod itself, so a repoURL on ``localhost``/``127.0.0.1`` (GitLab's URL on the laptop) fails with "connection
refused". GitLab is the compose container ``<cluster>-gitlab`` on Docker's ``kind`` network, which the nodes share:
CoreDNS forwards names it does not serve to the node's resolver, Docker's, which knows the containers of that
network. So Applications name ``http://<cluster>-gitlab:<port>/<project>.git`` — ``ArgoCDEndpoint.git`` — as the
runner's job pods clone from it; on the sim that is GitLab's own URL, so the notebooks' manifests are the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.secrets import Secrets
from ..endpoints import ArgoCDEndpoint, Endpoint
from .component import ADMIN, NAMESPACE, RECONCILIATION_SECONDS, WEBHOOK_SECRET

CHART = "argo-cd"
RELEASE = "argocd"


def git_base(lab: KindLab) -> str:
    """GitLab as pods reach it: its container's name on the kind network (not the laptop's 127.0.0.1)."""
    return f"http://{lab.container('gitlab')}:{lab.ports['gitlab']}"


def values(lab: KindLab) -> dict[str, object]:
    """The chart's values: the API server as a plain-HTTP NodePort, the lab's short reconciliation, the GitLab
    webhook's secret, and none of the parts the lab does not use (Dex, notifications, ApplicationSets)."""
    chart = lab.versions["charts"][CHART]
    return {
        "configs": {
            "params": {"server.insecure": True},
            "cm": {"url": lab.host_url("argocd"), "timeout.reconciliation": f"{RECONCILIATION_SECONDS}s",
                   "application.resourceTrackingMethod": "annotation", "admin.enabled": True},
            "secret": {"gitlabSecret": Secrets(lab.paths.secrets).get(WEBHOOK_SECRET, 18)},
        },
        "server": {"service": {"type": "NodePort", "nodePortHttp": int(chart["node_port"])}},
        "dex": {"enabled": False},
        "notifications": {"enabled": False},
        "applicationSet": {"replicas": 0},
    }


class ArgoCDKind(KindPart):
    @staticmethod
    def values_file(lab: KindLab) -> Path:
        return lab.dir / "argocd" / "values.yaml"

    def files(self, lab: KindLab) -> dict[Path, str]:
        header = "# Argo CD's helm chart values, rendered by labkit/argocd/kind.py\n"
        return {self.values_file(lab): header + yaml.safe_dump(values(lab), sort_keys=False)}

    def configure(self, lab: KindLab) -> list[Command]:
        chart = lab.versions["charts"][CHART]
        return [
            Command(f"installing Argo CD {chart['app_version']} (helm chart {chart['chart']} {chart['version']}, "
                    f"API server on NodePort {chart['node_port']}, 127.0.0.1:{lab.ports['argocd']})", [
                        "helm", "upgrade", "--install", RELEASE, chart["chart"], "--repo", chart["repo"],
                        "--version", str(chart["version"]), "--namespace", NAMESPACE, "--create-namespace",
                        "--values", str(self.values_file(lab)), "--kubeconfig", lab.kubeconfig]),
            Command(f"waiting for Argo CD's API server (up to {chart['ready_seconds'] // 60} min)", [
                sys.executable, "-m", "labkit.argocd.ready", "--url", lab.host_url("argocd"),
                "--kubeconfig", lab.kubeconfig, "--wait", str(chart["ready_seconds"])]),
        ]

    def endpoint(self, lab: KindLab) -> Endpoint:
        return ArgoCDEndpoint("Argo CD", lab.host_url("argocd"), namespace=NAMESPACE, user=ADMIN, git=git_base(lab))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/healthz", timeout=5)
