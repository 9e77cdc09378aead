"""Container logs on the nodes as the kubelet and containerd keep them (CRI format, P/F records, rotation, the
``containers/`` symlinks), ``kubectl logs`` reading them (--timestamps, --since, --tail, --limit-bytes,
--previous, -f), and the chapter's Fluent Bit pipeline shipping a node's logs with the pods' metadata."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.core.paths import LabPaths
from labkit.kube.node.crilog import CriLog, LogFollower, Renderer, node_log_dir, read_log
from labkit.lab import Lab

from ..conftest import BIN, kubectl
from ..waiting import until
from .bulk import BulkServer
from .running import Running, free_port

IMAGE = "localhost:5001/test/web:1"
RECORD = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) (stdout|stderr) ([FP]) (.*)$")
NS = "crilogs"
MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "logging" / "fluent-bit.yaml"


# -- the file format, without a lab ---------------------------------------------------------------------------------
def test_records_split_long_lines_and_keep_streams_apart(tmp_path: Path) -> None:
    log = CriLog(tmp_path / "0.log", max_line=10)
    log.write("stdout", b"hello\nabcdefghijKLMNOPQRSTuv\npart")
    log.write("stderr", b"oops\n")
    log.write("stdout", b"ial\n\n")
    log.write("stdout", b"no newline at the end")
    log.close()
    records = [RECORD.match(line) for line in (tmp_path / "0.log").read_text().splitlines()]
    assert all(records), (tmp_path / "0.log").read_text()
    assert [(m[2], m[3], m[4]) for m in records if m] == [
        ("stdout", "F", "hello"), ("stdout", "P", "abcdefghij"), ("stdout", "P", "KLMNOPQRST"),
        ("stdout", "F", "uv"), ("stderr", "F", "oops"), ("stdout", "F", "partial"), ("stdout", "F", ""),
        ("stdout", "P", "no newline"), ("stdout", "P", " at the en"), ("stdout", "P", "d")]
    data, _ = read_log(tmp_path / "0.log", Renderer())
    assert data == b"hello\nabcdefghijKLMNOPQRSTuv\noops\npartial\n\nno newline at the end"
    stamped, _ = read_log(tmp_path / "0.log", Renderer(timestamps=True))
    lines = stamped.decode().split("\n")
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in lines if line)
    assert lines[1].endswith(" abcdefghijKLMNOPQRSTuv")  # one timestamp per line, not per record
    tail, _ = read_log(tmp_path / "0.log", Renderer(), tail=3)
    assert tail == b"no newline at the end"
    assert read_log(tmp_path / "0.log", Renderer(limit=8))[0] == b"hello\nab"
    assert read_log(tmp_path / "0.log", Renderer(since=time.time() + 60))[0] == b""


def test_rotation_by_size_keeps_max_files_and_a_follower_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    log = CriLog(path, max_size=2000, max_files=3)
    follower = LogFollower(path, 0)
    seen = b""
    for i in range(200):
        log.write("stdout", f"line {i:04d} {'x' * 40}\n".encode())
        if i % 7 == 0:
            seen += follower.read()
    seen += follower.read()
    log.close()
    rotated = sorted(p.name for p in tmp_path.iterdir() if p.name != "0.log")
    assert len(rotated) == 2, rotated  # 0.log and two rotated files: max_files 3
    assert rotated[0].endswith(".gz") and not rotated[1].endswith(".gz")
    assert all(re.fullmatch(r"0\.log\.\d{8}-\d{6}(-\d+)?(\.gz)?", n) for n in rotated)
    older = gzip.decompress((tmp_path / rotated[0]).read_bytes()).decode()
    assert RECORD.match(older.splitlines()[0])
    assert seen.decode().splitlines() == [f"line {i:04d} {'x' * 40}" for i in range(200)]  # none lost over rotations


# -- on a lab, with kubectl ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ns(runtime_lab: Lab) -> Iterator[str]:
    kubectl(runtime_lab, "create", "namespace", NS)
    yield NS
    kubectl(runtime_lab, "delete", "namespace", NS, "--wait=false")


def k(lab: Lab, *args: str, **kw: Any) -> str:
    return kubectl(lab, "-n", NS, *args, **kw).stdout


def run_pod(lab: Lab, name: str, script: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["python", "-c", script]}],
                     "terminationGracePeriodSeconds": 2, **spec}}
    k(lab, "apply", "-f", "-", input=yaml.safe_dump(body))
    return body


def pod_json(lab: Lab, name: str) -> dict[str, Any]:
    return json.loads(k(lab, "get", "pod", name, "-o", "json"))


def node_dir(lab: Lab, node: str) -> Path:
    return node_log_dir(LabPaths.resolve(Path(lab.env()["LABKIT_HOME"])).state / "kube", node)


SCRIPT = """
import sys, time
print("first line", flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(0.3)  # stdout and stderr are two pipes: their order is kept only between separate writes
print("L" * 40000, flush=True)
time.sleep(1.2)
print("late line", flush=True)
time.sleep(3600)
"""


def test_node_log_files_links_and_kubectl_logs(runtime_lab: Lab, ns: str) -> None:
    run_pod(runtime_lab, "writer", SCRIPT)
    # kubectl logs fails while the container is still ContainerCreating (under load that can take a while)
    until("the late line", lambda: "late line" in kubectl(runtime_lab, "-n", NS, "logs", "writer", check=False).stdout)
    pod = pod_json(runtime_lab, "writer")
    meta, node = pod["metadata"], pod["spec"]["nodeName"]
    root = node_dir(runtime_lab, node)
    log = root / "pods" / f"{NS}_writer_{meta['uid']}" / "main" / "0.log"
    lines = log.read_text().splitlines()
    records = [RECORD.match(line) for line in lines]
    assert all(records), lines[:3]
    kinds = [(m[2], m[3]) for m in records if m]
    assert ("stderr", "F") in kinds and kinds.count(("stdout", "P")) == 2  # 40000 bytes: 16 KiB, 16 KiB, rest
    links = list((root / "containers").glob(f"writer_{NS}_main-*.log"))
    assert len(links) == 1 and re.fullmatch(rf"writer_{NS}_main-[0-9a-f]{{64}}\.log", links[0].name)
    assert links[0].is_symlink() and links[0].resolve() == log.resolve()

    shown = k(runtime_lab, "logs", "writer")
    assert shown.splitlines() == ["first line", "to stderr", "L" * 40000, "late line"]
    stamped = k(runtime_lab, "logs", "writer", "--timestamps").splitlines()
    assert len(stamped) == 4 and all(re.match(r"\S+Z ", s) for s in stamped)
    first = stamped[0].split(" ", 1)[0]
    late = stamped[3].split(" ", 1)[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", first) and late > first
    assert k(runtime_lab, "logs", "writer", f"--since-time={late}").splitlines() == ["late line"]
    assert k(runtime_lab, "logs", "writer", "--since=1h").count("\n") == 4
    assert k(runtime_lab, "logs", "writer", "--tail=1") == "late line\n"
    assert k(runtime_lab, "logs", "writer", "--limit-bytes=5") == "first"
    bad = kubectl(runtime_lab, "-n", NS, "logs", "writer", "--previous", check=False)
    assert bad.returncode != 0 and 'previous terminated container "main" in pod "writer" not found' in bad.stderr


def test_previous_shows_the_instance_before_a_restart(runtime_lab: Lab, ns: str) -> None:
    script = ("import os, sys, time\n"
              "n = len(os.listdir('/tmp')) if False else int(time.time())\n"
              "print(f'run at {n}', flush=True)\n"
              "print('crashing', file=sys.stderr, flush=True)\n"
              "sys.exit(3)\n")
    run_pod(runtime_lab, "crasher", script)
    until("a restart", lambda: (pod_json(runtime_lab, "crasher")["status"].get("containerStatuses") or [{}])[0]
          .get("restartCount", 0) >= 1)
    previous = k(runtime_lab, "logs", "crasher", "--previous")
    assert previous.startswith("run at ") and previous.endswith("crashing\n")
    pod = pod_json(runtime_lab, "crasher")
    root = node_dir(runtime_lab, pod["spec"]["nodeName"])
    folder = root / "pods" / f"{NS}_crasher_{pod['metadata']['uid']}" / "main"
    until("two instances' files", lambda: {"0.log", "1.log"} <= {p.name for p in folder.iterdir()})
    links = list((root / "containers").glob(f"crasher_{NS}_main-*.log"))
    assert 1 <= len(links) <= 2 and len({link.resolve() for link in links}) == len(links)


def test_follow_streams_new_lines_and_ends_with_the_container(runtime_lab: Lab, ns: str) -> None:
    run_pod(runtime_lab, "ticker", "import time\nfor i in range(6):\n    print(f'tick {i}', flush=True)\n"
                                    "    time.sleep(0.5)\n", restartPolicy="Never")
    until("running", lambda: pod_json(runtime_lab, "ticker")["status"].get("phase") in ("Running", "Succeeded"))
    done = subprocess.run([str(BIN / "kubectl"), "-n", NS, "logs", "-f", "ticker"], capture_output=True, text=True,
                          env=runtime_lab.env(), timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines() == [f"tick {i}" for i in range(6)], done


# -- the chapter's pipeline over a node of the lab ------------------------------------------------------------------
def test_the_pipeline_ships_a_nodes_logs_with_pod_metadata(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    """manifests/logging/fluent-bit.yaml, as the collector of agent-1 runs it: JSON logs merged, the pod's labels
    and ids from the API server (with the kubeconfig's token), an excluded pod's lines not shipped."""
    bulk = BulkServer().start()
    env = {"PORT": str(free_port()), "ES_HOST": "127.0.0.1", "ES_PORT": str(bulk.port), "ES_PASSWORD": bulk.password}
    on_agent_1 = {"nodeSelector": {"kubernetes.io/hostname": "agent-1"}}
    line = 'import json, time\nprint(json.dumps({"level": "error", "service": "cart", "msg": "%s"}), flush=True)\n' \
           "time.sleep(3600)\n"
    run_pod(runtime_lab, "shipped", line % "payment failed", **on_agent_1)
    excluded = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "hidden", "annotations": {"fluentbit.io/exclude": "true"}},
                "spec": {"containers": [{"name": "main", "image": IMAGE,
                                         "command": ["python", "-c", line % "not for the index"]}],
                         "terminationGracePeriodSeconds": 2, **on_agent_1}}
    k(runtime_lab, "apply", "-f", "-", input=yaml.safe_dump(excluded))
    parsed = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "plain", "annotations": {"fluentbit.io/parser": "plain"}},
              "spec": {"containers": [{"name": "main", "image": IMAGE, "command": [
                  "python", "-c", "import time\nprint('WARN disk almost full', flush=True)\ntime.sleep(3600)"]}],
                       "terminationGracePeriodSeconds": 2, **on_agent_1}}
    k(runtime_lab, "apply", "-f", "-", input=yaml.safe_dump(parsed))
    for name, text in (("shipped", "msg"), ("hidden", "msg"), ("plain", "WARN")):
        until(f"{name} logs", lambda n=name, t=text: t in k(runtime_lab, "logs", n))
    config = tmp_path / "fluent-bit.yaml"  # the chapter's file, and a parser a pod's annotation names
    # the lab runs the same pipeline on agent-1 already: this second collector keeps its offsets in a db of its own
    config.write_text("parsers:\n  - name: plain\n    format: regex\n    regex: '^(?<severity>[A-Z]+) (?<text>.*)$'\n"
                      + MANIFEST.read_text().replace("db: /var/log/flb_kube.db", "db: /var/log/flb_kube-test.db"))
    collector = Running(config, node_dir(runtime_lab, "agent-1"), env, "agent-1",
                        runtime_lab.env()["KUBECONFIG"]).start()
    try:
        found = until("the shipped line", lambda: [d for d in bulk.sources()
                                                   if d.get("msg") == "payment failed"])
        plain = until("the parsed line", lambda: [d for d in bulk.sources() if d.get("severity") == "WARN"])
        time.sleep(1.5)
        metrics = collector.metrics()
    finally:
        collector.stop()
        bulk.stop()
    doc = found[0]
    pod = pod_json(runtime_lab, "shipped")
    assert doc["level"] == "error" and doc["service"] == "cart" and "log" not in doc  # merged, keep_log off
    kube = doc["kubernetes"]
    assert kube["namespace_name"] == NS and kube["pod_name"] == "shipped" and kube["container_name"] == "main"
    assert kube["pod_id"] == pod["metadata"]["uid"] and kube["host"] == "agent-1"
    assert re.fullmatch(r"[0-9a-f]{64}", kube["docker_id"]) and kube["container_image"] == IMAGE
    assert doc["stream"] == "stdout" and doc["@timestamp"].endswith("Z")
    assert not [d for d in bulk.sources() if d.get("msg") == "not for the index"]
    assert plain[0]["text"] == "disk almost full" and plain[0]["kubernetes"]["pod_name"] == "plain"
    assert metrics["filter"]["kubernetes.0"]["drop_records"] >= 1
