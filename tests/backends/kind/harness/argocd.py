"""What ``helm upgrade --install`` of Argo CD's chart (``argo/argo-cd``) runs in the harness: the sim's Argo CD
(``python -m labkit.argocd``: its API server and Application controller) as the release's pods, over the cluster
helm installs into, and the chart's ``argocd-server`` NodePort Service pointing at it.

The values are checked as far as the harness can honour them: ``server.service.type: NodePort`` with
``nodePortHttp``, ``configs.params.server.insecure`` (plain HTTP, the only way the stand-in serves), and
``configs.secret.gitlabSecret`` becomes the stand-in's ``webhook.gitlab.secret``. The repo server's view of the
kind network: repoURLs name the GitLab container (``http://<cluster>-gitlab:<port>/...``); the stand-in is a
process on this machine, so git's own ``url.<base>.insteadOf`` maps each GitLab container's name to where the
harness serves that container, as Docker's DNS resolves the name for a pod.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from labkit.argocd.component import WEBHOOK_SECRET
from labkit.core.files import write_json
from labkit.core.paths import LabPaths

from . import nodeport
from .flags import Failure
from .harbor import _address
from .state import State, python_env

SERVICE = "argocd-server"


def process_name(cluster: str, namespace: str, release: str) -> str:
    return f"argocd-{cluster}-{namespace}-{release}"


def _values(values: dict[str, Any]) -> tuple[int, str]:
    """(NodePort, GitLab webhook secret), refused where the harness cannot do what the values ask."""
    service = (values.get("server") or {}).get("service") or {}
    if service.get("type") != "NodePort" or not isinstance(service.get("nodePortHttp"), int):
        raise Failure("the kind harness serves Argo CD as a NodePort only (server.service.type: NodePort, "
                      "server.service.nodePortHttp)")
    configs = values.get("configs") or {}
    if (configs.get("params") or {}).get("server.insecure") is not True:
        raise Failure("the kind harness serves Argo CD's API over plain HTTP only (configs.params.server.insecure)")
    return int(service["nodePortHttp"]), str((configs.get("secret") or {}).get("gitlabSecret") or "")


def git_env(state: State) -> dict[str, str]:
    """git's ``url.<where>.insteadOf <name>`` for each GitLab container of the harness (GIT_CONFIG_* variables)."""
    env: dict[str, str] = {}
    pairs = []
    for name, container in state.containers().items():
        for port, address in (container.get("addresses") or {}).items():
            if name.endswith("-gitlab") and address:
                pairs.append((f"http://{address[0]}:{address[1]}/", f"http://{name}:{port}/"))
    for i, (where, name) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = f"url.{where}.insteadOf", name
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    return env


def install(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str,
            values: dict[str, Any]) -> None:
    """Start (or keep) the stand-in for this release and point the chart's NodePort Service at it."""
    port, webhook_secret = _values(values)
    name = process_name(cluster, namespace, release)
    home = state.cluster_dir(cluster) / "argocd" / f"{namespace}-{release}"
    if state.alive(name) is None:
        home.mkdir(parents=True, exist_ok=True)
        secrets = LabPaths(home).secrets
        existing = json.loads(secrets.read_text()) if secrets.exists() else {}
        if webhook_secret:
            existing[WEBHOOK_SECRET] = webhook_secret
        write_json(secrets, existing, mode=0o600)
        log = state.logs / f"{name}.log"
        log.unlink(missing_ok=True)
        state.spawn(name, [sys.executable, "-m", "labkit.argocd", "--home", str(home), "--kubeconfig", kubeconfig],
                    env=python_env(**git_env(state)))
    host, listen = _address(state.logs / f"{name}.log", lambda: state.alive(name) is not None)
    labels = {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/instance": release,
              "app.kubernetes.io/part-of": "argocd", "app.kubernetes.io/managed-by": "Helm"}
    nodeport.publish(kube_run, namespace, SERVICE, labels, port, host, listen)


def stop_all(state: State, cluster: str) -> None:
    """Stop every Argo CD stand-in of ``cluster`` (``kind delete cluster``)."""
    from labkit.core.files import read_json

    for entry in read_json(state.procs, []) or []:
        if entry["name"].startswith(f"argocd-{cluster}-"):
            state.stop(entry["name"], grace=5.0)
