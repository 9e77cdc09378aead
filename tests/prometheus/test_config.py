"""prometheus.yml and relabeling: the chapter's file loads with Prometheus' defaults; what Prometheus refuses is
refused (and `promtool check config`, the real checker, agrees when it is installed); unsupported keys are named;
the relabel actions give the labels Prometheus' documentation gives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from labkit.core.checkout import Checkout
from labkit.prometheus.config import ConfigError, load, parse
from labkit.prometheus.scrape.relabel import RelabelConfig, RelabelError, expand, go_regex, hashmod, relabel
from labkit.prometheus.scrape.target import populate

CHAPTER = Checkout.find().root / "manifests" / "prometheus"


def test_chapter_config_loads_with_defaults() -> None:
    cfg = load(CHAPTER / "prometheus.yml")
    assert (cfg.scrape_interval, cfg.scrape_timeout, cfg.evaluation_interval) == (5, 5, 5)
    pods = next(j for j in cfg.scrape_configs if j.job_name == "kubernetes-pods")
    assert pods.metrics_path == "/metrics" and pods.scheme == "http" and not pods.honor_labels
    assert [sd.role for sd in pods.kubernetes_sd_configs] == ["pod"]
    assert [p.name for p in cfg.rule_paths()] == ["shop.yml"]


def test_global_defaults() -> None:
    cfg = parse("scrape_configs: [{job_name: a, static_configs: [{targets: ['127.0.0.1:1']}]}]")
    assert (cfg.scrape_interval, cfg.scrape_timeout, cfg.evaluation_interval) == (60, 10, 60)
    job = cfg.scrape_configs[0]
    assert (job.scrape_interval, job.scrape_timeout) == (60, 10)
    short = parse("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: a, scrape_interval: 2s}]")
    assert short.scrape_configs[0].scrape_timeout == 2  # the job's timeout never exceeds its interval


REFUSED = {
    "timeout": ("global: {scrape_interval: 5s, scrape_timeout: 10s}\n", "scrape timeout greater than scrape interval"),
    "duplicate": ("scrape_configs: [{job_name: a}, {job_name: a}]\n", 'multiple scrape configs with job name "a"'),
    "action": ("scrape_configs: [{job_name: a, relabel_configs: [{action: explode}]}]\n", "unknown relabel action"),
    "hashmod": ("scrape_configs: [{job_name: a, relabel_configs: [{action: hashmod, target_label: x}]}]\n",
                "non-zero modulus"),
    "duration": ("global: {scrape_interval: 5 seconds}\n", "not a valid duration"),
    "role": ("scrape_configs: [{job_name: a, kubernetes_sd_configs: [{role: ingress}]}]\n", "ingress"),
    "basic_auth": ("scrape_configs: [{job_name: a, basic_auth: {username: u, password: p, password_file: f}}]\n",
                   "at most one of basic_auth password & password_file must be configured"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_as_prometheus_refuses(case: str, tmp_path: Path) -> None:
    text, message = REFUSED[case]
    with pytest.raises((ConfigError, RelabelError), match=message):
        parse(text)
    promtool = shutil.which("promtool")
    if promtool and case != "role":  # ingress is a real role the simulator does not have
        (tmp_path / "p.yml").write_text(text)
        check = subprocess.run([promtool, "check", "config", str(tmp_path / "p.yml")], capture_output=True,
                               text=True, timeout=60)
        assert check.returncode != 0, check.stdout


def test_basic_auth_password_file_is_relative_to_the_config_and_read_at_each_scrape(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "nexus").write_text("first\n")
    (tmp_path / "prometheus.yml").write_text(
        "scrape_configs: [{job_name: n, basic_auth: {username: admin, password_file: secrets/nexus}}]\n")
    job = load(tmp_path / "prometheus.yml").scrape_configs[0]
    assert job.credentials() == ("admin", "first")
    (tmp_path / "secrets" / "nexus").write_text("rotated")
    assert job.credentials() == ("admin", "rotated")
    (tmp_path / "secrets" / "nexus").unlink()
    with pytest.raises(RuntimeError, match="unable to read basic auth password file"):
        job.credentials()
    inline = parse("scrape_configs: [{job_name: n, basic_auth: {username: u, password: p}}]").scrape_configs[0]
    assert inline.credentials() == ("u", "p")


def test_unsupported_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="consul_sd_configs is not supported by the labkit simulator"):
        parse("scrape_configs: [{job_name: a, consul_sd_configs: [{server: x}]}]")
    with pytest.raises(ConfigError, match="remote_write is not supported by the labkit simulator"):
        parse("remote_write: [{url: http://x}]")


def test_chapter_rules_pass_promtool() -> None:
    """(Debian's promtool is built without Kubernetes discovery, so it cannot check the chapter's
    prometheus.yml; its rule file it can.)"""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/test.sh installs prometheus)")
    check = subprocess.run([promtool, "check", "rules", str(CHAPTER / "rules" / "shop.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def cfg(**kw: object) -> RelabelConfig:
    return RelabelConfig.parse(kw)


def test_annotation_config_builds_the_pods_target() -> None:
    job = load(CHAPTER / "prometheus.yml").scrape_configs[0]
    discovered = {"__address__": "10.1.2.3", "__meta_kubernetes_namespace": "shop",
                  "__meta_kubernetes_pod_name": "catalog-1", "__meta_kubernetes_pod_node_name": "agent-1",
                  "__meta_kubernetes_pod_label_app": "catalog",
                  "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
                  "__meta_kubernetes_pod_annotation_prometheus_io_port": "8080",
                  "__meta_kubernetes_pod_annotation_prometheus_io_path": "/stats"}
    target, _ = populate(job, discovered)
    assert target is not None
    assert target.url == "http://10.1.2.3:8080/stats"
    assert target.labels == {"job": "kubernetes-pods", "instance": "10.1.2.3:8080", "app": "catalog",
                             "namespace": "shop", "pod": "catalog-1", "node": "agent-1"}
    dropped, base = populate(job, {**discovered, "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "false"})
    assert dropped is None and base["job"] == "kubernetes-pods"


def test_relabel_actions() -> None:
    labels = {"__address__": "h:9", "a": "Foo", "b": "bar", "__meta_x_zone": "eu"}
    assert relabel(labels, [cfg(source_labels=["a", "b"], regex="Foo;(.*)", target_label="c",
                                replacement="${1}-x")])["c"] == "bar-x"
    assert relabel(labels, [cfg(source_labels=["a"], regex="nomatch", target_label="a", replacement="z")])["a"] == "Foo"
    assert "a" not in relabel(labels, [cfg(source_labels=["b"], target_label="a", replacement="")])  # empty: deleted
    assert relabel(labels, [cfg(source_labels=["a"], regex="foo", action="keep")]) is None  # anchored, case-sensitive
    assert relabel(labels, [cfg(source_labels=["a"], regex="F.*", action="drop")]) is None
    assert relabel(labels, [cfg(regex="__meta_x_(.+)", action="labelmap")])["zone"] == "eu"
    assert set(relabel(labels, [cfg(regex="a|b", action="labeldrop")])) == {"__address__", "__meta_x_zone"}
    assert set(relabel(labels, [cfg(regex="a|__address__", action="labelkeep")])) == {"__address__", "a"}
    assert relabel(labels, [cfg(source_labels=["a"], target_label="l", action="lowercase")])["l"] == "foo"
    assert relabel(labels, [cfg(source_labels=["b"], target_label="u", action="uppercase")])["u"] == "BAR"
    assert relabel({"a": "x", "b": "x"}, [cfg(source_labels=["a"], target_label="b", action="keepequal")]) \
        == {"a": "x", "b": "x"}
    assert relabel({"a": "x", "b": "y"}, [cfg(source_labels=["a"], target_label="b", action="keepequal")]) is None
    shard = relabel(labels, [cfg(source_labels=["__address__"], modulus=4, target_label="s", action="hashmod")])
    assert shard["s"] == str(hashmod("h:9", 4)) and 0 <= int(shard["s"]) < 4


def test_go_expansion() -> None:
    m = go_regex("(?P<host>[^:]+):(\\d+)").match("web:80")
    assert m is not None
    assert expand("$host-${2}", m) == "web-80"
    assert expand("$1x", m) == ""  # Go reads the group named "1x"
    assert expand("$$1", m) == "$1"
