"""The kind backend's Helm values for logging (labkit/logging/kind.py): the fluent-bit chart runs the same pipeline
file as the sim's collectors, with every ``${ES_*}`` variable it names set; Elasticsearch is single-node with a
laptop heap."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml

from labkit.backends.kind.lab import KindLab
from labkit.core.addresses import NODES
from labkit.endpoints import LoggingEndpoint
from labkit.logging.component import pipeline_config
from labkit.logging.kind import CONFIG_FILE, LoggingKind, elasticsearch_values, fluent_bit_values


def test_fluent_bit_runs_the_chapters_pipeline() -> None:
    text = pipeline_config().read_text()
    values = fluent_bit_values(text, "logging")
    assert values["config"]["extraFiles"][CONFIG_FILE] == text
    assert f"--config=/fluent-bit/etc/conf/{CONFIG_FILE}" in values["args"]
    wanted = set(re.findall(r"\$\{(ES_[A-Z_]+)\}", text))
    assert wanted and wanted <= {e["name"] for e in values["env"]}


def test_elasticsearch_is_single_node_with_a_small_heap() -> None:
    values = elasticsearch_values(30920)
    assert values["replicas"] == 1 and "-Xmx512m" in values["esJavaOpts"]
    assert values["service"] == {"type": "NodePort", "nodePort": 30920}


def test_logging_kind_renders_three_releases(rendered: KindLab) -> None:
    part = LoggingKind()
    files = part.files(rendered)
    folder = part.folder(rendered)
    es = yaml.safe_load(files[folder / "elasticsearch.yaml"])
    assert es["secret"] == {"enabled": True, "password": part.password(rendered)}
    fb = yaml.safe_load(files[folder / "fluent-bit.yaml"])
    assert fb["config"]["extraFiles"][CONFIG_FILE] == pipeline_config().read_text()
    assert {"operator": "Exists"} in fb["tolerations"]  # control-plane nodes' logs too
    charts = rendered.versions["charts"]
    assert fb["hostNetwork"] is True and fb["dnsPolicy"] == "ClusterFirstWithHostNet"  # the node's port is its own
    service = yaml.safe_load(pipeline_config().read_text())["service"]  # the chart's probes hit the pipeline's port
    assert fb["metricsPort"] == charts["fluent-bit"]["metrics_port"] == service["http_port"]

    commands = part.configure(rendered)
    helm = [c.argv for c in commands if c.argv[0] == "helm"]
    assert [h[3] for h in helm] == ["elasticsearch", "fluent-bit", "kibana"]
    for argv in helm:
        chart = charts[argv[3]]
        assert argv[argv.index("--repo") + 1] == chart["repo"] and argv[argv.index("--version") + 1] == chart["version"]
        assert Path(argv[argv.index("--values") + 1]) in files

    ep = part.endpoint(rendered)
    assert isinstance(ep, LoggingEndpoint) and ep.url == f"https://127.0.0.1:{rendered.ports['elasticsearch']}"
    password = Path(ep.password_file)
    assert password.read_text() == part.password(rendered) and stat.S_IMODE(password.stat().st_mode) == 0o600
    assert set(ep.fluentbit) == set(NODES) and ep.kibana.endswith(str(rendered.ports["kibana"]))
