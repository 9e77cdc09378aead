"""The node collector from real Fluent Bit configuration files, in both formats: tail with its db over CRI files
(P/F records joined, rotation), modify/grep/record_modifier, the es output (logstash indices, @timestamp,
replace_dots, generate_id, suppress_type_name, retries), the monitoring API, and a restart that neither loses nor
repeats a line. The collector runs as its own process (``python -m labkit.logging.fluentbit``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.kube.node.crilog import CriLog, container_id
from labkit.logging.fluentbit import Collector
from labkit.logging.fluentbit.config import ConfigError, load

from ..waiting import until as wait_until
from .bulk import BulkServer
from .running import Running, free_port

HEX = container_id("uid-1", "app", 0)
CLASSIC = """\
[SERVICE]
    Flush            0.5
    Grace            5
    HTTP_Server      On
    HTTP_Listen      127.0.0.1
    HTTP_Port        ${PORT}
    Health_Check     On
    scheduler.base   1
    scheduler.cap    1
    Parsers_File     parsers.conf

@SET LEVEL=level

[INPUT]
    Name              tail
    Tag               kube.*
    Path              /var/log/containers/*.log
    multiline.parser  docker, cri
    DB                /var/log/flb_kube.db
    Mem_Buf_Limit     5MB
    Skip_Long_Lines   On
    Refresh_Interval  1
    Read_from_Head    ${HEAD}

[FILTER]
    Name    lua
    Match   kube.*

[OUTPUT]
    Name  es
    Match *
"""
PARSERS = """\
[PARSER]
    Name        app
    Format      regex
    Regex       ^(?<${LEVEL}>[A-Z]+) (?<message>.*)$
"""


def classic(filters: str, output: str) -> str:
    head = CLASSIC.split("[FILTER]")[0]
    return head + filters + "\n[OUTPUT]\n" + output


PIPELINE_FILTERS = """\
[FILTER]
    Name    grep
    Match   kube.*
    Exclude log ^DEBUG

[FILTER]
    Name    modify
    Match   kube.*
    Rename  stream source.stream
    Add     cluster labkit
    Remove  _p

[FILTER]
    Name           record_modifier
    Match          kube.*
    Record         node ${NODE_NAME}
    Remove_key     time
"""
ES_OUTPUT = """\
    Name                es
    Match               kube.*
    Host                127.0.0.1
    Port                ${ES_PORT}
    HTTP_User           elastic
    HTTP_Passwd         ${ES_PASSWORD}
    Logstash_Format     On
    Logstash_Prefix     node-logs
    Replace_Dots        On
    Suppress_Type_Name  On
    Generate_ID         ${GENERATE_ID}
    Retry_Limit         ${RETRIES}
"""
YAML = """\
service:
  flush: 0.5
  http_server: on
  http_listen: 127.0.0.1
  http_port: ${PORT}
  health_check: on
  scheduler.base: 1
  scheduler.cap: 1
env:
  NODE: ${NODE_NAME}
pipeline:
  inputs:
    - name: tail
      tag: kube.*
      path: /var/log/containers/*.log
      multiline.parser: docker, cri
      db: /var/log/flb_kube.db
      mem_buf_limit: 5MB
      skip_long_lines: on
      refresh_interval: 1
      read_from_head: ${HEAD}
  filters:
    - name: grep
      match: kube.*
      exclude: log ^DEBUG
    - name: modify
      match: kube.*
      rename: stream source.stream
      add: cluster labkit
      remove: _p
    - name: record_modifier
      match: kube.*
      record: node ${NODE}
      remove_key: time
  outputs:
    - name: es
      match: kube.*
      host: 127.0.0.1
      port: ${ES_PORT}
      http_user: elastic
      http_passwd: ${ES_PASSWORD}
      logstash_format: on
      logstash_prefix: node-logs
      replace_dots: on
      suppress_type_name: on
      generate_id: ${GENERATE_ID}
      retry_limit: ${RETRIES}
"""


@pytest.fixture
def bulk() -> Iterator[BulkServer]:
    server = BulkServer().start()
    yield server
    server.stop()


def env_for(bulk: BulkServer, **extra: str) -> dict[str, str]:
    return {"PORT": str(free_port()), "ES_PORT": str(bulk.port), "ES_PASSWORD": bulk.password, "HEAD": "on",
            "NODE_NAME": "agent-1", "GENERATE_ID": "off", "RETRIES": "3", **extra}


def until(what: str, check: Any, timeout: float = 30) -> Any:
    return wait_until(what, check, timeout, every=0.1)


def container_log(node_dir: Path, pod: str = "web", max_size: int = 10 * 1024 * 1024) -> CriLog:
    """A container's log as the kubelet lays it out, with its containers/ link."""
    path = node_dir / "pods" / f"shop_{pod}_uid-1" / "app" / "0.log"
    log = CriLog(path, max_size=max_size, max_line=64)
    link = node_dir / "containers" / f"{pod}_shop_app-{HEX}.log"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(path)
    return log


def write_configs(tmp: Path) -> tuple[Path, Path]:
    (tmp / "parsers.conf").write_text(PARSERS)
    c = tmp / "fluent-bit.conf"
    c.write_text(classic(PIPELINE_FILTERS, ES_OUTPUT))
    y = tmp / "fluent-bit.yaml"
    y.write_text(YAML)
    return c, y


def _folded(props: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: [v.lower() for v in vs] for k, vs in props.items()}  # On/on: Fluent Bit's booleans ignore case


# -- configuration ----------------------------------------------------------------------------------------------
def test_both_formats_read_to_the_same_pipeline(tmp_path: Path) -> None:
    c, y = write_configs(tmp_path)
    env = {"PORT": "2020", "ES_PORT": "9200", "ES_PASSWORD": "pw", "HEAD": "on", "NODE_NAME": "agent-1",
           "GENERATE_ID": "on", "RETRIES": "2"}
    a, b = load(c, env), load(y, env)
    for x, z in ((a.inputs, b.inputs), (a.filters, b.filters), (a.outputs, b.outputs)):
        assert [_folded(s.props) for s in x] == [_folded(s.props) for s in z]
    assert a.service.get("http_port") == b.service.get("http_port") == "2020"
    assert a.parsers[0].name == "app" and "(?<level>" in a.parsers[0].get("regex")  # @SET, in the parsers file
    assert a.filters[2].get("record") == "node agent-1" and a.outputs[0].get("http_passwd") == "pw"


def test_an_unsupported_key_or_plugin_is_an_error_naming_it(tmp_path: Path, bulk: BulkServer) -> None:
    c, y = write_configs(tmp_path)
    c.write_text(c.read_text().replace("Refresh_Interval  1", "Refresh_Intervall 1"))
    with pytest.raises(ConfigError, match="unknown configuration property 'refresh_intervall'"):
        load(c, env_for(bulk))
    y.write_text(y.read_text().replace("retry_limit:", "aws_auth: on\n      retry_limit:"))
    with pytest.raises(ConfigError, match="'aws_auth'"):
        load(y, env_for(bulk))
    c.write_text(CLASSIC)  # a lua filter: a plugin the simulator does not have
    with pytest.raises(ConfigError, match="filter plugin 'lua' is not supported by the labkit simulator"):
        load(c, env_for(bulk))
    proc = subprocess.run([sys.executable, "-m", "labkit.logging.fluentbit", "-c", str(c), "--node", "n",
                           "--node-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env_for(bulk)})
    assert proc.returncode == 1 and "filter plugin 'lua'" in proc.stderr


# -- shipping ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["classic", "yaml"])
def test_records_are_joined_filtered_and_shipped(tmp_path: Path, bulk: BulkServer, fmt: str) -> None:
    c, y = write_configs(tmp_path)
    node = tmp_path / "node"
    log = container_log(node)
    log.write("stdout", b'INFO {"msg": "first"}\n')
    log.write("stdout", b"DEBUG noisy\n")
    log.write("stderr", b"E" * 150 + b"\n")  # three records: P, P, F (64-byte lines here)
    collector = Running(c if fmt == "classic" else y, node, env_for(bulk, GENERATE_ID="on")).start()
    try:
        until("two documents", lambda: len(bulk.docs) == 2)
        log.write("stdout", b"WARN late\n")
        until("the late line", lambda: len(bulk.docs) == 3)
        assert collector.get("/api/v1/health") == (200, "ok")
        m = collector.metrics()
        status, prom = collector.get("/api/v1/metrics/prometheus")
    finally:
        collector.stop()
        log.close()
    docs = {d["log"]: (i, d) for i, d in bulk.docs.items()}
    assert set(docs) == {'INFO {"msg": "first"}', "E" * 150, "WARN late"}
    (index, doc_id), doc = docs["E" * 150]
    today = dt.datetime.now(dt.UTC).strftime("%Y.%m.%d")
    assert index == f"node-logs-{today}" and len(doc_id) == 36  # generate_id: a UUID-shaped hash
    assert doc["source_stream"] == "stderr"  # renamed to source.stream, then replace_dots
    assert doc["cluster"] == "labkit" and doc["node"] == "agent-1" and "_p" not in doc and "time" not in doc
    assert doc["@timestamp"].startswith(dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT")) and \
        doc["@timestamp"].endswith("Z") and len(doc["@timestamp"]) == 24
    assert m["input"]["tail.0"]["records"] == 4 and m["filter"]["grep.0"]["drop_records"] == 1
    assert m["output"]["es.0"]["proc_records"] == 3 and m["output"]["es.0"]["errors"] == 0
    assert status == 200 and 'fluentbit_input_records_total{name="tail.0"} 4' in prom
    assert 'fluentbit_output_proc_records_total{name="es.0"} 3' in prom
    assert 'fluentbit_output_retries_total{name="es.0"} 0' in prom


def test_a_restart_neither_loses_nor_repeats_lines(tmp_path: Path, bulk: BulkServer) -> None:
    c, _ = write_configs(tmp_path)
    node = tmp_path / "node"
    log = container_log(node, max_size=120_000)  # ~2,200 lines a file: rotated twice, while the collector runs
    env = env_for(bulk)
    n = 0

    def write(count: int, pace: bool) -> None:
        nonlocal n
        for _ in range(count // 100):
            for _ in range(100):
                log.write("stdout", f"INFO line {n}\n".encode())
                n += 1
            if pace:  # a container writing ~2,000 lines/s, not all at once
                time.sleep(0.05)

    collector = Running(c, node, env).start()
    until("the file followed", lambda: collector.metrics()["input"]["tail.0"]["files_opened"] == 1)
    write(3000, pace=True)
    collector.stop()
    write(500, pace=False)  # while no collector runs
    collector = Running(c, node, env).start()
    write(1500, pace=True)
    try:
        until("every line", lambda: len(bulk.docs) >= n, timeout=60)
        time.sleep(1.5)  # anything repeated would arrive by now
    finally:
        collector.stop()
        log.close()
    lines = sorted(int(d["log"].split()[-1]) for d in bulk.sources())
    assert lines == list(range(n)), f"{len(lines)} documents for {n} lines"
    assert len(list(node.glob("pods/*/app/0.log.*"))) == 2, "the log did not rotate twice"


def test_a_refused_bulk_is_retried_and_item_errors_are_counted(tmp_path: Path, bulk: BulkServer) -> None:
    c, _ = write_configs(tmp_path)
    node = tmp_path / "node"
    log = container_log(node)
    bulk.refuse_requests, bulk.refuse_items = 2, 1
    for i in range(5):
        log.write("stdout", f"INFO n{i}\n".encode())
    collector = Running(c, node, env_for(bulk, GENERATE_ID="on")).start()
    try:
        until("five documents", lambda: len(bulk.docs) == 5)
        until("the counters", lambda: collector.metrics()["output"]["es.0"]["proc_records"] == 5)
        m = collector.metrics()["output"]["es.0"]
        assert m["retries"] == 3 and m["retried_records"] == 5 + 5 + 1 and m["errors"] == 2
        assert m["retries_failed"] == 0 and m["dropped_records"] == 0
    finally:
        collector.stop()
        log.close()


def test_retries_end_at_the_limit_and_type_names_are_refused_by_es8(tmp_path: Path, bulk: BulkServer) -> None:
    c, _ = write_configs(tmp_path)
    c.write_text(c.read_text().replace("    Suppress_Type_Name  On\n", ""))
    node = tmp_path / "node"
    log = container_log(node)
    log.write("stdout", b"INFO typed\n")
    collector = Running(c, node, env_for(bulk, RETRIES="1")).start()
    try:
        until("the give-up", lambda: collector.metrics()["output"]["es.0"]["retries_failed"] == 1)
        m = collector.metrics()["output"]["es.0"]
        assert m["errors"] == 2 and m["retries"] == 1 and m["dropped_records"] == 1 and not bulk.docs
    finally:
        collector.stop()
        log.close()


def test_in_process_collector_with_docker_files_and_a_regex_multiline_parser(tmp_path: Path,
                                                                             bulk: BulkServer) -> None:
    """``Collector`` on the caller's event loop (as the logging component runs it): Docker's JSON files (a line
    split over two records joined) and a ``type regex`` multiline parser folding a traceback into one record."""
    node = tmp_path / "node"
    (node / "docker").mkdir(parents=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    (node / "docker" / "app.log").write_text(
        json.dumps({"log": "part one, ", "stream": "stdout", "time": now}) + "\n"
        + json.dumps({"log": "part two\n", "stream": "stdout", "time": now}) + "\n")
    (node / "app.txt").write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n"
                                  "next event\n")
    cfg = tmp_path / "fb.yaml"
    port = free_port()
    cfg.write_text(f"""\
service:
  flush: 0.2
  http_server: on
  http_port: {port}
multiline_parsers:
  - name: traceback
    type: regex
    flush_timeout: 500
    rules:
      - state: start_state
        regex: '/^Traceback/'
        next_state: body
      - state: body
        regex: '/^(  |[A-Za-z]+Error)/'
        next_state: body
pipeline:
  inputs:
    - name: tail
      tag: docker.*
      path: /var/log/docker/*.log
      multiline.parser: docker
      read_from_head: on
    - name: tail
      tag: text
      alias: plain
      path: /var/log/app.txt
      multiline.parser: traceback
      read_from_head: on
  outputs:
    - name: opensearch
      match: '*'
      port: {bulk.port}
      http_user: elastic
      http_passwd: {bulk.password}
      index: app
      suppress_type_name: on
      include_tag_key: on
""")

    async def run() -> dict[str, Any]:
        collector = Collector(cfg, "agent-1", node, listen=("127.0.0.1", port))
        await collector.start()
        try:
            deadline = time.monotonic() + 20
            while len(bulk.docs) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return collector.metrics()
        finally:
            await collector.stop()

    metrics = asyncio.run(run())
    docs = {d["log"]: d for d in bulk.sources()}
    assert set(docs) == {"part one, part two\n", 'Traceback (most recent call last):\n  File "x.py", line 1\n'
                         "ValueError: bad", "next event"}
    assert docs["next event"]["_flb-key"] == "text" and docs["part one, part two\n"]["stream"] == "stdout"
    assert docs["part one, part two\n"]["_flb-key"] == "docker.var.log.docker.app.log"
    assert {i for i, _ in bulk.docs} == {"app"} and metrics["input"]["plain"]["records"] == 2
    assert metrics["output"]["opensearch.0"]["proc_records"] == 3


def test_shipped_to_the_labs_elasticsearch_and_searchable(tmp_path: Path) -> None:
    """End to end with the sim's Elasticsearch (``python -m labkit.logging``): the YAML pipeline's lines are found by
    ``elasticsearch-py`` in the day's logstash index, with @timestamp as the date the index is keyed on."""
    from elasticsearch import Elasticsearch

    es_proc = subprocess.Popen([sys.executable, "-m", "labkit.logging", "--home", str(tmp_path / "home"),
                                "--listen", f"127.0.0.1:{free_port()}"], stdout=subprocess.PIPE, text=True)
    try:
        assert es_proc.stdout is not None
        info = json.loads(es_proc.stdout.readline())
        port = info["url"].rsplit(":", 1)[1]
        _, y = write_configs(tmp_path)
        node = tmp_path / "node"
        log = container_log(node)
        for i in range(20):
            log.write("stdout" if i % 4 else "stderr", f"{'ERROR' if i % 4 == 0 else 'INFO'} request {i}\n".encode())
        env = {"PORT": str(free_port()), "ES_PORT": port, "ES_PASSWORD": info["password"], "HEAD": "on",
               "NODE_NAME": "agent-1", "GENERATE_ID": "on", "RETRIES": "3"}
        collector = Running(y, node, env).start()
        client = Elasticsearch(info["url"], basic_auth=(info["user"], info["password"]))
        try:
            def count() -> int:
                try:
                    return int(client.count(index="node-logs-*")["count"])
                except Exception:  # the index is not there yet
                    return 0

            until("20 searchable lines", lambda: count() == 20)
            errors = client.search(index="node-logs-*", query={"match_phrase": {"log": "ERROR request"}}, size=10,
                                   sort=[{"@timestamp": "asc"}])
        finally:
            collector.stop()
            log.close()
            client.close()
        hits = [h["_source"] for h in errors["hits"]["hits"]]
        assert [h["log"] for h in hits] == [f"ERROR request {i}" for i in (0, 4, 8, 12, 16)]
        assert {h["source_stream"] for h in hits} == {"stderr"} and all(h["node"] == "agent-1" for h in hits)
    finally:
        es_proc.terminate()
        es_proc.wait(timeout=30)
