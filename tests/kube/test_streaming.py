"""The streaming subresources over their real wire protocols: exec, attach, port-forward, cp and logs -f.

The protocol modules are unit-tested first; then the real kubectl (WebSocket v5 and its SPDY fallback,
port-forward tunnelled SPDY and plain SPDY) and the ``kubernetes`` client drive one sim lab, and every
refusal is checked in the words kubectl prints for a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from labkit.kube.apiserver import remotecommand as rc
from labkit.kube.apiserver import spdy
from labkit.kube.apiserver.portforward import PodNet, query_ports, stream_error
from labkit.kube.node.exec import ExecError, find_executable, map_argument
from labkit.lab import Lab

from ..conftest import BIN, kubectl

NS = "streaming"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- the protocols, without a lab -------------------------------------------------------------------------
def test_spdy_dictionary_is_the_spdy3_dictionary() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"  # moby/spdystream's bytes


def test_spdy_frames_round_trip_through_one_zlib_context_per_direction() -> None:
    out_codec, reader = spdy.HeaderCodec(), spdy.FrameReader(spdy.HeaderCodec())
    frames = [spdy.Frame(spdy.SYN_STREAM, 0, 1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
              spdy.Frame(spdy.SYN_STREAM, 0, 3, {"streamtype": "data", "port": "8080", "requestid": "0"}),
              spdy.Frame(0, spdy.FLAG_FIN, 3, data=b"x" * 70000), spdy.Frame(spdy.PING, 0, ping_id=7),
              spdy.Frame(spdy.RST_STREAM, 0, 3, status=spdy.CANCEL), spdy.Frame(spdy.SYN_REPLY, 0, 5, {})]
    wire = b"".join(spdy.encode(f, out_codec) for f in frames)
    got = [f for i in range(0, len(wire), 7) for f in reader.feed(wire[i:i + 7])]  # any cut of the stream
    assert got == frames
    with pytest.raises(spdy.SpdyError):
        spdy.FrameReader(spdy.HeaderCodec()).feed(bytes([0x80, 2, 0, 1, 0, 0, 0, 0]))  # SPDY/2


def test_spdy_session_replies_echoes_pings_and_carries_data() -> None:
    class Pipe:
        def __init__(self, incoming: bytes) -> None:
            self.incoming, self.sent = [incoming, b""], b""

        async def read(self) -> bytes:
            await asyncio.sleep(0.05)
            return self.incoming.pop(0) if self.incoming else b""

        async def write(self, data: bytes) -> None:
            self.sent += data

        async def close(self) -> None:
            pass

    async def echo(stream: spdy.SpdyStream) -> None:
        while data := await stream.read():
            await stream.write(data.upper())
        await stream.close()

    codec = spdy.HeaderCodec()
    hello = b"".join(spdy.encode(f, codec) for f in (
        spdy.Frame(spdy.SYN_STREAM, 0, 1, {"port": "80"}), spdy.Frame(spdy.PING, 0, ping_id=1),
        spdy.Frame(0, spdy.FLAG_FIN, 1, data=b"hi"), spdy.Frame(spdy.SYN_STREAM, 0, 3, {"refuse": "1"})))
    pipe = Pipe(hello)
    session = spdy.SpdySession(pipe, lambda s: "no" if "refuse" in s.headers else None, echo)
    asyncio.run(session.run())
    sent = spdy.FrameReader(spdy.HeaderCodec()).feed(pipe.sent)
    assert [(f.kind, f.flags, f.data) for f in sent if f.stream_id == 1] == [
        (spdy.SYN_REPLY, 0, b""), (0, 0, b"HI"), (0, spdy.FLAG_FIN, b"")]
    assert [(f.kind, f.status) for f in sent if f.stream_id == 3] == [(spdy.RST_STREAM, spdy.CANCEL)]
    assert any(f.kind == spdy.PING and f.ping_id == 1 for f in sent)


def test_channel_protocols_and_results() -> None:
    assert rc.negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == rc.V5
    assert rc.negotiate(["v4.channel.k8s.io"], rc.WEBSOCKET_PROTOCOLS[1:]) == rc.V4
    assert rc.negotiate([]) == "" and rc.negotiate(["nope"]) is None
    v5, b64 = rc.Dialect(rc.V5), rc.Dialect(rc.V4_BASE64)
    assert (v5.version, b64.version, rc.Dialect(rc.V1).version) == (5, 4, 1)
    assert v5.encode(1, b"hi") == b"\x01hi" and v5.decode("\x00ls\n") == (0, b"ls\n")
    assert b64.encode(1, b"hi") == "1aGk=" and b64.decode("0aGk=") == (0, b"hi")
    status = rc.exit_status(3, "error executing command [sh -c exit 3], exit code 3")
    assert rc.exit_code(status) == 3 and status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert rc.apiserver_result(status)["message"] == \
        "command terminated with non-zero exit code: command terminated with exit code 3"
    wrapped = rc.apiserver_result(rc.internal_error("error executing command in container: x"))
    assert wrapped["message"] == "Internal error occurred: Internal error occurred: error executing command in " \
                                 "container: x" and wrapped["code"] == 500
    assert json.loads(rc.result_bytes(rc.success(), v5)) == {"metadata": {}, "status": "Success"}
    assert rc.result_bytes(rc.success(), rc.Dialect(rc.V1)) == b""
    assert rc.resizes(b'{"Width":101,"Height":33}{"Width":80,"Height":24}') == [(101, 33), (80, 24)]


def test_exec_path_rule_and_runtime_errors(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "app").mkdir(parents=True)
    (root / "app" / "run.sh").write_text("#!/bin/sh\n")
    assert map_argument("/app/x", root, root / "app") == "../app/x"
    assert map_argument("/app", root, root / "app") == "../app"
    assert map_argument("/tmp/a", root, root) == "tmp/a"
    assert map_argument("/", root, root / "app") == ".."
    assert [map_argument(a, root, root / "app") for a in ("/dev/null", "/proc/1", "-C", "x/y")] == \
        ["/dev/null", "/proc/1", "-C", "x/y"]
    env = {"PATH": "/usr/bin:/bin"}
    assert find_executable("sh", env, root, root / "app").endswith("/sh")
    assert find_executable("python3", env, root, root) == sys.executable
    for name, message in (("nope", 'exec: "nope": executable file not found in $PATH'),
                          ("/bin/nope", 'exec: "/bin/nope": stat /bin/nope: no such file or directory'),
                          ("/app/run.sh", 'exec: "/app/run.sh": permission denied')):
        with pytest.raises(ExecError) as err:
            find_executable(name, env, root, root / "app")
        assert str(err.value) == message


def test_port_forward_requests_are_checked_as_the_kubelet_does() -> None:
    assert query_ports(["80,8080", "9000"]) == [80, 8080, 9000]
    assert query_ports([]) == 'query parameter "port" is required'
    assert query_ports(["0"]) == 'port "0" must be > 0'
    assert stream_error({"streamtype": "data"}) == '"port" header is required'
    assert stream_error({"port": "80", "streamtype": "nope"}) == 'invalid stream type "nope"'
    assert stream_error({"port": "80", "streamtype": "error"}) is None
    message = PodNet("uid-1", "127.0.0.5").error(9999, ConnectionRefusedError(111, "Connection refused"))
    assert re.fullmatch(r"error forwarding port 9999 to pod [0-9a-f]{64}, uid : failed to execute portforward in "
                        r'network namespace "/var/run/netns/cni-[-0-9a-f]{36}": failed to connect to localhost:9999 '
                        r'inside namespace "[0-9a-f]{64}", IPv4: dial tcp4 127.0.0.5:9999: connect: connection '
                        r"refused IPv6 .*", message)


# -- a lab with pods to stream to ----------------------------------------------------------------------------
SHORT = """
apiVersion: v1
kind: Pod
metadata: {name: short}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: localhost:5001/test/web:1
    command: [sh, -c, 'for i in 1 2 3; do echo "line $i"; sleep 0.4; done']
"""
PODS = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - {name: web, image: "localhost:5001/test/web:1", ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: files}
spec:
  containers:
  - {name: files, image: "localhost:5001/test/web:1", command: [python, -m, http.server, "8000", --bind, $(POD_IP)]}
  - {name: sidecar, image: "localhost:5001/test/web:1", env: [{name: PORT, value: "8081"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: main
    image: localhost:5001/test/web:1
    stdin: true
    command: [sh, -c, 'echo started; while read line; do echo "got $line"; done']
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  containers:
  - name: main
    image: localhost:5001/test/web:1
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done']
---
{short}
---
apiVersion: v1
kind: Pod
metadata: {name: pending}
spec:
  containers: [{name: main, image: "localhost:5001/test/missing:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: unscheduled}
spec:
  nodeSelector: {nowhere: "true"}
  containers: [{name: main, image: "localhost:5001/test/web:1"}]
""".replace("{short}", SHORT.strip())


@pytest.fixture(scope="module")
def lab(runtime_lab: Lab) -> Lab:
    """The module's lab with the pods above, the long-running ones ready."""
    kubectl(runtime_lab, "create", "namespace", NS)
    kubectl(runtime_lab, "-n", NS, "apply", "-f", "-", input=PODS)
    kubectl(runtime_lab, "-n", NS, "wait", "--for=condition=Ready", "pod/web", "pod/files", "pod/reader",
            "pod/ticker", "--timeout=90s", timeout=100)
    return runtime_lab


def k(lab: Lab, *args: str, input: str | None = None, env: dict[str, str] | None = None,
      timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """kubectl in the module's namespace, not checked (the tests look at the exit code)."""
    return subprocess.run([str(BIN / "kubectl"), "-n", NS, *args], capture_output=True, text=True,
                          env={**lab.env(), **(env or {})}, input=input, timeout=timeout)


NO_WEBSOCKETS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
TRANSPORTS = pytest.mark.parametrize("env", [{}, NO_WEBSOCKETS], ids=["websocket", "spdy"])


# -- exec ----------------------------------------------------------------------------------------------------
@TRANSPORTS
def test_exec_runs_in_the_container_with_its_exit_code(lab: Lab, env: dict[str, str]) -> None:
    res = k(lab, "exec", "web", "--", "sh", "-c", 'echo "$HOSTNAME"; ls "$1"; echo oops >&2; exit 3', "sh", "/app",
            env=env)  # /app, a whole argument, is the container's
    assert res.returncode == 3
    assert res.stdout == "web\nserver.py\n"
    assert res.stderr == "oops\ncommand terminated with exit code 3\n"
    res = k(lab, "exec", "files", "-c", "sidecar", "--", "printenv", "PORT", env=env)
    assert (res.returncode, res.stdout) == (0, "8081\n")
    res = k(lab, "exec", "-i", "web", "--", "cat", input="hi\n" * 3, env=env)  # stdin ends: cat ends
    assert (res.returncode, res.stdout) == (0, "hi\n" * 3)
    assert k(lab, "exec", "web", "--", "sh", "-c", "kill -9 $$", env=env).returncode == 137


def test_exec_with_a_terminal(lab: Lab) -> None:
    out, code = drive_tty(lab, ["exec", "-it", "web", "--", "env", "PS1=ready> ", "sh"],
                          [(b"ready> ", b"stty size; tty; echo hello-$((6*7)); exit 5\r")], size=(33, 101))
    assert code == 5
    assert "33 101" in out and "/dev/pts/" in out and "hello-42" in out and "command terminated with exit code 5" in out


@TRANSPORTS
def test_exec_failures_are_the_runtime_s(lab: Lab, env: dict[str, str]) -> None:
    wrap = "Internal error occurred: " * (1 if env else 2)  # the API server's v5 translator wraps once more
    res = k(lab, "exec", "web", "--", "nope", env=env)
    assert res.returncode == 1
    assert re.fullmatch(f'error: {wrap}error executing command in container: failed to exec in container: failed to '
                        r'start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container '
                        r'process: exec: "nope": executable file not found in \$PATH: unknown\n', res.stderr)
    res = k(lab, "exec", "web", "--", "/bin/nope", env=env)
    assert 'exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown' in res.stderr
    res = k(lab, "exec", "pending", "--", "ls", env=env)  # the kubelet's answer (wrapped once by the translator)
    assert res.returncode == 1
    assert res.stderr == f'error: {wrap[len("Internal error occurred: "):]}unable to upgrade connection: container ' \
                         'not found ("main")\n'


def test_exec_and_attach_refusals(lab: Lab) -> None:
    kubectl(lab, "-n", NS, "wait", "pod/short", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=30s")
    for args, message in (
            (["exec", "web", "-c", "nope", "--", "ls"], "error: container nope is not valid for pod web out of: web"),
            (["exec", "short", "--", "ls"],
             "error: cannot exec into a container in a completed pod; current phase is Succeeded"),
            (["attach", "short"], "error: cannot attach a container in a completed pod; current phase is Succeeded"),
            (["exec", "unscheduled", "--", "ls"],
             "error: unable to upgrade connection: pod unscheduled does not have a host assigned"),
            (["attach", "pending"],
             f"error: Internal error occurred: unable to upgrade connection: container main not found in pod "
             f"pending_{NS}"),
            (["port-forward", "pod/pending", ":80"],
             "error: unable to forward port because pod is not running. Current status=Pending")):
        res = k(lab, *args)
        assert res.returncode == 1, args
        assert res.stderr.strip().endswith(message), (args, res.stderr)


# -- attach --------------------------------------------------------------------------------------------------
def test_attach_feeds_stdin_and_streams_output_from_now(lab: Lab) -> None:
    proc = subprocess.Popen([str(BIN / "kubectl"), "-n", NS, "attach", "-i", "reader"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lab.env())
    try:
        assert proc.stdin and proc.stdout
        time.sleep(1)
        for word in ("hello", "world"):
            proc.stdin.write(f"{word}\n".encode())
            proc.stdin.flush()
            assert proc.stdout.readline() == f"got {word}\n".encode()  # not "started": output from now on
        proc.stdin.close()  # the client's stdin ends: it detaches (the container has no stdinOnce)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    assert "got world" in kubectl(lab, "-n", NS, "logs", "reader").stdout


def test_attach_to_a_container_without_stdin_streams_its_output(lab: Lab) -> None:
    before = last_tick(kubectl(lab, "-n", NS, "logs", "ticker", "--tail=1").stdout)
    proc = subprocess.Popen([str(BIN / "kubectl"), "-n", NS, "attach", "-i", "ticker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=lab.env())
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(b"dropped\n")  # containerd drops stdin for a container without one
        proc.stdin.close()
        ticks = [last_tick(proc.stdout.readline().decode()) for _ in range(3)]
        assert ticks[0] > before and ticks == sorted(ticks)
        assert proc.poll() is None  # still attached
    finally:
        proc.kill()
        proc.wait()
    assert "dropped" not in kubectl(lab, "-n", NS, "logs", "ticker").stdout


def test_run_it_attaches_to_a_terminal(lab: Lab) -> None:
    out, code = drive_tty(lab, ["run", "-it", "shell", "--image=localhost:5001/test/web:1", "--restart=Never",
                                "--rm", "--env=PS1=ready> ", "--", "sh"],
                          [(b"pressing enter.", b"\r"), (b"ready> ", b"stty size; echo hi-$((2*21)); exit 3\r")],
                          size=(40, 120))
    assert "40 120" in out and "hi-42" in out
    assert code == 3 and 'pod "shell" deleted' in out


# -- port-forward --------------------------------------------------------------------------------------------
@TRANSPORTS
def test_port_forward_to_a_pod_and_a_service_in_parallel(lab: Lab, env: dict[str, str]) -> None:
    with port_forward(lab, env, "pod/files", "8000", "8081") as ports, \
            port_forward(lab, env, "svc/web", "80") as svc:
        assert get(ports[8081], "/sidecar")["path"] == "/sidecar"
        assert b"Directory listing" in fetch(ports[8000], "/")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: get(svc[80], f"/r{i}"), range(16)))
        assert [a["path"] for a in answers] == [f"/r{i}" for i in range(16)]
        assert {a["pod"] for a in answers} == {"web"}


def test_port_forward_carries_megabytes(lab: Lab) -> None:
    res = k(lab, "exec", "files", "--", "python", "-c", "import os, hashlib; data = os.urandom(5 * 2**20); "
            "open('big.bin', 'wb').write(data); print(hashlib.sha256(data).hexdigest())")
    assert res.returncode == 0, res.stderr
    with port_forward(lab, {}, "pod/files", "8000") as ports, ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda _: fetch(ports[8000], "/big.bin"), range(2)))
    assert [hashlib.sha256(b).hexdigest() for b in bodies] == [res.stdout.strip()] * 2


@TRANSPORTS
def test_port_forward_to_a_closed_port_ends_as_kubectl_reports_it(lab: Lab, env: dict[str, str]) -> None:
    with port_forward(lab, env, "pod/web", "9999") as ports:
        with pytest.raises(OSError):
            fetch(ports[9999], "/")
        proc = ports["process"]
        assert proc.wait(timeout=15) == 1  # kubectl ends by itself
    err = proc.stderr.read()
    assert "An error occurred forwarding" in err and "remotePort=9999" in err
    assert re.search(r"error forwarding port 9999 to pod [0-9a-f]{64}, uid : failed to execute portforward in "
                     r"network namespace .*failed to connect to localhost:9999 inside namespace", err)
    assert err.rstrip().endswith("error: lost connection to pod")


# -- cp and logs ---------------------------------------------------------------------------------------------
def test_cp_both_ways(lab: Lab, tmp_path: Path) -> None:
    src = tmp_path / "up"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    res = k(lab, "cp", str(src), "files:/tmp/up")
    assert res.returncode == 0, res.stderr
    assert k(lab, "exec", "files", "--", "cat", "/tmp/up/a.txt").stdout == "alpha\n"
    back = tmp_path / "back"
    res = k(lab, "cp", "files:/tmp/up", str(back))
    assert res.returncode == 0, res.stderr
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    res = k(lab, "cp", "web:/app/server.py", str(tmp_path / "server.py"))
    assert res.returncode == 0 and "http.server" in (tmp_path / "server.py").read_text()


def test_logs_follow_sees_new_lines_and_ends_with_the_container(lab: Lab) -> None:
    proc = subprocess.Popen([str(BIN / "kubectl"), "-n", NS, "logs", "-f", "ticker", "--tail=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lab.env(), text=True)
    try:
        assert proc.stdout
        ticks = [last_tick(proc.stdout.readline()) for _ in range(4)]
        assert ticks == list(range(ticks[0], ticks[0] + 4))
    finally:
        proc.kill()
        proc.wait()
    kubectl(lab, "-n", NS, "delete", "pod", "short", "--wait=true")
    kubectl(lab, "-n", NS, "apply", "-f", "-", input=SHORT)
    kubectl(lab, "-n", NS, "wait", "pod/short", "--for=jsonpath={.status.phase}=Running", "--timeout=30s")
    res = k(lab, "logs", "-f", "short", timeout=20)  # returns once the container has exited
    assert (res.returncode, res.stdout) == (0, "line 1\nline 2\nline 3\n")


# -- the Python client ---------------------------------------------------------------------------------------
def test_python_client_exec_and_port_forward(lab: Lab) -> None:
    api = client.CoreV1Api(config.new_client_from_config(lab.env()["KUBECONFIG"]))
    out = stream(api.connect_get_namespaced_pod_exec, "web", NS, command=["sh", "-c", "echo out; echo err >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "out\nerr\n"
    ws = stream(api.connect_get_namespaced_pod_exec, "web", NS, command=["sh"], stderr=True, stdin=True,
                stdout=True, tty=False, _preload_content=False)
    try:
        ws.write_stdin("echo one\n")
        assert ws.readline_stdout(timeout=10) == "one"
        ws.write_stdin("exit 7\n")
        ws.run_forever(timeout=10)
        assert ws.returncode == 7
    finally:
        ws.close()
    with pytest.raises(client.ApiException) as err:
        stream(api.connect_get_namespaced_pod_exec, "web", NS, command=["ls"], container="nope", stderr=True,
               stdin=False, stdout=True, tty=False)
    assert "400 Bad Request" in str(err.value) and "container nope is not valid for pod web" in str(err.value)
    with pytest.raises(client.ApiException) as plain:
        api.connect_get_namespaced_pod_exec("web", NS, command=["ls"], stdout=True)  # not an upgrade
    assert plain.value.status == 400 and "Upgrade request required" in plain.value.body

    pf = portforward(api.connect_get_namespaced_pod_portforward, "files", NS, ports="8081,9999")
    sock = pf.socket(8081)
    sock.sendall(b"GET /py HTTP/1.0\r\n\r\n")
    sock.settimeout(10)
    answer = b""
    while data := sock.recv(65536):
        answer += data
    assert answer.startswith(b"HTTP/1.0 200") and b'"path": "/py"' in answer
    for _ in range(50):
        if pf.error(9999):
            break
        time.sleep(0.1)
    assert "failed to connect to localhost:9999 inside namespace" in (pf.error(9999) or "")
    pf.close()


# -- helpers -------------------------------------------------------------------------------------------------
def last_tick(line: str) -> int:
    return int(line.strip().split()[-1])


def fetch(port: int, path: str) -> bytes:
    with OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.read()


def get(port: int, path: str) -> dict:
    return json.loads(fetch(port, path))


@contextlib.contextmanager
def port_forward(lab: Lab, env: dict[str, str], target: str, *remote: str) -> Iterator[dict]:
    """``kubectl port-forward target :P ...``; yields {P: the local port, "process": the kubectl}."""
    proc = subprocess.Popen([str(BIN / "kubectl"), "-n", NS, "port-forward", target, *(f":{p}" for p in remote)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**lab.env(), **env}, text=True)
    ports: dict = {"process": proc}
    try:
        assert proc.stdout
        while len(ports) <= len(remote):  # one line per port, in order (a Service's port shows as its targetPort)
            line = proc.stdout.readline()
            assert line, f"kubectl port-forward ended: {proc.stderr.read() if proc.stderr else ''}"
            m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> \d+", line)
            if m:
                ports[int(remote[len(ports) - 1])] = int(m.group(1))
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # "Handling connection" lines
        yield ports
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=15)


def drive_tty(lab: Lab, args: list[str], script: list[tuple[bytes, bytes]], size: tuple[int, int],
              timeout: float = 30) -> tuple[str, int]:
    """Runs kubectl on a pseudo-terminal of ``size`` (rows, columns); for each (prompt, keys) waits for the prompt
    and types the keys. Returns the screen output and the exit code."""
    import fcntl
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: kubectl on the terminal
        os.execve(str(BIN / "kubectl"), [str(BIN / "kubectl"), "-n", NS, *args], lab.env())
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    out, seen, deadline = b"", 0, time.monotonic() + timeout
    steps = list(script)
    while time.monotonic() < deadline:
        if steps and steps[0][0] in out[seen:]:
            os.write(fd, steps.pop(0)[1])
            seen = len(out)
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:  # still running at the deadline
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)
