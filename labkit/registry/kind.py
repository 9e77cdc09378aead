"""The registry on the kind backend: CNCF Distribution (``registry:3``) as the compose service ``registry``.

containerd on every node maps the name pods use (``localhost:5001``, from ``manifests/versions.yaml``) to
the registry container (``certs.d/<name>/hosts.toml``, as kind's local-registry guide does), whatever host
port the registry is published on; the ``local-registry-hosting`` ConfigMap documents it in the cluster.
"""

from __future__ import annotations

from pathlib import Path

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.component import http_check
from ..endpoints import Endpoint, RegistryEndpoint


class RegistryKind(KindPart):
    compose_services = ("registry",)

    @staticmethod
    def hosting_manifest(lab: KindLab) -> Path:
        return lab.dir / "local-registry-hosting.yaml"

    def files(self, lab: KindLab) -> dict[Path, str]:
        name, host = lab.versions["registry"]["cluster_name"], lab.container("registry")
        return {lab.certs_dir / name / "hosts.toml": lab.checkout.template("hosts.toml.j2").render(
                    cluster_name=name, registry_host=host),
                self.hosting_manifest(lab): lab.checkout.template("local-registry-hosting.yaml.j2").render(
                    registry_port=lab.ports["registry"], cluster_name=name, registry_host=host)}

    def configure(self, lab: KindLab) -> list[Command]:
        return [Command("documenting the lab registry in the cluster",
                        lab.kubectl("apply", "-f", str(self.hosting_manifest(lab))))]

    def endpoint(self, lab: KindLab) -> Endpoint:
        push = f"localhost:{lab.ports['registry']}"
        return RegistryEndpoint("Container registry", lab.host_url("registry"), push=push,
                                pull=lab.versions["registry"]["cluster_name"])

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        return http_check(endpoint.url + "/v2/", timeout=3)
