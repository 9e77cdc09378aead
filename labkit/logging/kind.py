"""Logging on the kind backend: Elastic's ``elasticsearch`` and ``kibana`` Helm charts (single node, a laptop-sized
heap) and the ``fluent-bit`` chart running the very pipeline the sim's collectors run
(``manifests/logging/fluent-bit.yaml``, YAML format, an extra file of the chart's ConfigMap, its ``${ES_*}``
variables set from the Elasticsearch Service and the chart's credentials Secret). Charts, versions and NodePorts are
``charts.elasticsearch|kibana|fluent-bit`` in ``manifests/versions.yaml``.

From the laptop: Elasticsearch (HTTPS with the chart's own CA, read from the ``elasticsearch-master-certs`` Secret
into the lab folder) and Kibana are NodePorts published on ``127.0.0.1:<ports.elasticsearch|kibana>``. The
``elastic`` user's password is the lab's secret, set as the chart's ``secret.password`` (so it is the
``elasticsearch-master-credentials`` Secret's) and written to the endpoint's ``password_file`` (0600). Each node's
Fluent Bit monitoring API: the collectors run in the node's network (``hostNetwork``, cluster DNS kept with
``ClusterFirstWithHostNet``), so the node's own port ``charts.fluent-bit.metrics_port`` is its collector's, published
per node on ``127.0.0.1:<ports.fluentbit-<node>>``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..core.addresses import NODES
from ..core.files import write_atomic
from ..core.secrets import Secrets
from ..endpoints import Endpoint, LoggingEndpoint
from .component import ELASTIC_PASSWORD, pipeline_config

ES_SERVICE = "elasticsearch-master"  # the elasticsearch chart's service (clusterName "elasticsearch", nodeGroup master)
ES_CREDENTIALS = "elasticsearch-master-credentials"  # the chart's Secret: keys username, password
ES_CERTS = "elasticsearch-master-certs"  # the chart's self-signed CA and certificate: keys ca.crt, tls.crt, tls.key
CONFIG_FILE = "fluent-bit.yaml"
HEAP = "512m"  # a laptop's heap: -Xms = -Xmx, with the container's memory limit at twice that
CHARTS = ("elasticsearch", "kibana", "fluent-bit")


def fluentbit_port(node: str) -> str:
    """The ``ports`` key of a node's published Fluent Bit monitoring API."""
    return f"fluentbit-{node}"


def elasticsearch_values(node_port: int, password: str = "", image_tag: str = "") -> dict[str, Any]:
    """One master/data node, a small heap, HTTPS on a NodePort (the chart's own self-signed certificate), the
    ``elastic`` user's password (the chart generates one when empty), the image of ``image_tag`` (the chart's own
    when empty)."""
    return {"replicas": 1, "minimumMasterNodes": 1, **({"imageTag": image_tag} if image_tag else {}),
            "esJavaOpts": f"-Xms{HEAP} -Xmx{HEAP}",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            "volumeClaimTemplate": {"resources": {"requests": {"storage": "2Gi"}}},
            "secret": {"enabled": True, "password": password},
            "service": {"type": "NodePort", "nodePort": node_port}}


def kibana_values(namespace: str, node_port: int, image_tag: str = "") -> dict[str, Any]:
    """Kibana against that node (the chart's CA and credentials Secrets), on a NodePort."""
    return {"elasticsearchHosts": f"https://{ES_SERVICE}.{namespace}.svc:9200",
            **({"imageTag": image_tag} if image_tag else {}),
            "elasticsearchCertificateSecret": ES_CERTS, "elasticsearchCredentialSecret": ES_CREDENTIALS,
            "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
            "service": {"type": "NodePort", "nodePort": node_port}}


def fluent_bit_values(config_text: str, namespace: str, metrics_port: int = 2020) -> dict[str, Any]:
    """The fluent-bit chart running the chapter's YAML pipeline on every node (control planes included), in the
    node's network (its monitoring API on the node's ``metrics_port``), with Elasticsearch's address and
    credentials."""
    return {
        "config": {"extraFiles": {CONFIG_FILE: config_text}},
        "metricsPort": metrics_port,
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "args": ["--workdir=/fluent-bit/etc", f"--config=/fluent-bit/etc/conf/{CONFIG_FILE}"],
        "tolerations": [{"operator": "Exists"}],
        "env": [
            {"name": "ES_HOST", "value": f"{ES_SERVICE}.{namespace}.svc"},
            {"name": "ES_PORT", "value": "9200"},
            {"name": "ES_TLS", "value": "on"},
            {"name": "ES_TLS_VERIFY", "value": "off"},
            {"name": "ES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": ES_CREDENTIALS, "key": "password"}}},
        ],
    }


class LoggingKind(KindPart):
    @staticmethod
    def folder(lab: KindLab) -> Path:
        return lab.dir / "logging"

    @staticmethod
    def password(lab: KindLab) -> str:
        return Secrets(lab.paths.secrets).get(ELASTIC_PASSWORD)

    def values(self, lab: KindLab) -> dict[str, dict[str, Any]]:
        """Each chart's values, by chart."""
        charts = lab.versions["charts"]
        ns = charts["elasticsearch"]["namespace"]
        es, kibana = charts["elasticsearch"], charts["kibana"]
        return {"elasticsearch": elasticsearch_values(int(es["node_port"]), self.password(lab), es["app_version"]),
                "kibana": kibana_values(ns, int(kibana["node_port"]), kibana["app_version"]),
                "fluent-bit": fluent_bit_values(pipeline_config().read_text(), ns,
                                                int(charts["fluent-bit"]["metrics_port"]))}

    def files(self, lab: KindLab) -> dict[Path, str]:
        header = "# the {} chart's values, rendered by labkit/logging/kind.py\n"
        return {self.folder(lab) / f"{chart}.yaml": header.format(chart) + yaml.safe_dump(values, sort_keys=False)
                for chart, values in self.values(lab).items()}

    def helm(self, lab: KindLab, chart: str, *extra: str) -> list[str]:
        c = lab.versions["charts"][chart]
        return ["helm", "upgrade", "--install", chart, c["chart"], "--repo", c["repo"],
                "--version", str(c["version"]), "--namespace", c["namespace"], "--create-namespace",
                "--values", str(self.folder(lab) / f"{chart}.yaml"), "--kubeconfig", lab.kubeconfig, *extra]

    def configure(self, lab: KindLab) -> list[Command]:
        self.write_password(lab)  # the ready check signs in with it
        charts = lab.versions["charts"]
        es, kibana, fb = charts["elasticsearch"], charts["kibana"], charts["fluent-bit"]
        wait = ["--wait", "--timeout", f"{es['ready_seconds']}s"]
        return [
            Command(f"installing Elasticsearch {es['app_version']} (helm chart {es['chart']} {es['version']}, single "
                    f"node, {HEAP} heap, 127.0.0.1:{lab.ports['elasticsearch']})",
                    self.helm(lab, "elasticsearch", *wait)),
            Command(f"waiting for Elasticsearch (its CA into {self.folder(lab) / 'ca.crt'})", [
                sys.executable, "-m", "labkit.logging.ready", "--url", lab.host_url("elasticsearch", "https"),
                "--kubeconfig", lab.kubeconfig, "--namespace", es["namespace"], "--secret", ES_CERTS,
                "--ca-file", str(self.folder(lab) / "ca.crt"), "--password-file", str(self.password_file(lab)),
                "--wait", str(es["ready_seconds"])]),
            Command(f"installing Fluent Bit {fb['app_version']} (helm chart {fb['chart']} {fb['version']}, the "
                    "chapter's pipeline on every node)", self.helm(lab, "fluent-bit", *wait)),
            Command(f"installing Kibana {kibana['app_version']} (helm chart {kibana['chart']} {kibana['version']}, "
                    f"127.0.0.1:{lab.ports['kibana']})", self.helm(lab, "kibana", *wait)),
        ]

    def password_file(self, lab: KindLab) -> Path:
        return self.folder(lab) / "elastic-password"

    def write_password(self, lab: KindLab) -> None:
        write_atomic(self.password_file(lab), self.password(lab), 0o600)

    def endpoint(self, lab: KindLab) -> Endpoint:
        self.write_password(lab)
        fluentbit = {node: lab.host_url(fluentbit_port(node)) for node in NODES if fluentbit_port(node) in lab.ports}
        return LoggingEndpoint("Elasticsearch + Fluent Bit + Kibana", lab.host_url("elasticsearch", "https"),
                               password_file=str(self.password_file(lab)), kibana=lab.host_url("kibana"),
                               fluentbit=fluentbit, config=str(self.folder(lab) / "fluent-bit.yaml"),
                               ca_file=str(self.folder(lab) / "ca.crt"))

    def health(self, lab: KindLab, endpoint: Endpoint) -> tuple[bool, str]:
        from .ready import cluster_health

        assert isinstance(endpoint, LoggingEndpoint)
        return cluster_health(endpoint.url, endpoint.user, Path(endpoint.password_file), Path(endpoint.ca_file))
