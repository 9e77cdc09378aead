"""Logging on the kind backend (values only so far): Elastic's ``elasticsearch`` and ``kibana`` Helm charts (single
node, a laptop-sized heap; the ``elastic`` user's password in the chart's ``elasticsearch-master-credentials``
Secret) and the ``fluent-bit`` chart running the very pipeline the sim's collectors run
(``manifests/logging/fluent-bit.yaml``, YAML format, mounted as an extra file of the chart's ConfigMap), its
``${ES_*}`` variables set from the Elasticsearch service and that Secret.

Not wired yet: the chart versions and host ports (``manifests/versions.yaml``), the NodePort mappings of the kind
config, and the contract harness' stand-ins; ``LoggingKind`` is for the lead/L1 to wire once those exist."""

from __future__ import annotations

from typing import Any

ES_SERVICE = "elasticsearch-master"  # the elasticsearch chart's service (clusterName "elasticsearch", nodeGroup master)
ES_CREDENTIALS = "elasticsearch-master-credentials"  # the chart's Secret: keys username, password
CONFIG_FILE = "fluent-bit.yaml"
HEAP = "512m"  # a laptop's heap: -Xms = -Xmx, with the container's memory limit at twice that


def elasticsearch_values(node_port: int) -> dict[str, Any]:
    """One master/data node, a small heap, HTTPS on a NodePort (the chart's own self-signed certificate)."""
    return {"replicas": 1, "minimumMasterNodes": 1,
            "esJavaOpts": f"-Xms{HEAP} -Xmx{HEAP}",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            "volumeClaimTemplate": {"resources": {"requests": {"storage": "2Gi"}}},
            "service": {"type": "NodePort", "nodePort": node_port}}


def kibana_values(namespace: str, node_port: int) -> dict[str, Any]:
    """Kibana against that node, on a NodePort."""
    return {"elasticsearchHosts": f"https://{ES_SERVICE}.{namespace}.svc:9200",
            "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
            "service": {"type": "NodePort", "nodePort": node_port}}


def fluent_bit_values(config_text: str, namespace: str) -> dict[str, Any]:
    """The fluent-bit chart running the chapter's YAML pipeline, with Elasticsearch's address and credentials."""
    return {
        "config": {"extraFiles": {CONFIG_FILE: config_text}},
        "args": ["--workdir=/fluent-bit/etc", f"--config=/fluent-bit/etc/conf/{CONFIG_FILE}"],
        "env": [
            {"name": "ES_HOST", "value": f"{ES_SERVICE}.{namespace}.svc"},
            {"name": "ES_PORT", "value": "9200"},
            {"name": "ES_TLS", "value": "on"},
            {"name": "ES_TLS_VERIFY", "value": "off"},
            {"name": "ES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": ES_CREDENTIALS, "key": "password"}}},
        ],
    }
