"""What ``helm upgrade --install`` of Harbor's chart (``goharbor/harbor``) runs in the harness: the sim's Harbor
(``python -m labkit.registry``, labkit's OCI distribution + ``/api/v2.0`` emulator) as the release's pods, and the
chart's NodePort Service in the cluster, so that the NodePort reaches it as kube-proxy would reach Harbor's nginx.

The values are checked as far as the harness can honour them: ``expose.type: nodePort`` with TLS off (the only
exposure the sim's nodes can serve), ``expose.nodePort.ports.http.nodePort``, ``externalURL`` naming that port on
localhost (the token realm must be reachable where the NodePort is), ``harborAdminPassword`` (the admin's
password of the stand-in). The Service is selector-less with an Endpoints object at the stand-in's address: the
sim's node proxy serves the NodePort on every node's address, the kind network's relays take the laptop's
published port there (``extraPortMappings``) and containerd's ``localhost:<port>`` (``network.py``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labkit.core.files import write_json
from labkit.core.paths import LabPaths
from labkit.core.secrets import REGISTRY_PASSWORD
from labkit.endpoints import RegistryEndpoint
from labkit.images.harbor import ADMIN

from . import nodeport
from .flags import Failure
from .state import State, python_env

SERVICE = "harbor"


def process_name(cluster: str, namespace: str, release: str) -> str:
    return f"harbor-{cluster}-{namespace}-{release}"


def _values(values: dict[str, Any]) -> tuple[int, str]:
    """(NodePort, admin password) from the chart's values, refused where the harness cannot do what they ask."""
    expose = values.get("expose") or {}
    if expose.get("type") != "nodePort" or (expose.get("tls") or {}).get("enabled", True):
        raise Failure("the kind harness runs Harbor exposed as a plain-HTTP NodePort only (expose.type: nodePort, "
                      "expose.tls.enabled: false)")
    port = (((expose.get("nodePort") or {}).get("ports") or {}).get("http") or {}).get("nodePort")
    if not isinstance(port, int):
        raise Failure("the kind harness needs expose.nodePort.ports.http.nodePort: the NodePort it serves Harbor on")
    url = urlsplit(str(values.get("externalURL") or ""))
    if url.scheme != "http" or url.hostname not in ("localhost", "127.0.0.1") or url.port != port:
        raise Failure(f"externalURL {values.get('externalURL')!r} is not http://localhost:{port}: Harbor's token "
                      "realm would not be reachable where its NodePort is (the harness serves nothing else)")
    password = values.get("harborAdminPassword")
    if not password:
        raise Failure("the kind harness needs harborAdminPassword (the chart's default is a well-known password)")
    return port, str(password)


def _address(log: Path, pid_alive: Any, timeout: float = 60) -> tuple[str, int]:
    """Where the stand-in listens: the endpoint line it prints once serving."""
    url = urlsplit(announced(log, pid_alive, "Harbor", timeout)["url"])
    return url.hostname or "127.0.0.1", int(url.port or 80)


def announced(log: Path, pid_alive: Any, what: str, timeout: float = 60, key: str = "url") -> dict[str, Any]:
    """The JSON line (with ``key``) a stand-in prints once serving."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if line.startswith("{") and f'"{key}"' in line:
                return json.loads(line)
        if not pid_alive():
            raise Failure(f"INSTALLATION FAILED: the {what} stand-in exited: {log.read_text()[-800:]}")
        time.sleep(0.2)
    raise Failure(f"INSTALLATION FAILED: the {what} stand-in did not start in {timeout:.0f} s")


def install(state: State, cluster: str, kube_run: Any, namespace: str, release: str, values: dict[str, Any]) -> None:
    """Start (or keep) the stand-in for this release and point the chart's NodePort Service at it."""
    port, password = _values(values)
    name = process_name(cluster, namespace, release)
    home = state.cluster_dir(cluster) / "harbor" / f"{namespace}-{release}"
    secrets = LabPaths(home).secrets
    if state.alive(name) is None:
        home.mkdir(parents=True, exist_ok=True)
        existing = json.loads(secrets.read_text()) if secrets.exists() else {}
        write_json(secrets, {**existing, REGISTRY_PASSWORD: password}, mode=0o600)  # the first install's, kept
        log = state.logs / f"{name}.log"
        log.unlink(missing_ok=True)
        state.spawn(name, [sys.executable, "-m", "labkit.registry", "--home", str(home)], env=python_env())
    host, listen = _address(state.logs / f"{name}.log", lambda: state.alive(name) is not None)
    labels = {"app": "harbor", "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm"}
    nodeport.publish(kube_run, namespace, SERVICE, labels, port, host, listen)


def registry(state: State, cluster: str) -> tuple[RegistryEndpoint, str] | None:
    """The cluster's Harbor stand-in as a pusher from this machine sees it (its own listener), and the admin's
    password: where the harness pushes what the internet's registries would serve (Docker Hub's images); None
    without one (the cluster's nodes then have no Docker Hub, as without internet)."""
    from labkit.core.files import read_json

    names = [e["name"] for e in read_json(state.procs, []) or [] if e["name"].startswith(f"harbor-{cluster}-")
             and state.alive(e["name"]) is not None]
    if not names:
        return None
    home = state.cluster_dir(cluster) / "harbor" / names[0].removeprefix(f"harbor-{cluster}-")
    host, listen = _address(state.logs / f"{names[0]}.log", lambda: state.alive(names[0]) is not None)
    url = f"http://{host}:{listen}"
    password = json.loads(LabPaths(home).secrets.read_text())[REGISTRY_PASSWORD]
    return RegistryEndpoint("Harbor", url, push=f"{host}:{listen}", user=ADMIN, api=f"{url}/api/v2.0"), password


def cluster_of(kube_run: Any) -> str:
    """The kind cluster helm's kubeconfig points at (its context is ``kind-<name>``)."""
    context = kube_run("config", "current-context").stdout.strip()
    if not context.startswith("kind-"):
        raise Failure(f"the kind harness installs Harbor into a kind cluster's context (kind-NAME), not {context!r}")
    return context.removeprefix("kind-")


def stop_all(state: State, cluster: str) -> None:
    """Stop every Harbor stand-in of ``cluster`` (``kind delete cluster``)."""
    from labkit.core.files import read_json

    for entry in read_json(state.procs, []) or []:
        if entry["name"].startswith(f"harbor-{cluster}-"):
            state.stop(entry["name"], grace=5.0)
