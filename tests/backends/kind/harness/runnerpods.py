"""What the gitlab-runner chart's Kubernetes executor gives a job pod, for the harness's GitLab stand-in.

The stand-in (labkit's GitLab simulator) runs jobs itself, as host processes. When ``helm`` installs the
``gitlab-runner`` release, this works out from the release's values alone what a job pod of that runner would
have, and hands it to every GitLab container as ``runner-env.json`` (which the simulator's runner reads for each
job): the in-cluster credentials of the job pods' service account (``[runners.kubernetes] service_account``,
a token from the TokenRequest API, the cluster's server and CA from helm's kubeconfig), and the relays of its
``[[runners.kubernetes.services]]`` (socat ``TCP-LISTEN:P`` → ``TCP:host:port``: the pod's ``localhost:P`` is
``host:port`` on kind's network, resolved as Docker's network resolves container names).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from labkit.core.files import write_atomic

from . import containers
from .flags import Failure
from .state import State

_LISTEN = re.compile(r"^TCP[46]?-LISTEN:(\d+)")
_TARGET = re.compile(r"^TCP[46]?:([^:,]+):(\d+)")


def _runner(values: dict[str, Any]) -> dict[str, Any]:
    text = ((values.get("runners") or {}).get("config")) or ""
    try:
        runners = tomllib.loads(text).get("runners") or [{}]
    except tomllib.TOMLDecodeError as err:
        raise Failure(f"gitlab-runner: runners.config is not valid TOML: {err}") from None
    return runners[0].get("kubernetes") or {}


_SERVICE = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$")


def _service(kube_run: Any, name: str, namespace: str, port: int) -> tuple[str, int] | None:
    """Where a Service's ``port`` leads (its ready endpoint), as kube-proxy takes a pod's connection there."""
    res = kube_run("get", "service,endpoints", name, "-n", namespace, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    items = {i["kind"]: i for i in json.loads(res.stdout).get("items", [])}
    spec = next((p for p in items.get("Service", {}).get("spec", {}).get("ports", []) if p.get("port") == port), None)
    if spec is None:
        return None
    return next(((a["ip"], int(p["port"])) for s in items.get("Endpoints", {}).get("subsets") or []
                 for a in s.get("addresses") or [] for p in s.get("ports") or []
                 if p.get("name", "") == spec.get("name", "")), None)


def relays(state: State, kube: dict[str, Any], kube_run: Any = None) -> dict[str, str]:
    """``localhost:P`` → the registry URL behind it, for each socat relay of the job pods to a running registry
    (a registry container, or a Service of the cluster: Harbor's) — a relay to another container published on
    the same loopback port, GitLab's, needs nothing here."""
    out = {}
    for service in kube.get("services") or []:
        command = service.get("command") or []
        listen = next((m for a in command if (m := _LISTEN.match(a))), None)
        target = next((m for a in command if (m := _TARGET.match(a))), None)
        if not (listen and target):
            raise Failure(f"the kind harness runs job pod services that relay TCP (socat TCP-LISTEN → TCP) only, "
                          f"not {service.get('name')} {command}")
        service = _SERVICE.match(target[1])
        if service and kube_run is not None:
            found = _service(kube_run, service[1], service[2], int(target[2]))
            if found is not None:
                out[f"localhost:{listen[1]}"] = f"http://{found[0]}:{found[1]}"
            continue
        found = containers.resolve(state, target[1], int(target[2]))
        if found is None:  # as in a pod, the relay has nothing to connect to
            continue
        container = state.containers().get(target[1]) or {}
        if container and containers.image_kind(container["image"]) == "registry":
            out[f"localhost:{listen[1]}"] = f"http://{found[0]}:{found[1]}"
        elif found != ("127.0.0.1", int(listen[1])):  # the job's processes share the host's loopback
            raise Failure(f"the kind harness relays a job pod's localhost:{listen[1]} to a registry, or to a "
                          f"container published on that same port; {target[1]}:{target[2]} is at "
                          f"{found[0]}:{found[1]}")
    return out


def pod_kubeconfig(kube_run: Any, namespace: str, account: str) -> dict[str, Any]:
    """The in-cluster kubeconfig of a pod under ``namespace/account``: the cluster's server and CA, its token."""
    cluster = json.loads(kube_run("config", "view", "--raw", "--minify", "-o", "json").stdout)["clusters"][0]
    token = kube_run("create", "token", account, "-n", namespace, "--duration=24h").stdout.strip()
    return {"apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
            "clusters": [{"name": "in-cluster", "cluster": cluster["cluster"]}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": account,
                                                            "namespace": namespace}}]}


def provide(state: State, kube_run: Any, values: dict[str, Any]) -> list[Path]:
    """Write ``runner-env.json`` (and the pod's kubeconfig) for every GitLab container; their paths."""
    kube = _runner(values)
    namespace, account = kube.get("namespace") or "default", kube.get("service_account") or "default"
    written = []
    for name, container in state.containers().items():
        if containers.image_kind(container["image"]) != "gitlab":
            continue
        home = containers.folder(state, name)
        home.mkdir(parents=True, exist_ok=True)
        kubeconfig = home / "job-pod-kubeconfig"
        write_atomic(kubeconfig, yaml.safe_dump(pod_kubeconfig(kube_run, namespace, account)), mode=0o600)
        hosts = relays(state, kube, kube_run)
        env = {"KUBECONFIG": str(kubeconfig)}
        if hosts:
            env["LABKIT_REGISTRY_HOSTS"] = ",".join(f"{h}={u}" for h, u in hosts.items())
        write_atomic(runner_env(home), json.dumps({"env": env}, indent=1))
        written.append(runner_env(home))
    return written


def runner_env(home: Path) -> Path:
    return home / "runner-env.json"
