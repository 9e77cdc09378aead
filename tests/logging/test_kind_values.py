"""The kind backend's Helm values for logging (labkit/logging/kind.py): the fluent-bit chart runs the same pipeline
file as the sim's collectors, with every ``${ES_*}`` variable it names set; Elasticsearch is single-node with a
laptop heap."""

from __future__ import annotations

import re

from labkit.logging.component import pipeline_config
from labkit.logging.kind import CONFIG_FILE, elasticsearch_values, fluent_bit_values


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
