"""The demo shop: manifests valid for Kubernetes, the services' own tests, and the shop built with the sim's
image builder, unpacked and run the way the kubelet runs images (host Python, image Env/WorkingDir/Cmd,
HOST/PORT), with gateway -> catalog/orders going through an HTTP proxy that resolves service names."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from labkit.images import LABEL_ROOTFS_ENV, LABEL_RUNTIME, BuildResult, build, unpack

ROOT = Path(__file__).resolve().parents[2]
APPS, MANIFESTS = ROOT / "apps", ROOT / "manifests" / "apps"
SERVICES = ("catalog", "orders", "gateway")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- manifests and unit tests -------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") != "Kustomization"]
    return docs


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    docs = manifests()
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert ("Namespace", "shop") in by_kind
    for name, replicas in (("catalog", 3), ("orders", 2), ("gateway", 2)):
        deploy = by_kind[("Deployment", name)]
        assert deploy["metadata"]["namespace"] == "shop" and deploy["spec"]["replicas"] == replicas
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == name and "version" in labels
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert set(container["resources"]) == {"requests", "limits"}
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["HOST"]["value"] == "0.0.0.0" and env["PORT"]["value"] == "8080"
        assert container["image"] == f"localhost:5001/shop/{name}:0.1.0"
    assert by_kind[("Service", "catalog")]["spec"]["type"] == "ClusterIP"
    assert by_kind[("Service", "gateway")]["spec"]["ports"][0]["nodePort"] == 30080
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS.glob("*.yaml")
                                                        if p.name != "kustomization.yaml")


def test_the_services_own_unit_tests_pass() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=APPS,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_pipeline_has_the_talks_stages() -> None:
    pipeline = yaml.safe_load((APPS / ".gitlab-ci.yml").read_text())
    assert pipeline["stages"] == ["build", "test", "security", "deploy"]
    assert {job["stage"] for name, job in pipeline.items() if isinstance(job, dict) and "stage" in job} == {
        "build", "test", "security", "deploy"}


# -- building the shop ---------------------------------------------------------------------------------------------


@dataclass
class Built:
    images: dict[str, BuildResult]
    seconds: dict[str, float]
    cache: Path


@pytest.fixture(scope="module")
def shop_images(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cache = tmp_path_factory.mktemp("build-cache")
    images, seconds = {}, {}
    for name in SERVICES:
        result = build(APPS, f"{name}/Dockerfile", tag=f"localhost:5001/shop/{name}:0.1.0", cache_dir=cache)
        images[name], seconds[name] = result, result.seconds
    return Built(images, seconds, cache)


def test_shop_images_are_oci_images_and_rebuilds_are_cached(shop_images: Built) -> None:
    timings = []
    for name, first in shop_images.images.items():
        config = first.config
        assert config["config"]["Cmd"] == ["python", "-m", name] and config["config"]["WorkingDir"] == "/app"
        assert config["config"]["Labels"][LABEL_RUNTIME] == "host-python"
        assert config["config"]["ExposedPorts"] == {"8080/tcp": {}} and config["config"]["User"] == "10001"
        again = build(APPS, f"{name}/Dockerfile", tag=f"localhost:5001/shop/{name}:0.1.0", cache_dir=shop_images.cache)
        assert again.manifest_digest == first.manifest_digest
        assert again.cached == len([h for h in config["history"] if "WORKDIR" in h["created_by"] or
                                    h["created_by"].startswith(("COPY", "RUN"))])
        assert again.seconds < 0.5
        timings.append(f"{name}: first {shop_images.seconds[name]:.2f}s, cached {again.seconds:.3f}s")
        if shutil.which("skopeo"):
            out = subprocess.run(["skopeo", "inspect", f"oci:{first.layout_dir}:0.1.0"], capture_output=True,
                                 text=True, check=True)
            assert json.loads(out.stdout)["Digest"] == first.manifest_digest
    print("build times:", "; ".join(timings))
    pip_layers = {r.layers[2].digest for r in shop_images.images.values()}
    assert len(pip_layers) == 1  # the three services share one dependency layer


# -- running the shop like the kubelet ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProxy:
    """A forward HTTP proxy that resolves ``http://<service>:8080`` to a local address (the sim's per-node
    proxy does this for real)."""

    def __init__(self, routes: dict[str, int]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                port = proxy.routes[url.hostname or ""]
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                conn.request(self.command, url.path + (f"?{url.query}" if url.query else ""),
                             self.rfile.read(length) if length else None, headers)
                resp = conn.getresponse()
                body = resp.read()
                proxy.seen.append(url.hostname or "")
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.routes, self.seen = routes, []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def container_command(rootfs: Path, config: dict[str, Any], env: dict[str, str]) -> tuple[list[str], Path, dict]:
    """argv, cwd and environment for an image, as the builder's runtime contract says."""
    cfg = config["config"]
    argv = [*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])]
    if Path(argv[0]).name.startswith("python"):
        argv[0] = sys.executable
    image_env = dict(item.split("=", 1) for item in cfg.get("Env") or [])
    for var in cfg["Labels"][LABEL_ROOTFS_ENV].split(","):
        paths = [str(rootfs / p.lstrip("/")) for p in image_env.get(var, "").split(":") if p]
        image_env[var] = os.pathsep.join(paths + ([os.environ["PATH"]] if var == "PATH" else []))
    full = {**image_env, **env, "LABKIT_ROOTFS": str(rootfs)}
    return argv, rootfs / cfg["WorkingDir"].lstrip("/"), full


@dataclass
class Pod:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


def start_pod(name: str, rootfs: Path, config: dict[str, Any], env: dict[str, str], folder: Path) -> Pod:
    port = free_port()
    argv, cwd, full = container_command(rootfs, config, {"HOST": "127.0.0.1", "PORT": str(port), "POD_NAME": name,
                                                         **env})
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=full, stdout=out, stderr=subprocess.STDOUT)
    return Pod(name, proc, log, port)


def wait_ready(pod: Pod, timeout: float = 10) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if pod.proc.poll() is not None:
            raise AssertionError(f"{pod.name} exited {pod.proc.returncode}: {pod.log.read_text()[-2000:]}")
        try:
            with NO_PROXY.open(pod.url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{pod.name} not ready in {timeout}s: {pod.log.read_text()[-2000:]}")


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with NO_PROXY.open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def shop(shop_images: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("pods")
    roots = {}
    for name, result in shop_images.images.items():
        roots[name] = folder / f"{name}-rootfs"
        unpack(result.layout_dir, "0.1.0", roots[name])
    pods: dict[str, Pod] = {}
    proxy = ServiceProxy({})
    try:
        for name in ("catalog", "orders"):
            pods[name] = start_pod(f"{name}-5d8c9-x{len(pods)}", roots[name], shop_images.images[name].config, {},
                                   folder)
        proxy.routes.update({"catalog": pods["catalog"].port, "orders": pods["orders"].port})
        pods["gateway"] = start_pod("gateway-7f6b4-q2", roots["gateway"], shop_images.images["gateway"].config,
                                    {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1,localhost"}, folder)
        startup = {name: wait_ready(pod) for name, pod in pods.items()}
        yield {"pods": pods, "proxy": proxy, "roots": roots, "startup": startup, "images": shop_images.images}
    finally:
        for pod in pods.values():
            if pod.proc.poll() is None:
                pod.proc.terminate()
        for pod in pods.values():
            try:
                pod.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pod.proc.kill()
                pod.proc.wait()
        proxy.server.shutdown()


def test_dependencies_come_from_the_image(shop: dict[str, Any]) -> None:
    rootfs, config = shop["roots"]["catalog"], shop["images"]["catalog"].config
    argv, cwd, env = container_command(rootfs, config, {})
    out = subprocess.run([argv[0], "-c", "import prometheus_client, opentelemetry.sdk.trace, opentelemetry.trace; "
                          "import shopkit; "
                          "print(prometheus_client.__file__); print(opentelemetry.sdk.trace.__file__); "
                          "print(opentelemetry.trace.__file__); "
                          "print(shopkit.__file__)"], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(rootfs)) for line in out.stdout.split()), out.stdout


def test_gateway_reaches_catalog_and_orders_by_service_name(shop: dict[str, Any]) -> None:
    gateway = shop["pods"]["gateway"]
    assert all(seconds < 3 for seconds in shop["startup"].values()), shop["startup"]
    status, headers, body = call(gateway.url + "/api/products")
    assert status == 200 and body["count"] == 6 and body["pod"] == shop["pods"]["catalog"].name
    assert headers["X-Pod-Name"] == gateway.name
    status, _, order = call(gateway.url + "/api/orders", "POST", {"product_id": "p-3", "quantity": 2})
    assert status == 201 and order["pod"] == shop["pods"]["orders"].name and order["unit_price"] == 4.0
    assert call(gateway.url + "/api/orders")[2]["count"] >= 1
    assert {"catalog", "orders"} <= set(shop["proxy"].seen)  # by name, through HTTP_PROXY
    trace_id = headers["X-Trace-Id"]
    logs = {name: pod.lines() for name, pod in shop["pods"].items()}
    gateway_line = next(line for line in logs["gateway"] if line.get("trace_id") == trace_id)
    assert {k: gateway_line[k] for k in ("level", "msg", "route", "status")} == {
        "level": "info", "msg": "request", "route": "/api/products", "status": 200}
    assert isinstance(gateway_line["duration"], float)
    assert any(line.get("trace_id") == trace_id for line in logs["catalog"])  # traceparent propagated


def test_metrics_and_health(shop: dict[str, Any]) -> None:
    for pod in shop["pods"].values():
        assert call(pod.url + "/healthz")[0] == 200
    with NO_PROXY.open(shop["pods"]["catalog"].url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'http_requests_total{method="GET",route="/products",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text and "process_cpu_seconds_total" in text


def test_admin_knobs_slow_fail_and_crash(shop: dict[str, Any]) -> None:
    pods = shop["pods"]
    gateway, catalog = pods["gateway"], pods["catalog"]
    assert call(catalog.url + "/admin/slow?ms=300", "POST")[0] == 200
    started = time.monotonic()
    assert call(gateway.url + "/api/products")[0] == 200
    assert time.monotonic() - started >= 0.3
    assert call(catalog.url + "/admin/fail?rate=1", "POST")[0] == 200
    assert call(catalog.url + "/products")[0] == 500
    assert call(gateway.url + "/api/products")[0] == 502
    assert call(catalog.url + "/admin/reset", "POST")[0] == 200
    assert call(gateway.url + "/api/products")[0] == 200
    assert call(pods["orders"].url + "/admin/crash", "POST")[0] == 202
    assert pods["orders"].proc.wait(timeout=5) != 0
    assert any(line["msg"] == "crashing as asked" for line in pods["orders"].lines())
    assert call(gateway.url + "/api/orders")[0] == 502  # orders is gone


def test_crash_on_start_exits_non_zero(shop: dict[str, Any], tmp_path: Path) -> None:
    pod = start_pod("catalog-crash", shop["roots"]["catalog"], shop["images"]["catalog"].config,
                    {"CRASH_ON_START": "1"}, tmp_path)
    assert pod.proc.wait(timeout=10) == 1
    assert pod.lines()[-1]["level"] == "error"


def test_a_meshed_service_outlives_its_sidecars_drain() -> None:
    """A meshed pod's Envoy accepts requests for the app until the agent's drain ends: the app serves longer, or
    those requests get Envoy's 503 (no upstream) instead of an answer, and nothing retries them (HAProxy retries
    only a failed connection)."""
    from labkit.mesh.agent import drain_seconds

    code = ("from shopkit.app import shutdown_delay; "
            "print(shutdown_delay({}), shutdown_delay({'SHUTDOWN_DELAY_SECONDS': '1.5'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=APPS, env={**os.environ, "PYTHONPATH": str(APPS)},
                         capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert float(out[0]) > drain_seconds({}) and float(out[1]) == 1.5


def test_sigterm_keeps_serving_for_the_shutdown_delay_then_exits(tmp_path: Path) -> None:
    """A terminating pod's service says not ready at once but keeps answering for ``SHUTDOWN_DELAY_SECONDS`` (the
    time its endpoint takes to leave the proxies), then stops accepting and exits 0."""
    import signal
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    env = {**os.environ, "PORT": str(port), "POD_NAME": "catalog-x", "SHUTDOWN_DELAY_SECONDS": "1.5",
           "PYTHONPATH": str(APPS)}
    proc = subprocess.Popen([sys.executable, "-m", "catalog"], cwd=APPS, env=env, stdout=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def status(path: str) -> int:
        try:
            with opener.open(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if status("/readyz") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert status("/readyz") == 503 and status("/products") == 200  # not ready, still serving
        assert proc.wait(timeout=10) == 0
        with pytest.raises(OSError):
            status("/products")
    finally:
        proc.kill()
        proc.wait()
