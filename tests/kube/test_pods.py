"""Pods as the kubelet runs them: init containers, sidecars, lifecycle hooks and grace periods, startup probes,
volumes (updated in place), the downward API, and service accounts — driven with the real kubectl."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from labkit.kube.apiserver.store import Store
from labkit.lab import Lab

from ..conftest import kubectl
from ..waiting import until
from .conftest import k

IMAGE = "localhost:5001/test/web:1"


def apply(lab: Lab, ns: str, *objs: dict[str, Any]) -> None:
    k(lab, "-n", ns, "apply", "-f", "-", input=yaml.safe_dump_all(objs))


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 5, **spec}}


def py(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A container of the test image running a Python script."""
    return {"name": name, "image": IMAGE, "command": ["python", "-c", script], **extra}


def get(lab: Lab, ns: str, name: str) -> dict[str, Any]:
    return json.loads(k(lab, "-n", ns, "get", "pod", name, "-o", "json"))


def status_column(lab: Lab, ns: str, name: str) -> tuple[str, str]:
    """READY and STATUS as ``kubectl get pod`` prints them."""
    line = k(lab, "-n", ns, "get", "pod", name, "--no-headers").split()
    return line[1], line[2]


def condition(p: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in p["status"]["conditions"] if c["type"] == kind)


def exec_out(lab: Lab, ns: str, name: str, *argv: str, container: str | None = None) -> str:
    extra = ["-c", container] if container else []
    return k(lab, "-n", ns, "exec", name, *extra, "--", *argv)


# -- init containers ----------------------------------------------------------------------------------------
def test_init_containers_run_in_order_before_the_app(runtime_lab: Lab, ns: str) -> None:
    shared = [{"name": "work", "mountPath": "/work"}]
    apply(runtime_lab, ns, pod("ordered", [py("app", "import time; print(open('/work/log').read(), flush=True); "
                                                   "time.sleep(600)", volumeMounts=shared)],
                               initContainers=[
                                   py("first", "import time; print('first ran', flush=True); time.sleep(3); "
                                               "open('/work/log', 'a').write('first;')", volumeMounts=shared),
                                   py("second", "open('/work/log', 'a').write('second;')", volumeMounts=shared)],
                               volumes=[{"name": "work", "emptyDir": {}}]))
    seen = until("Init:0/2", lambda: status_column(runtime_lab, ns, "ordered")[1] == "Init:0/2" or None)
    assert seen
    p = get(runtime_lab, ns, "ordered")
    assert p["status"]["phase"] == "Pending"
    init = condition(p, "Initialized")
    assert init["status"] == "False" and init["reason"] == "ContainersNotInitialized"
    assert init["message"] == "containers with incomplete status: [first second]"
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    early = kubectl(runtime_lab, "-n", ns, "logs", "ordered", "-c", "second", check=False)
    assert 'container "second" in pod "ordered" is waiting to start: PodInitializing' in early.stderr
    until("Running", lambda: status_column(runtime_lab, ns, "ordered") == ("1/1", "Running"))
    p = get(runtime_lab, ns, "ordered")
    assert condition(p, "Initialized")["status"] == "True"
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2
    assert until("app log", lambda: "first;second;" in k(runtime_lab, "-n", ns, "logs", "ordered"))
    assert "first ran" in k(runtime_lab, "-n", ns, "logs", "ordered", "-c", "first")
    wrong = kubectl(runtime_lab, "-n", ns, "logs", "ordered", "-c", "nope", check=False)
    assert "container nope is not valid for pod ordered" in wrong.stderr


def test_logs_of_a_pod_with_several_containers_need_a_name(runtime_lab: Lab, ns: str) -> None:
    from kubernetes import client, config

    apply(runtime_lab, ns, pod("pair", [py("a", "print('from a')"), py("b", "print('from b')")],
                               initContainers=[py("setup", "print('from setup')")], restartPolicy="Never"))
    until("done", lambda: get(runtime_lab, ns, "pair")["status"]["phase"] == "Succeeded")
    api = client.CoreV1Api(config.new_client_from_config(runtime_lab.env()["KUBECONFIG"]))
    try:
        api.read_namespaced_pod_log("pair", ns)
        raise AssertionError("a log without a container name was served")
    except client.ApiException as err:
        assert err.status == 400
        assert json.loads(err.body)["message"] == ("a container name must be specified for pod pair, choose one of: "
                                                   "[a b] or one of the init containers: [setup]")
    assert api.read_namespaced_pod_log("pair", ns, container="setup") == "from setup\n"
    assert api.read_namespaced_pod_log("pair", ns, container="b") == "from b\n"


def test_failing_init_container_fails_the_pod_or_crash_loops(runtime_lab: Lab, ns: str) -> None:
    fail = py("setup", "import sys; print('no config', flush=True); sys.exit(2)")
    app = py("app", "import time; time.sleep(600)")
    apply(runtime_lab, ns, pod("never", [app], initContainers=[fail], restartPolicy="Never"),
          pod("always", [app], initContainers=[fail]))
    until("Init:Error", lambda: status_column(runtime_lab, ns, "never")[1] == "Init:Error")
    p = until("Failed", lambda: (q := get(runtime_lab, ns, "never"))["status"]["phase"] == "Failed" and q)
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    until("Init:CrashLoopBackOff", lambda: status_column(runtime_lab, ns, "always")[1] == "Init:CrashLoopBackOff")
    p = get(runtime_lab, ns, "always")
    assert p["status"]["phase"] == "Pending" and p["status"]["initContainerStatuses"][0]["restartCount"] >= 1
    assert "no config" in k(runtime_lab, "-n", ns, "logs", "always", "-c", "setup")


# -- sidecars -----------------------------------------------------------------------------------------------
SIDECAR = {"name": "proxy", "image": IMAGE, "restartPolicy": "Always", "env": [{"name": "PORT", "value": "9090"}],
           "startupProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1}}


def test_sidecar_starts_first_and_runs_beside_the_app(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, pod("with-sidecar", [{"name": "web", "image": IMAGE}], initContainers=[SIDECAR]))
    until("2/2 Running", lambda: status_column(runtime_lab, ns, "with-sidecar") == ("2/2", "Running"))
    p = get(runtime_lab, ns, "with-sidecar")
    side, app = p["status"]["initContainerStatuses"][0], p["status"]["containerStatuses"][0]
    assert side["started"] and side["ready"] and "running" in side["state"]
    assert side["state"]["running"]["startedAt"] <= app["state"]["running"]["startedAt"]
    ip = p["status"]["podIP"]
    out = exec_out(runtime_lab, ns, "with-sidecar", "python", "-c",
                   f"import urllib.request; print(urllib.request.urlopen('http://{ip}:9090/x').read().decode())")
    assert '"path": "/x"' in out
    # the sidecar exits: it is restarted, whatever the pod's restartPolicy
    os.kill(int(side["containerID"].removeprefix("labkit://")), signal.SIGKILL)
    until("sidecar restarted", lambda: get(runtime_lab, ns, "with-sidecar")["status"]["initContainerStatuses"][0]
          ["restartCount"] == 1)


def test_job_with_a_sidecar_completes(runtime_lab: Lab, ns: str) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
           "spec": {"backoffLimit": 0, "template": {"spec": {
               "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "initContainers": [SIDECAR],
               "containers": [py("main", "print('work done', flush=True)")]}}}}
    apply(runtime_lab, ns, job)
    k(runtime_lab, "-n", ns, "wait", "job/once", "--for=condition=Complete", "--timeout=60s")
    p = json.loads(k(runtime_lab, "-n", ns, "get", "pods", "-l", "job-name=once", "-o", "json"))["items"][0]
    assert p["status"]["phase"] == "Succeeded"
    side = until("sidecar stopped", lambda: "terminated" in (
        s := get(runtime_lab, ns, p["metadata"]["name"])["status"]["initContainerStatuses"][0])["state"] and s)
    assert side["name"] == "proxy"
    assert status_column(runtime_lab, ns, p["metadata"]["name"]) == ("0/2", "Completed")


# -- lifecycle ----------------------------------------------------------------------------------------------
def test_post_start_pre_stop_and_the_grace_period(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    host = tmp_path / "hooks"
    host.mkdir()
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, lambda *a: print('ignoring TERM', flush=True)); "
                "print('up', flush=True); time.sleep(600)")
    apply(runtime_lab, ns, pod("hooks", [py("app", stubborn, volumeMounts=[{"name": "out", "mountPath": "/out"}],
                                            lifecycle={
        "postStart": {"exec": {"command": ["python", "-c", "open('/out/post-start', 'w').write('ran')"]}},
        "preStop": {"exec": {"command": ["python", "-c", "open('/out/pre-stop', 'w').write('ran')"]}}})],
                               volumes=[{"name": "out", "hostPath": {"path": str(host), "type": "Directory"}}],
                               terminationGracePeriodSeconds=4))
    until("Running", lambda: status_column(runtime_lab, ns, "hooks") == ("1/1", "Running"))
    assert (host / "post-start").read_text() == "ran"
    began = time.monotonic()
    k(runtime_lab, "-n", ns, "delete", "pod", "hooks", "--wait=true", "--timeout=60s")
    took = time.monotonic() - began
    assert (host / "pre-stop").read_text() == "ran"
    assert 3.5 <= took < 15, took  # SIGTERM ignored: SIGKILL when the 4 s grace period ran out


RECORDER = """import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open("/out/order", "a").write(self.path + "\\n")
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer((os.environ["HOST"], 9090), H).serve_forever()
"""


def test_deletion_stops_app_containers_then_sidecars(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    out = tmp_path / "hooks"
    out.mkdir()
    mount = [{"name": "out", "mountPath": "/out"}]
    sidecar = py("recorder", RECORDER, restartPolicy="Always", volumeMounts=mount,
                 startupProbe={"tcpSocket": {"port": 9090}, "periodSeconds": 1},
                 lifecycle={"preStop": {"exec": {"command": [
                     "python", "-c", "open('/out/order', 'a').write('recorder pre-stop\\n')"]}}})
    app = py("app", "import time; time.sleep(600)", volumeMounts=mount,
             lifecycle={"preStop": {"httpGet": {"path": "/app-pre-stop", "port": 9090}}})
    apply(runtime_lab, ns, pod("ordered-stop", [app], initContainers=[sidecar],
                               volumes=[{"name": "out", "hostPath": {"path": str(out)}}]))
    until("2/2 Running", lambda: status_column(runtime_lab, ns, "ordered-stop") == ("2/2", "Running"))
    k(runtime_lab, "-n", ns, "delete", "pod", "ordered-stop", "--wait=true", "--timeout=60s")
    assert (out / "order").read_text() == "/app-pre-stop\nrecorder pre-stop\n"


def test_failed_post_start_hook_and_startup_probe_restart_the_container(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns,
          pod("bad-hook", [{"name": "web", "image": IMAGE, "lifecycle": {
              "postStart": {"httpGet": {"path": "/", "port": 1}}}}]),
          pod("slow-start", [{"name": "web", "image": IMAGE, "startupProbe": {
              "httpGet": {"path": "/", "port": 9999}, "periodSeconds": 1, "failureThreshold": 2},
              "livenessProbe": {"httpGet": {"path": "/", "port": 9999}, "periodSeconds": 1}}]))
    until("FailedPostStartHook", lambda: "FailedPostStartHook" in k(runtime_lab, "-n", ns, "get", "events"))
    until("restart", lambda: get(runtime_lab, ns, "bad-hook")["status"]["containerStatuses"][0]["restartCount"] >= 1)
    events = k(runtime_lab, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=slow-start")
    p = until("startup probe restart", lambda: (
        q := get(runtime_lab, ns, "slow-start"))["status"]["containerStatuses"][0]["restartCount"] >= 1 and q)
    events = k(runtime_lab, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=slow-start")
    assert "Startup probe failed" in events and "failed startup probe, will be restarted" in events
    assert "Liveness probe failed" not in events  # liveness waits for the startup probe
    assert p["status"]["containerStatuses"][0]["started"] is False


# -- volumes ------------------------------------------------------------------------------------------------
def read_in(lab: Lab, ns: str, name: str, script: str) -> Any:
    """What a Python script run in the pod's container prints (JSON), with the container's absolute paths."""
    return json.loads(exec_out(lab, ns, name, "python", "-c", "import json, os; " + script))


def test_configmap_secret_downward_projected_volumes_update_in_place(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns,
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}},
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"password": "s3cret"}})
    mounts = [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "items", "mountPath": "/etc/items"},
              {"name": "cfg", "mountPath": "/etc/single-a", "subPath": "a"},
              {"name": "sec", "mountPath": "/etc/sec", "readOnly": True}, {"name": "opt", "mountPath": "/etc/opt"},
              {"name": "info", "mountPath": "/etc/info"}, {"name": "proj", "mountPath": "/etc/proj"},
              {"name": "scratch", "mountPath": "/scratch"}]
    volumes = [
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "items", "configMap": {"name": "cfg", "defaultMode": 0o440,
                                        "items": [{"key": "a", "path": "sub/renamed", "mode": 0o600}, {"key": "b",
                                                                                                       "path": "b"}]}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {"name": "opt", "configMap": {"name": "not-there", "optional": True}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "proj", "projected": {"sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "from-cm"}]}},
            {"secret": {"name": "sec"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "scratch", "emptyDir": {"medium": "Memory"}}]
    p = pod("vols", [py("app", "import time; time.sleep(600)", volumeMounts=mounts,
                        resources={"limits": {"memory": "64Mi"}})], volumes=volumes)
    p["metadata"]["labels"] = {"app": "vols", "tier": "web"}
    apply(runtime_lab, ns, p)
    until("Running", lambda: status_column(runtime_lab, ns, "vols") == ("1/1", "Running"))
    seen = read_in(runtime_lab, ns, "vols", """
r = lambda p: open(p).read()
mode = lambda p: oct(os.stat(p).st_mode & 0o777)
print(json.dumps({"a": r("/etc/cfg/a"), "listing": sorted(os.listdir("/etc/cfg")),
  "renamed": r("/etc/items/sub/renamed"), "renamed_mode": mode("/etc/items/sub/renamed"),
  "b_mode": mode("/etc/items/b"), "single": r("/etc/single-a"),
  "password": r("/etc/sec/password"), "sec_mode": mode("/etc/sec/password"),
  "opt": [n for n in os.listdir("/etc/opt") if n[:2] != ".."],
  "labels": r("/etc/info/labels"), "name": r("/etc/info/name"), "mem": r("/etc/info/mem"),
  "proj": sorted(os.listdir("/etc/proj")), "from_cm": r("/etc/proj/from-cm"), "ns": r("/etc/proj/ns"),
  "scratch": os.path.realpath("/scratch")}))""")
    assert seen["a"] == "1" and seen["single"] == "1" and seen["password"] == "s3cret"
    stamped = [n for n in seen["listing"] if n.startswith("..20")]  # the AtomicWriter's timestamped folder
    assert len(stamped) == 1 and sorted(seen["listing"]) == sorted([*stamped, "..data", "a", "b"])
    assert (seen["renamed"], seen["renamed_mode"], seen["b_mode"]) == ("1", "0o600", "0o440")
    assert seen["sec_mode"] == "0o400" and seen["opt"] == []
    assert seen["labels"] == 'app="vols"\ntier="web"' and seen["name"] == "vols" and seen["mem"] == "64"
    assert [n for n in seen["proj"] if not n.startswith("..")] == ["from-cm", "ns", "password"]
    assert (seen["from_cm"], seen["ns"]) == ("2", ns)
    if Path("/dev/shm").is_dir():
        assert seen["scratch"].startswith("/dev/shm/"), seen["scratch"]
    kubelet_log = (Path(runtime_lab.env()["LABKIT_HOME"]) / "logs" / "kubelet.log").read_text()
    assert f"{ns}/vols app: readOnly mount /etc/sec recorded, not enforced by the labkit simulator" in kubelet_log
    k(runtime_lab, "-n", ns, "patch", "configmap", "cfg", "-p", '{"data": {"a": "10", "c": "3"}}')
    k(runtime_lab, "-n", ns, "label", "pod", "vols", "tier=db", "--overwrite")
    script = """print(json.dumps({"a": open("/etc/cfg/a").read(), "c": os.path.exists("/etc/cfg/c"),
  "single": open("/etc/single-a").read(), "labels": open("/etc/info/labels").read()}))"""

    def updated() -> dict[str, Any] | None:
        now = read_in(runtime_lab, ns, "vols", script)
        return now if now["a"] == "10" and "db" in now["labels"] else None

    after = until("the volumes follow their sources", updated)
    assert after["c"] is True and after["single"] == "1"  # a subPath mount never updates


def test_missing_sources_wait_in_container_creating(runtime_lab: Lab, ns: str, tmp_path: Path) -> None:
    apply(runtime_lab, ns,
          pod("needs-cm", [py("app", "import time; time.sleep(600)",
                              volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])],
              volumes=[{"name": "cfg", "configMap": {"name": "later"}}]),
          pod("needs-claim", [py("app", "import time; open('/data/hello', 'w').write('hi'); time.sleep(600)",
                                 volumeMounts=[{"name": "data", "mountPath": "/data"}])],
              volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
              nodeName="agent-1"))  # bound by hand: the scheduler would wait for the claim

    def mount_events() -> str:
        out = k(runtime_lab, "-n", ns, "get", "events", "--field-selector", "reason=FailedMount")
        return out if "needs-claim" in out and "needs-cm" in out else ""

    events = until("FailedMount", mount_events)
    assert 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found' in events
    assert 'MountVolume.SetUp failed for volume "data" : ' in events
    assert 'persistentvolumeclaim "data" not found' in events
    assert status_column(runtime_lab, ns, "needs-cm") == ("0/1", "ContainerCreating")
    assert condition(get(runtime_lab, ns, "needs-cm"), "PodReadyToStartContainers")["status"] == "False"
    apply(runtime_lab, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"k": "v"}})
    until("Running", lambda: status_column(runtime_lab, ns, "needs-cm") == ("1/1", "Running"))
    folder = tmp_path / "pv"
    folder.mkdir()
    apply(runtime_lab, ns, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-pv"[:60]},
                            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                     "storageClassName": "", "hostPath": {"path": str(folder)}}},
          {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": f"{ns}-pv"[:60],
                    "resources": {"requests": {"storage": "1Gi"}}}})
    until("Running", lambda: status_column(runtime_lab, ns, "needs-claim") == ("1/1", "Running"))
    until("the pod wrote to its claim", lambda: (folder / "hello").exists())
    assert (folder / "hello").read_text() == "hi"
    k(runtime_lab, "delete", "pv", f"{ns}-pv"[:60], "--wait=false")


# -- env ----------------------------------------------------------------------------------------------------
def test_downward_api_env_and_env_from(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                            "data": {"MODE": "fast", "LEVEL": "3"}})
    fields = {"NAME": "metadata.name", "NS": "metadata.namespace", "UID": "metadata.uid",
              "APP": "metadata.labels['app']", "NOTE": "metadata.annotations['note']", "NODE": "spec.nodeName",
              "SA": "spec.serviceAccountName", "IP": "status.podIP", "IPS": "status.podIPs",
              "HOST_IP": "status.hostIP", "HOST_IPS": "status.hostIPs"}
    resources = {"CPU_LIMIT": ("limits.cpu", None), "CPU_MILLI": ("requests.cpu", "1m"),
                 "MEM_MI": ("requests.memory", "1Mi"), "MEM_LIMIT_MI": ("limits.memory", "1Mi")}
    env = [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}} for n, f in fields.items()]
    env += [{"name": n, "valueFrom": {"resourceFieldRef": {"resource": r, **({"divisor": d} if d else {})}}}
            for n, (r, d) in resources.items()]
    p = pod("envs", [py("app", "import time; time.sleep(600)", env=env,
                        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                        resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "250m", "memory": "64Mi"}})],
            securityContext={"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000})
    p["metadata"].update(labels={"app": "envs"}, annotations={"note": "hi"})
    apply(runtime_lab, ns, p)
    until("Running", lambda: status_column(runtime_lab, ns, "envs") == ("1/1", "Running"))
    got = read_in(runtime_lab, ns, "envs", "print(json.dumps(dict(os.environ)))")
    live = get(runtime_lab, ns, "envs")
    assert {n: got[n] for n in fields} == {
        "NAME": "envs", "NS": ns, "UID": live["metadata"]["uid"], "APP": "envs", "NOTE": "hi",
        "NODE": live["spec"]["nodeName"], "SA": "default", "IP": live["status"]["podIP"],
        "IPS": live["status"]["podIP"], "HOST_IP": live["status"]["hostIP"], "HOST_IPS": live["status"]["hostIP"]}
    assert {n: got[n] for n in resources} == {"CPU_LIMIT": "1", "CPU_MILLI": "250", "MEM_MI": "64",
                                              "MEM_LIMIT_MI": "4096"}  # no memory limit: the node's allocatable
    assert (got["CFG_MODE"], got["CFG_LEVEL"]) == ("fast", "3")
    assert got["KUBERNETES_SERVICE_PORT"] == got["KUBERNETES_SERVICE_PORT_HTTPS"]
    assert got["KUBERNETES_PORT"] == f"tcp://{got['KUBERNETES_SERVICE_HOST']}:{got['KUBERNETES_SERVICE_PORT']}"
    assert live["spec"]["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000}
    described = k(runtime_lab, "-n", ns, "describe", "pod", "envs")
    assert "SecurityContextNotApplied" in described and "runAsUser=1000" in described


# -- service accounts ---------------------------------------------------------------------------------------
def test_service_account_admission_token_volume_and_controllers(runtime_lab: Lab, ns: str) -> None:
    sa = until("default ServiceAccount", lambda: json.loads(
        kubectl(runtime_lab, "-n", ns, "get", "sa", "default", "-o", "json", check=False).stdout or "null"))
    assert sa["metadata"]["name"] == "default"
    ca = json.loads(k(runtime_lab, "-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", "json"))
    cluster_ca = yaml.safe_load(Path(runtime_lab.env()["KUBECONFIG"]).read_text())["clusters"][0]["cluster"]
    import base64

    assert ca["data"]["ca.crt"] == base64.b64decode(cluster_ca["certificate-authority-data"]).decode()
    k(runtime_lab, "-n", ns, "create", "sa", "quiet")
    k(runtime_lab, "-n", ns, "patch", "sa", "quiet", "-p", '{"automountServiceAccountToken": false}')
    sleeper = py("app", "import time; time.sleep(600)")
    apply(runtime_lab, ns, pod("mounted", [sleeper], initContainers=[py("init", "pass")]),
          pod("quiet", [sleeper], serviceAccountName="quiet"),
          pod("opt-out", [sleeper], automountServiceAccountToken=False))
    p = get(runtime_lab, ns, "mounted")
    assert p["spec"]["serviceAccountName"] == p["spec"]["serviceAccount"] == "default"
    (vol,) = [v for v in p["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert vol["projected"]["sources"][1]["configMap"]["name"] == "kube-root-ca.crt"
    for c in p["spec"]["initContainers"] + p["spec"]["containers"]:
        assert {"name": vol["name"], "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"} in c["volumeMounts"]
    for name in ("quiet", "opt-out"):
        assert not any(v["name"].startswith("kube-api-access-") for v in get(runtime_lab, ns, name)["spec"].get(
            "volumes") or [])
    refused = kubectl(runtime_lab, "-n", ns, "run", "ghost", f"--image={IMAGE}", "--overrides",
                      '{"spec": {"serviceAccountName": "ghost"}}', check=False)
    assert (f'pods "ghost" is forbidden: error looking up service account {ns}/ghost: serviceaccount "ghost" '
            "not found") in refused.stderr
    until("Running", lambda: status_column(runtime_lab, ns, "mounted") == ("1/1", "Running"))
    claims = read_in(runtime_lab, ns, "mounted", """
import base64
d = "/var/run/secrets/kubernetes.io/serviceaccount/"
t = open(d + "token").read().split(".")[1]
c = json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
print(json.dumps({"claims": c, "ns": open(d + "namespace").read(), "ca": open(d + "ca.crt").read()}))""")
    assert claims["ns"] == ns and claims["ca"] == ca["data"]["ca.crt"]
    assert claims["claims"]["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["claims"]["kubernetes.io"]["pod"] == {"name": "mounted", "uid": p["metadata"]["uid"]}
    assert claims["claims"]["exp"] - claims["claims"]["iat"] == 3607
    # the controllers put back what is taken away
    k(runtime_lab, "-n", ns, "delete", "sa", "default")
    k(runtime_lab, "-n", ns, "patch", "configmap", "kube-root-ca.crt", "-p", '{"data": {"ca.crt": "tampered"}}')
    until("default ServiceAccount again", lambda: kubectl(runtime_lab, "-n", ns, "get", "sa", "default",
                                                          check=False).returncode == 0)
    until("CA restored", lambda: json.loads(k(runtime_lab, "-n", ns, "get", "configmap", "kube-root-ca.crt", "-o",
                                              "json"))["data"]["ca.crt"] == ca["data"]["ca.crt"])


INCLUSTER = """
from kubernetes import client, config
config.load_incluster_config()
pods = client.CoreV1Api().list_namespaced_pod(open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read())
print("pods:", sorted(p.metadata.name for p in pods.items), flush=True)
try:
    client.CoreV1Api().list_namespaced_secret(pods.items[0].metadata.namespace)
except client.ApiException as err:
    print("secrets:", err.status, flush=True)
"""


def test_in_cluster_client_lists_pods(runtime_lab: Lab, ns: str) -> None:
    apply(runtime_lab, ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                            "metadata": {"name": "default-view"},
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]},
          pod("incluster", [py("client", INCLUSTER)], restartPolicy="Never"))
    done = until("the pod ran", lambda: get(runtime_lab, ns, "incluster")["status"]["phase"] in ("Succeeded", "Failed"))
    logs = k(runtime_lab, "-n", ns, "logs", "incluster")
    assert done and get(runtime_lab, ns, "incluster")["status"]["phase"] == "Succeeded", logs
    assert "pods: ['incluster']" in logs
    assert "secrets: 403" in logs  # the token is the pod's service account's, which may only view


# -- kubectl's columns --------------------------------------------------------------------------------------
def test_kubectl_columns_for_init_containers_and_sidecars(runtime_lab: Lab, ns: str) -> None:
    """READY, STATUS and RESTARTS as kubectl prints them for statuses a kubelet reports (posted here by hand on
    pods bound to a node without a kubelet, so nothing overwrites them)."""
    web = {"name": "web", "image": IMAGE}
    inits = [{"name": "one", "image": IMAGE}, {"name": "two", "image": IMAGE}]
    side = {"name": "side", "image": IMAGE, "restartPolicy": "Always"}
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    waiting = {"waiting": {"reason": "PodInitializing"}}
    cases = {
        "second-init": ([web], inits, [("one", done, 0), ("two", running, 0)], [("web", waiting, False, 0)],
                        "False", ("0/1", "Init:1/2", "0")),
        "initializing": ([web], inits, [("one", done, 0), ("two", done, 0)], [("web", waiting, False, 0)],
                         "True", ("0/1", "PodInitializing", "0")),
        "exit-code": ([web], inits, [("one", {"terminated": {"exitCode": 3}}, 2)], [("web", waiting, False, 0)],
                      "False", ("0/1", "Init:ExitCode:3", "2")),
        "crash-loop": ([web], inits, [("one", {"waiting": {"reason": "CrashLoopBackOff"}}, 4)],
                       [("web", waiting, False, 0)], "False", ("0/1", "Init:CrashLoopBackOff", "4")),
        "sidecar": ([web], [side], [("side", running, 2)], [("web", running, True, 1)], "True",
                    ("2/2", "Running", "3")),
        "sidecar-done": ([web], [side], [("side", running, 0)], [("web", done, False, 0)], "True",
                         ("1/2", "Completed", "0")),
    }
    for name, (containers, init_containers, init_states, states, initialized, _) in cases.items():
        apply(runtime_lab, ns, pod(name, containers, initContainers=init_containers, nodeName="no-kubelet"))
        sidecars = {c["name"] for c in init_containers if c.get("restartPolicy") == "Always"}
        status = {
            "phase": "Running" if initialized == "True" else "Pending",
            "conditions": [{"type": "Initialized", "status": initialized}],
            "initContainerStatuses": [
                {"name": n, "image": IMAGE, "imageID": "", "ready": n in sidecars and "running" in s,
                 "started": "running" in s, "restartCount": r, "state": s} for n, s, r in init_states],
            "containerStatuses": [{"name": n, "image": IMAGE, "imageID": "", "ready": ready, "restartCount": r,
                                   "state": s} for n, s, ready, r in states]}
        k(runtime_lab, "-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge", "-p",
          json.dumps({"status": status}))
    for name, (*_, want) in cases.items():
        line = k(runtime_lab, "-n", ns, "get", "pod", name, "--no-headers").split()
        assert tuple(line[1:4]) == want, (name, line)


def test_projected_token_is_renewed_after_80_percent_of_its_life(tmp_path: Path, monkeypatch: Any) -> None:
    """The volume manager on the real object store: the token file is rewritten (a new ``..data``) only once
    80% of its lifetime has passed, as the kubelet's token manager renews it."""
    from labkit.kube.apiserver.api import KubeApi
    from labkit.kube.apiserver.objects import WriteOptions
    from labkit.kube.apiserver.tokens import TokenIssuer
    from labkit.kube.node import volumes
    from labkit.kube.node.volumes import PodVolumes, VolumeManager

    store = Store(tmp_path / "objects.sqlite")
    try:
        objects = KubeApi(store).objects
        objects.tokens = TokenIssuer("test-key")
        pod_rt = objects.registry.find("", "v1", "pods")
        assert pod_rt is not None
        created, _ = objects.create(pod_rt, "default", {"metadata": {"name": "p"}, "spec": {
            "automountServiceAccountToken": False, "containers": [
            {"name": "c", "image": IMAGE}], "volumes": [{"name": "short", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}}]}}]}}, WriteOptions())
        manager, vols = VolumeManager(objects, "agent-1", "127.0.0.9"), PodVolumes(tmp_path / "volumes")
        manager.setup(created, vols, "127.0.0.10")
        token_file = tmp_path / "volumes" / "short" / "token"
        first, data = token_file.read_text(), os.readlink(tmp_path / "volumes" / "short" / "..data")
        clock = [time.time()]
        monkeypatch.setattr(volumes.time, "time", lambda: clock[0])
        monkeypatch.setattr(volumes.time, "monotonic", lambda: clock[0])
        clock[0] += 0.8 * 600 - 5
        manager.refresh(created, vols, "127.0.0.10")
        assert token_file.read_text() == first  # unchanged: no new ..data
        assert os.readlink(tmp_path / "volumes" / "short" / "..data") == data
        clock[0] += 10
        manager.refresh(created, vols, "127.0.0.10")
        assert token_file.read_text() != first
        assert os.readlink(tmp_path / "volumes" / "short" / "..data") != data
        assert not (tmp_path / "volumes" / "short" / data).exists()  # the old payload is gone
    finally:
        store.close()
