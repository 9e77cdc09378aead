"""The registry on the kind backend: Harbor, from its helm chart (``charts.harbor`` in ``manifests/versions.yaml``),
in the kind cluster.

Harbor is exposed as a NodePort that *is* the lab registry's port (5001 unless taken): the kind config widens the
API server's ``service-node-port-range`` down to it and publishes it from the host's ``127.0.0.1:<port>`` (an
``extraPortMappings`` of the node Harbor lives on), and ``externalURL`` is ``http://localhost:<port>``. So the
name ``localhost:<port>`` works everywhere Harbor is used: ``docker push`` on the laptop; containerd on every node
(``certs.d/localhost:5001/hosts.toml`` points at the node's own localhost, where kube-proxy serves NodePorts);
the CI job pods (a relay from the pod's localhost to Harbor's Service); and the token realm Harbor advertises,
``http://localhost:<port>/service/token``, is reachable from each of them. Plain HTTP on localhost: no x509.

Once the chart is installed, ``provision.py`` waits (with a deadline) until ``/api/v2.0/health`` is healthy and
makes Harbor the lab's through its API: the project ``shop`` (public: nodes pull anonymously) and the CI robot.
The shop's images are pushed afterwards (``shop/kind.py``) with the admin's Docker config this part writes.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..core.secrets import REGISTRY_PASSWORD, Secrets
from ..endpoints import Endpoint, RegistryEndpoint
from ..images.harbor import ADMIN, service_address

CHART = "harbor"
SECRET_KEY = "harbor-secret-key"  # the lab's secretKey of Harbor (its encryption key for stored secrets)
COMPONENTS = ("nginx", "portal", "core", "jobservice", "registry", "trivy", "database", "redis")


class RegistryKind(KindPart):
    @staticmethod
    def hosting_manifest(lab: KindLab) -> Path:
        return lab.dir / "local-registry-hosting.yaml"

    @staticmethod
    def values_file(lab: KindLab) -> Path:
        return lab.dir / "harbor" / "values.yaml"

    def files(self, lab: KindLab) -> dict[Path, str]:
        name, port = lab.versions["registry"]["cluster_name"], lab.ports["registry"]
        chart = lab.versions["charts"][CHART]
        secrets = Secrets(lab.paths.secrets)
        password = secrets.get(REGISTRY_PASSWORD)
        auth = base64.b64encode(f"{ADMIN}:{password}".encode()).decode()
        return {
            lab.certs_dir / name / "hosts.toml": lab.checkout.template("hosts.toml.j2").render(
                cluster_name=name, node_port=port),
            self.hosting_manifest(lab): lab.checkout.template("local-registry-hosting.yaml.j2").render(
                registry_port=port, cluster_name=name, registry_service=service_address(lab.versions)),
            self.values_file(lab): lab.checkout.template("harbor-values.yaml.j2").render(
                chart_version=chart["version"], port=port, node=chart["node"], admin_password=password,
                secret_key=secrets.get(SECRET_KEY, 12)[:16], components=COMPONENTS),
            lab.docker_config / "config.json": json.dumps({"auths": {f"localhost:{port}": {"auth": auth}}},
                                                                indent=1) + "\n",
        }

    def configure(self, lab: KindLab) -> list[Command]:
        chart = lab.versions["charts"][CHART]
        api = self.api(lab)
        return [
            Command(f"installing Harbor {chart['version']} (helm chart {chart['chart']}, NodePort "
                    f"{lab.ports['registry']})", [
                        "helm", "upgrade", "--install", CHART, chart["chart"], "--repo", chart["repo"],
                        "--version", str(chart["version"]), "--namespace", chart["namespace"], "--create-namespace",
                        "--values", str(self.values_file(lab)), "--kubeconfig", lab.kubeconfig]),
            Command(f"waiting for Harbor (up to {chart['ready_seconds'] // 60} min: its images are pulled first), "
                    "then provisioning it (project shop, robot account robot$shop+ci)", [
                        sys.executable, "-m", "labkit.registry.provision", "--home", str(lab.paths.home),
                        "--api", api, "--wait", str(chart["ready_seconds"])]),
            Command("documenting the lab registry in the cluster",
                    lab.kubectl("apply", "-f", str(self.hosting_manifest(lab)))),
        ]

    @staticmethod
    def api(lab: KindLab) -> str:
        return lab.host_url("registry") + "/api/v2.0"

    def endpoint(self, lab: KindLab) -> Endpoint:
        return RegistryEndpoint("Harbor (container registry)", lab.host_url("registry"),
                                push=f"localhost:{lab.ports['registry']}",
                                pull=lab.versions["registry"]["cluster_name"], user=ADMIN, api=self.api(lab))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(self.api(lab) + "/health", timeout=5)
