"""Logging on kind, through the contract harness: ``LoggingKind``'s helm installs of Elastic's elasticsearch and
kibana charts and the fluent-bit chart (the harness stands in with the sim's Elasticsearch over HTTPS with the
chart's Secrets, and the sim's Fluent Bit on every node running the chapter's pipeline from the values), then
Elasticsearch answers on the published port over HTTPS checked against the chart's CA as the ``elastic`` user from
the password file, each node's Fluent Bit answers on its own published port, and a container's log line written on a
node (in the CRI format, under the node's ``/var/log``) is searchable in ``logstash-*``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from elasticsearch import Elasticsearch

from labkit.backends.kind.lab import KindLab
from labkit.core.addresses import NODES
from labkit.kube.node.crilog import CriLog, container_id, link_path, pod_log_dir
from labkit.logging.kind import LoggingKind
from tests.waiting import until

from .conftest import install_part
from .harness import Harness
from .harness.flags import Failure
from .harness.logging import elasticsearch_values, fluent_bit_config


def test_logging_charts_install_search_and_per_node_metrics(harness: Harness, rendered: KindLab) -> None:
    part = LoggingKind()
    assert install_part(harness, rendered, part) == \
        ["elasticsearch", "fluent-bit", "kibana"]
    charts = rendered.versions["charts"]

    ep = part.endpoint(rendered)
    assert ep.url == f"https://127.0.0.1:{rendered.ports['elasticsearch']}" and part.health(rendered, ep)[0]
    assert Path(ep.password_file).stat().st_mode & 0o777 == 0o600 and Path(ep.ca_file).exists()
    with pytest.raises(requests.exceptions.SSLError):  # HTTPS with the chart's own CA, not a public one
        requests.get(ep.url, timeout=10)
    client = Elasticsearch(ep.url, basic_auth=(ep.user, Path(ep.password_file).read_text()), ca_certs=ep.ca_file,
                           ssl_assert_hostname=False, request_timeout=30)
    assert client.info()["version"]["number"] == charts["elasticsearch"]["app_version"]  # the image the values run

    assert set(ep.fluentbit) == set(NODES)
    for node, url in ep.fluentbit.items():  # each node's published port reaches that node's collector
        metrics = requests.get(url + "/api/v1/metrics", timeout=10).json()
        assert "tail.0" in metrics["input"] and "es.0" in metrics["output"], (node, metrics)

    # a container's line on agent-2, in the CRI format under the node's /var/log (the sim kubelet's own writer)
    home = harness.state.cluster_dir(rendered.cluster) / "home"
    node_dir = Path(json.loads((home / "endpoints.json").read_text())["products"]["kubernetes"]["node_logs"]["agent-2"])
    uid, mark = str(uuid.uuid4()), uuid.uuid4().hex
    cid = container_id(uid, "talker", 0)
    path = pod_log_dir(node_dir, "default", "talker", uid) / "talker" / "0.log"
    log = CriLog(path)
    link = link_path(node_dir, "default", "talker", "talker", cid)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(path)
    log.write("stdout", json.dumps({"level": "error", "msg": mark}).encode() + b"\n")
    log.close()
    try:
        hits = until(f"the line {mark} in logstash-*", lambda: client.search(
            index="logstash-*", q=mark, ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"])
    except AssertionError as err:
        metrics = requests.get(ep.fluentbit["agent-2"] + "/api/v1/metrics", timeout=10).json()
        found = client.search(index="logstash-*", size=3, ignore_unavailable=True, allow_no_indices=True).body
        raise AssertionError(f"{err}; agent-2's Fluent Bit: {metrics}; logstash-*: {found}") from None
    source = hits[0]["_source"]  # no such pod in the API: the line unmerged, without Kubernetes metadata
    assert mark in source["log"] and source["stream"] == "stdout" and hits[0]["_index"].startswith("logstash-")
    shipped = requests.get(ep.fluentbit["agent-2"] + "/api/v1/metrics", timeout=10).json()["output"]["es.0"]
    assert shipped["proc_records"] >= 1
    assert yaml.safe_load((part.folder(rendered) / "fluent-bit.yaml").read_text())["hostNetwork"] is True


@pytest.mark.parametrize(("values", "words"), [
    ({"service": {"type": "ClusterIP"}}, "NodePort only"),
    ({"service": {"type": "NodePort", "nodePort": 30920}}, "single Elasticsearch node"),  # the chart's 3 replicas
    ({"service": {"type": "NodePort", "nodePort": 30920}, "replicas": 1, "protocol": "http"}, "protocol: https"),
])
def test_the_harness_refuses_elasticsearch_values_it_cannot_honour(values: dict, words: str) -> None:
    with pytest.raises(Failure, match=words):
        elasticsearch_values(values)


def test_the_harness_runs_the_fluent_bit_config_the_values_name() -> None:
    good = {"hostNetwork": True, "args": ["--workdir=/fluent-bit/etc", "--config=/fluent-bit/etc/conf/x.yaml"],
            "config": {"extraFiles": {"x.yaml": "service: {}\n"}}}
    assert fluent_bit_config(good) == ("x.yaml", "service: {}\n")
    with pytest.raises(Failure, match="hostNetwork: true"):
        fluent_bit_config({**good, "hostNetwork": False})
    with pytest.raises(Failure, match=r"config\.extraFiles only"):  # the chart's own classic fluent-bit.conf
        fluent_bit_config({**good, "args": []})
