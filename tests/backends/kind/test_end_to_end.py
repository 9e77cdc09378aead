"""``labkit up --backend kind`` through the contract harness, used as a learner would, then ``labkit down``.

One kind lab (a sim lab behind stand-in kind/docker/helm, the real HAProxy beside it, the sim's Harbor behind
the Harbor chart's NodePort) is shared
by the module; the tests run in file order and the last one takes the lab down.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from labkit import control
from labkit.core.checkout import Checkout
from labkit.core.files import read_json
from labkit.core.network import port_free

from .conftest import KindLab, labkit, normalized, readme_commands, variables

SHOP = "shop"


def _endpoint(lab: KindLab, product: str) -> dict[str, Any]:
    return read_json(lab.home.endpoints)["products"][product]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def runtime(lab: KindLab, command: str) -> str:
    """One command on HAProxy's Runtime API, at its published TCP port."""
    with socket.create_connection(("127.0.0.1", _port(_endpoint(lab, "haproxy")["runtime"])), timeout=5) as s:
        s.sendall(command.encode() + b"\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def server_status(lab: KindLab) -> dict[str, str]:
    """``backend/server`` → status (UP, DOWN, ...) from ``show stat``."""
    lines = runtime(lab, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {f"{r['pxname']}/{r['svname']}": r["status"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


def node_ready(lab: KindLab) -> dict[str, str]:
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
            for n in nodes}


def eventually(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout:.0f} s")
        time.sleep(0.5)


def http_get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def test_up_runs_the_readme_commands(kind_lab: KindLab) -> None:
    assert "lab ready" in kind_lab.up_output
    expected = readme_commands("kind-up-commands", variables(kind_lab.env), apps=Checkout.find().apps())
    assert normalized([r["argv"] for r in kind_lab.up]) == expected
    assert [r for r in kind_lab.up if r["exit"] != 0] == []
    assert [c[:3] for c in expected][:4] == [["docker", "info", "--format"], ["kind", "get", "clusters"],
                                             ["kind", "create", "cluster"], ["kind", "export", "kubeconfig"]]


def test_the_nodes_are_ready_through_haproxy(kind_lab: KindLab) -> None:
    server = kind_lab.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server == _endpoint(kind_lab, "kubernetes")["url"] == f"https://127.0.0.1:{variables(kind_lab.env)['API_PORT']}"
    assert node_ready(kind_lab) == dict.fromkeys(["agent-1", "agent-2", "server-1", "server-2", "server-3"], "True")
    status = server_status(kind_lab)
    assert {k: v for k, v in status.items() if k.startswith("kube-apiservers/")} == {
        f"kube-apiservers/server-{i}": "UP" for i in (1, 2, 3)}


def test_the_status_is_healthy(kind_lab: KindLab) -> None:
    status = json.loads(labkit(kind_lab.env, "status", "--json").stdout)
    assert status["backend"] == "kind" and status["healthy"]
    assert {r["name"] for r in status["products"]} == {"registry", "docker", "shop", "kubernetes", "haproxy"}


def test_the_docker_sdk_reaches_the_harness_daemon(kind_lab: KindLab, tmp_path: Path) -> None:
    """The kind backend's Docker endpoint is DOCKER_HOST (the harness's: the sim lab's Engine API behind the
    cluster); the docker SDK builds and runs there as on the laptop's Docker."""
    import docker

    url = _endpoint(kind_lab, "docker")["url"]
    assert url == kind_lab.env["DOCKER_HOST"]
    (tmp_path / "Dockerfile").write_text('FROM python:3.12-slim\nCMD ["python", "-c", "print(42)"]\n')
    client = docker.DockerClient(base_url=url)
    try:
        image, _ = client.images.build(path=str(tmp_path), tag="kind/answer:1")
        assert client.containers.run(image.id, remove=True) == b"42\n"
    finally:
        client.close()


def test_the_shop_pulls_from_the_harness_registry_and_answers_through_haproxy(kind_lab: KindLab) -> None:
    kind_lab.kubectl("apply", "-k", str(Checkout.find().root / "manifests" / "apps"))
    kind_lab.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", SHOP, "--timeout=120s",
                     timeout=150)
    pods = json.loads(kind_lab.kubectl("get", "pods", "-n", SHOP, "-o", "json").stdout)["items"]
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert images == {f"localhost:5001/shop/{app}:{Checkout.find().versions['shop']['tag']}"
                      for app in Checkout.find().apps()}
    # the nodes pulled them from Harbor (the chart's NodePort on a node's localhost, hosts.toml's mirror),
    # anonymously: project shop is public; Harbor records each artifact's last pull
    api = _endpoint(kind_lab, "registry")["api"]
    repos = json.loads(http_get(f"{api}/projects/shop/repositories?page_size=100")[1])
    assert {f"shop/{app}" for app in Checkout.find().apps()} <= {r["name"] for r in repos}
    artifacts = json.loads(http_get(f"{api}/projects/shop/repositories/catalog/artifacts")[1])
    assert artifacts and all(a["pull_time"] and not a["pull_time"].startswith("0001") for a in artifacts), artifacts
    project = json.loads(http_get(f"{api}/projects/shop")[1])
    assert project["metadata"]["public"] == "true"
    edge = _endpoint(kind_lab, "haproxy")["url"]
    status, body = eventually(lambda: http_get(edge + "/"), 30, "answering through HAProxy's edge port")
    assert status == 200 and json.loads(body)["service"] == "gateway"


def test_the_runtime_api_answers_on_its_published_port(kind_lab: KindLab) -> None:
    stat = runtime(kind_lab, "show stat")
    assert stat.startswith("# pxname,svname,")
    gateways = {"shop-gateway/agent-1": "UP", "shop-gateway/agent-2": "UP"}
    eventually(lambda: {k: v for k, v in server_status(kind_lab).items() if k in gateways} == gateways, 30,
               "the gateway UP on both agents in HAProxy")


def test_a_new_config_is_reloaded_by_usr2(kind_lab: KindLab) -> None:
    before = runtime(kind_lab, "show info")
    result = control.action(kind_lab.home, "haproxy", "configure", balance="leastconn")
    assert "leastconn" in str(result)
    calls = kind_lab.harness.records()
    assert [c["argv"] for c in calls if c["argv"][0] == "docker"] == [
        ["docker", "kill", "--signal", "USR2", f"{variables(kind_lab.env)['CLUSTER']}-haproxy"]]
    assert all(c["exit"] == 0 for c in calls)

    def new_worker() -> str | None:
        info = runtime(kind_lab, "show info")
        return info if _field(info, "Pid") != _field(before, "Pid") else None

    info = eventually(new_worker, 10, "a new HAProxy worker")
    assert int(_field(info, "Uptime_sec")) < int(_field(before, "Uptime_sec")) + 1
    translated = (kind_lab.harness.state.root / "containers" / f"{variables(kind_lab.env)['CLUSTER']}-haproxy"
                  / "haproxy.cfg").read_text()
    assert "balance leastconn" in translated
    assert http_get(_endpoint(kind_lab, "haproxy")["url"] + "/")[0] == 200
    control.action(kind_lab.home, "haproxy", "defaults")


def _field(info: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith(f"{name}:"))


def test_a_stopped_node_goes_not_ready_and_comes_back(kind_lab: KindLab) -> None:
    kind_lab.harness.records()
    labkit(kind_lab.env, "node", "stop", "agent-1")
    worker = f"{variables(kind_lab.env)['CLUSTER']}-worker"
    assert [r["argv"] for r in kind_lab.harness.records() if r["argv"][0] == "docker"] == [["docker", "stop", worker]]
    eventually(lambda: node_ready(kind_lab)["agent-1"] != "True", 30, "agent-1 NotReady")
    eventually(lambda: server_status(kind_lab)["shop-gateway/agent-1"].startswith("DOWN"), 15,
               "agent-1 DOWN in HAProxy")
    assert http_get(_endpoint(kind_lab, "haproxy")["url"] + "/")[0] == 200  # agent-2 still serves the shop
    labkit(kind_lab.env, "node", "start", "agent-1")
    eventually(lambda: node_ready(kind_lab)["agent-1"] == "True", 30, "agent-1 Ready again")


def test_a_stopped_api_server_is_taken_out_by_haproxy(kind_lab: KindLab) -> None:
    kind_lab.harness.records()
    control.action(kind_lab.home, "kubernetes", "server-stop", server="server-1")
    cluster = variables(kind_lab.env)["CLUSTER"]
    assert [r["argv"] for r in kind_lab.harness.records() if r["argv"][0] == "docker"] == [
        ["docker", "stop", f"{cluster}-control-plane"]]
    eventually(lambda: server_status(kind_lab)["kube-apiservers/server-1"].startswith("DOWN"), 20,
               "server-1 DOWN in HAProxy")
    assert len(node_ready(kind_lab)) == 5  # the API still answers through HAProxy, from server-2 and server-3
    control.action(kind_lab.home, "kubernetes", "server-start", server="server-1")
    eventually(lambda: server_status(kind_lab)["kube-apiservers/server-1"] == "UP", 20, "server-1 UP again")
    eventually(lambda: node_ready(kind_lab)["server-1"] == "True", 30, "server-1 Ready again")


@pytest.mark.parametrize(("argv", "message"), [
    (["--version", "9.9.9"], 'Error: chart "metrics-server" version "9.9.9" not found in '
                             "https://kubernetes-sigs.github.io/metrics-server/ repository"),
    (["--values", "{bad"], "Error: failed to parse"),
    (["--wait=maybe"], 'Error: invalid argument "maybe" for "--wait" flag: strconv.ParseBool: parsing "maybe": '
                       "invalid syntax"),
    (["--create-namespaces"], "Error: unknown flag: --create-namespaces"),
])
def test_helm_refuses_what_helm_refuses(kind_lab: KindLab, tmp_path: Path, argv: list[str], message: str) -> None:
    if "{bad" in argv:
        (tmp_path / "values.yaml").write_text("args: [--kubelet-insecure-tls\nresources: {}\n")
        argv = ["--values", str(tmp_path / "values.yaml")]
    res = subprocess.run(["helm", "upgrade", "--install", "metrics-server", "metrics-server", "--repo",
                          "https://kubernetes-sigs.github.io/metrics-server/", "--namespace", "kube-system",
                          "--kubeconfig", str(kind_lab.home.kubeconfig), *argv],
                         capture_output=True, text=True, env=kind_lab.env, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith(message), res.stderr


def test_helm_records_the_release_as_helm_does(kind_lab: KindLab) -> None:
    secret = json.loads(kind_lab.kubectl("get", "secret", "-n", "kube-system", "sh.helm.release.v1.metrics-server.v1",
                                         "-o", "json").stdout)
    assert secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"] | {"modifiedAt": ""} == {"name": "metrics-server", "owner": "helm",
                                                                 "status": "deployed", "version": "1", "modifiedAt": ""}
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
    assert release["chart"]["metadata"]["version"] == Checkout.find().versions["charts"]["metrics-server"]["version"]
    assert release["config"]["args"] == ["--kubelet-insecure-tls"]
    kind_lab.kubectl("top", "nodes")  # the chart's API: metrics.k8s.io


def test_a_second_up_reuses_the_cluster(kind_lab: KindLab) -> None:
    kind_lab.harness.records()
    labkit(kind_lab.env, "up", "--backend", "kind")
    expected = readme_commands("kind-up-commands", variables(kind_lab.env), apps=Checkout.find().apps())
    records = kind_lab.harness.records()
    assert normalized([r["argv"] for r in records]) == [c for c in expected if c[:2] != ["kind", "create"]]
    assert all(r["exit"] == 0 for r in records)


def test_down_runs_the_readme_commands_and_leaves_nothing_behind(kind_lab: KindLab) -> None:
    ports = variables(kind_lab.env)
    lab_ports = [int(p) for p in read_json(kind_lab.home.home / "kind" / "lab.json")["ports"].values()]
    state = kind_lab.harness.state
    daemons = [int((home / "daemon.lock").read_text()) for home in state.sim_homes()]
    assert len(daemons) == 1 and psutil.pid_exists(daemons[0])
    kind_lab.harness.records()
    assert "lab stopped" in labkit(kind_lab.env, "down").stderr
    records = kind_lab.harness.records()
    assert normalized([r["argv"] for r in records]) == readme_commands("kind-down-commands", ports, apps=[])
    assert all(r["exit"] == 0 for r in records)
    assert state.clusters() == [] and state.containers() == {} and state.sim_homes() == []
    eventually(lambda: not any(psutil.pid_exists(pid) for pid in daemons), 10, "the sim lab's daemon gone")
    assert [e for e in read_json(state.procs, []) if state.alive(e["name"])] == []
    assert all(port_free("127.0.0.1", p) for p in lab_ports)
    assert not kind_lab.home.endpoints.exists()
