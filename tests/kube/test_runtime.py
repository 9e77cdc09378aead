"""Objects come alive: controllers, the scheduler, nodes and the process kubelet, driven with real kubectl."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from labkit.lab import Lab

from ..conftest import DEPLOY, kubectl
from .conftest import k


def pods(lab: Lab, ns: str, selector: str) -> list[dict]:
    return json.loads(k(lab, "-n", ns, "get", "pods", "-l", selector, "-o", "json"))["items"]


def ready_addresses(lab: Lab, ns: str, svc: str) -> list[str]:
    ep = json.loads(k(lab, "-n", ns, "get", "endpoints", svc, "-o", "json"))
    return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]


def test_deployment_becomes_ready_and_pods_answer(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=DEPLOY)
    out = k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in out
    running = pods(runtime_lab, ns, "app=web")
    assert len(running) == 3 and all(p["status"]["phase"] == "Running" for p in running)
    ips = {p["status"]["podIP"] for p in running}
    assert len(ips) == 3 and all(ip.startswith("127.") for ip in ips)
    assert {p["spec"]["nodeName"] for p in running} == {"agent-1", "agent-2"}  # servers are tainted
    assert sorted(ready_addresses(runtime_lab, ns, "web")) == sorted(ips)
    pod = running[0]
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/hello", timeout=5) as r:
        assert r.headers["X-Pod-Name"] == pod["metadata"]["name"]
    logs = k(runtime_lab, "-n", ns, "logs", pod["metadata"]["name"], "--tail=50")
    assert '"msg": "starting"' in logs and '"path": "/hello"' in logs
    described = k(runtime_lab, "-n", ns, "describe", "pod", pod["metadata"]["name"])
    for reason in ("Scheduled", "Pulling", "Pulled", "Created", "Started"):
        assert reason in described
    top = k(runtime_lab, "-n", ns, "top", "pods").strip().split("\n")
    assert top[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and len(top) == 4
    assert all(int(line.split()[2].removesuffix("Mi")) > 1 for line in top[1:])  # a Python process: MiBs
    nodes = k(runtime_lab, "top", "nodes").strip().split("\n")
    assert nodes[0].split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"] and len(nodes) == 6


def test_deleted_pod_is_replaced(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=DEPLOY)
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    victim = pods(runtime_lab, ns, "app=web")[0]["metadata"]["name"]
    k(runtime_lab, "-n", ns, "delete", "pod", victim)
    kubectl(runtime_lab, "-n", ns, "wait", "deploy/web", "--for=jsonpath={.status.readyReplicas}=3",
            "--timeout=30s")
    names = [p["metadata"]["name"] for p in pods(runtime_lab, ns, "app=web")]
    assert victim not in names and len(names) == 3


def test_rolling_update_keeps_availability_and_undo_restores(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=DEPLOY)
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    lowest, errors, requests, stop = [3], [0], [0], threading.Event()

    def load() -> None:  # requests to the ready endpoints, as a Service would send them
        while not stop.is_set():
            addrs = ready_addresses(runtime_lab, ns, "web")
            lowest[0] = min(lowest[0], len(addrs))
            for ip in addrs:
                requests[0] += 1
                try:
                    urllib.request.urlopen(f"http://{ip}:8080/", timeout=2).read()
                except OSError:
                    errors[0] += 1

    t = threading.Thread(target=load)
    t.start()
    try:
        k(runtime_lab, "-n", ns, "set", "image", "deploy/web", "web=localhost:5001/test/web:2")
        k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=90s")
    finally:
        stop.set()
        t.join()
    assert lowest[0] >= 3, "maxUnavailable 25% of 3 is 0: never fewer than 3 ready"
    assert requests[0] > 20 and errors[0] / requests[0] <= 0.05, (errors, requests)
    history = k(runtime_lab, "-n", ns, "rollout", "history", "deploy/web")
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"]
    k(runtime_lab, "-n", ns, "rollout", "undo", "deploy/web")
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=90s")
    image = k(runtime_lab, "-n", ns, "get", "deploy/web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image == "localhost:5001/test/web:1"
    versions = {json.loads(urllib.request.urlopen(f"http://{p['status']['podIP']}:8080/", timeout=5).read())["version"]
                for p in pods(runtime_lab, ns, "app=web") if not p["metadata"].get("deletionTimestamp")}
    assert versions == {"1"}


def test_bad_image_and_crashing_container(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "create", "deployment", "bad", "--image=localhost:5001/test/missing:1")
    k(runtime_lab, "-n", ns, "create", "deployment", "crash", "--image=localhost:5001/test/web:1")
    k(runtime_lab, "-n", ns, "set", "env", "deploy/crash", "CRASH=1")
    deadline = time.monotonic() + 30
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        table = k(runtime_lab, "-n", ns, "get", "pods", "--no-headers")
        status = {line.split()[0].rsplit("-", 2)[0]: line.split()[2] for line in table.strip().split("\n") if line}
        if status.get("bad") == "ImagePullBackOff" and status.get("crash") == "CrashLoopBackOff":
            break
        time.sleep(0.5)
    assert status.get("bad") == "ImagePullBackOff" and status.get("crash") == "CrashLoopBackOff", status
    crash = next(p for p in pods(runtime_lab, ns, "app=crash") if p["status"].get("containerStatuses")
                 and p["status"]["containerStatuses"][0]["restartCount"] > 0)
    previous = k(runtime_lab, "-n", ns, "logs", crash["metadata"]["name"], "--previous")
    assert "crashing as asked" in previous
    events = k(runtime_lab, "-n", ns, "get", "events")
    assert "BackOff" in events and "Failed" in events
    bad = pods(runtime_lab, ns, "app=bad")[0]["metadata"]["name"]
    assert "test/missing:1" in k(runtime_lab, "-n", ns, "describe", "pod", bad)


def test_stopped_node_moves_its_pods(runtime_lab: Lab, ns: str) -> None:
    """agent-1 stops: NotReady after 8 s, its pods evicted after the 20 s toleration, replaced on agent-2."""
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=DEPLOY)
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    runtime_lab.kubernetes.node_stop("agent-1")
    try:
        start = time.monotonic()
        kubectl(runtime_lab, "wait", "node/agent-1", "--for=condition=Ready=Unknown", "--timeout=30s")
        not_ready = time.monotonic() - start
        deadline = start + 60
        while time.monotonic() < deadline:
            live = [p for p in pods(runtime_lab, ns, "app=web") if not p["metadata"].get("deletionTimestamp")
                    and p["status"].get("phase") == "Running"]
            if len(live) == 3 and all(p["spec"]["nodeName"] == "agent-2" for p in live):
                break
            time.sleep(0.5)
        moved = time.monotonic() - start
        assert len(live) == 3 and {p["spec"]["nodeName"] for p in live} == {"agent-2"}
        assert not_ready < 15 and moved < 45, (not_ready, moved)
        nodes = k(runtime_lab, "get", "nodes", "--no-headers")
        assert any(line.split()[:2] == ["agent-1", "NotReady"] for line in nodes.split("\n"))
    finally:
        runtime_lab.kubernetes.node_start("agent-1")
    kubectl(runtime_lab, "wait", "node/agent-1", "--for=condition=Ready", "--timeout=30s")


HEADLESS = """
apiVersion: v1
kind: Service
metadata: {name: web-pods}
spec:
  clusterIP: None
  selector: {app: web}
"""


def test_services_by_name_and_node_ports(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=DEPLOY)
    k(runtime_lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=HEADLESS)
    script = ("import json, urllib.request\n"
              f"for url in ('http://web/a', 'http://web.{ns}.svc.cluster.local:80/b', 'http://web-pods:8080/c'):\n"
              "    print(json.loads(urllib.request.urlopen(url, timeout=5).read())['path'])\n")
    k(runtime_lab, "-n", ns, "run", "client", "--image=localhost:5001/test/web:1", "--restart=Never",
      "--command", "--", "python", "-c", script)
    done = kubectl(runtime_lab, "-n", ns, "wait", "pod/client", "--for=jsonpath={.status.phase}=Succeeded",
                   "--timeout=30s", check=False)
    logs = k(runtime_lab, "-n", ns, "logs", "client")
    assert done.returncode == 0 and logs.split() == ["/a", "/b", "/c"], logs
    k(runtime_lab, "-n", ns, "expose", "deploy/web", "--name=web-np", "--type=NodePort", "--port=80",
      "--target-port=8080")
    svc = json.loads(k(runtime_lab, "-n", ns, "get", "svc", "web-np", "-o", "json"))
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    node = json.loads(k(runtime_lab, "get", "node", "agent-2", "-o", "json"))
    ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    for _ in range(40):  # node ports open within a second of the Service
        try:
            seen = {urllib.request.urlopen(f"http://{ip}:{node_port}/", timeout=2).headers["X-Pod-Name"]
                    for _ in range(9)}
            break
        except OSError:
            time.sleep(0.25)
    assert len(seen) == 3  # round robin over the three pods


def test_job_runs_to_completion_and_daemonset_covers_the_agents(runtime_lab: Lab, ns: str) -> None:
    k(runtime_lab, "-n", ns, "create", "job", "once", "--image=localhost:5001/test/web:1", "--",
      "python", "-c", "print('job done')")
    kubectl(runtime_lab, "-n", ns, "wait", "job/once", "--for=condition=Complete", "--timeout=30s")
    assert "job done" in k(runtime_lab, "-n", ns, "logs", "job/once")
    table = k(runtime_lab, "-n", ns, "get", "job", "once", "--no-headers").split()
    assert table[:3] == ["once", "Complete", "1/1"]
    ds = DEPLOY.split("---")[0].replace("kind: Deployment", "kind: DaemonSet").replace("  replicas: 3\n", "")
    k(runtime_lab, "-n", ns, "apply", "-f", "-", input=ds)
    kubectl(runtime_lab, "-n", ns, "wait", "ds/web", "--for=jsonpath={.status.numberReady}=2", "--timeout=30s")
    assert sorted(p["spec"]["nodeName"] for p in pods(runtime_lab, ns, "app=web")) == ["agent-1", "agent-2"]
