"""GitLab on the kind backend: GitLab CE as the compose service ``gitlab`` (profile ``gitlab``) with the
memory-constrained ``gitlab.rb`` of ``omnibus.py``, and gitlab-runner in the cluster (its helm chart, the
Kubernetes executor). Once GitLab answers, ``provision.py`` makes it the lab's through its API (root's token,
the shop's projects, the instance variable ``CI_REGISTRY``, the runner's token in the chart's values); then the
job pods' service account gets its rights in namespace ``shop`` (``RBAC``) and the chart is installed.

``external_url`` is ``http://127.0.0.1:<port>`` and the container listens on that same port, so clone URLs work
from this machine and, by the container's name on kind's network, from the runner's pods (``clone_url``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.secrets import GITLAB_ROOT_PASSWORD, Secrets
from ..endpoints import Endpoint, GitLabEndpoint
from ..images.harbor import service_address
from .omnibus import render
from .seed import MANIFESTS, SHOP

CHART = "gitlab-runner"
RBAC = "manifests/kind/gitlab-runner-rbac.yaml"  # the job pods' service account and its rights
SHOP_NAMESPACE = "manifests/apps/namespace.yaml"  # the shop's own namespace object, which RBAC's Role lives in


class GitLabKind(KindPart):
    compose_services = ("gitlab",)
    compose_profile = "gitlab"

    @staticmethod
    def folder(lab: KindLab) -> Path:
        return lab.dir / "gitlab"

    @staticmethod
    def url(lab: KindLab) -> str:
        return lab.host_url("gitlab")

    def files(self, lab: KindLab) -> dict[Path, str]:
        password = Secrets(lab.paths.secrets).get(GITLAB_ROOT_PASSWORD)
        return {self.folder(lab) / "gitlab.rb": render(self.url(lab), password)}

    def configure(self, lab: KindLab) -> list[Command]:
        chart = lab.versions["charts"][CHART]
        cluster_url = f"http://{lab.container('gitlab')}:{lab.ports['gitlab']}"
        registry = lab.versions["registry"]["cluster_name"]
        return [
            Command("provisioning GitLab (root's token, the shop's projects, CI_REGISTRY and Harbor's CI robot, a "
                    "runner token)", [
                sys.executable, "-m", "labkit.gitlab.provision", "--home", str(lab.paths.home), "--url",
                self.url(lab), "--cluster-url", cluster_url, "--out", str(self.folder(lab)),
                "--registry", registry, "--registry-target", service_address(lab.versions), "--harbor-robot",
                "--relay-image", chart["registry_relay_image"], *self._pip_index(lab)]),
            Command("letting the runner's job pods deploy the shop (RBAC in namespace shop)",
                    lab.kubectl("apply", "-f", str(lab.checkout.root / SHOP_NAMESPACE), "-f",
                                str(lab.checkout.root / RBAC))),
            Command("installing gitlab-runner (helm, Kubernetes executor)", [
                "helm", "upgrade", "--install", CHART, chart["chart"], "--repo", chart["repo"],
                "--version", str(chart["version"]), "--namespace", chart["namespace"], "--create-namespace",
                "--values", str(self.folder(lab) / "runner-values.yaml"), "--kubeconfig", lab.kubeconfig]),
        ]

    @staticmethod
    def _pip_index(lab: KindLab) -> list[str]:
        """With Nexus in the profile: the jobs' PIP_INDEX_URL, its group on 127.0.0.1 as from this machine, which
        a relay in each job pod leads to Nexus' container."""
        from ..backends.kind.backend import endpoint_of  # here: labkit.products imports this module

        index = getattr(endpoint_of(lab, "nexus"), "pypi", "")
        return ["--pip-index", index, "--pip-target", f"{lab.container('nexus')}:8081"] if index else []

    def endpoint(self, lab: KindLab) -> Endpoint:
        url = self.url(lab)
        return GitLabEndpoint("GitLab + Runner", url, api=f"{url}/api/v4",
                              token_file=str(self.folder(lab) / "root-token"), projects=[SHOP, MANIFESTS])

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/api/v4/projects", timeout=5)  # public: no token, any client address
