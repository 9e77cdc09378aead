"""What ``helm upgrade --install`` of the logging charts runs in the harness.

* Elastic's ``elasticsearch`` chart: the sim's Elasticsearch (``python -m labkit.logging --tls ...``, HTTPS with a
  certificate of its own CA, as the chart's ``createCert``) as the release's pod, the chart's Secrets
  ``<uname>-credentials`` (``username``/``password``: ``secret.password``, or one generated as the chart does) and
  ``<uname>-certs`` (``ca.crt``/``tls.crt``/``tls.key``), and its NodePort Service pointing at it.
* the ``fluent-bit`` chart: one ``python -m labkit.logging.fluentbit`` per node of the cluster, running the config
  file the values' ``args`` name from ``config.extraFiles`` over that node's ``/var/log`` (the sim lab's kubelets
  write the CRI logs there), in the node's network (``hostNetwork``: its monitoring API on the node's address and
  ``metricsPort``), with the values' ``env`` (``value`` or a Secret's key). A host-network pod reaches a Service by
  its DNS name through cluster DNS and kube-proxy; the stand-in is a process outside the sim lab's Service network,
  so a value naming a Service (``<svc>.<ns>.svc``) becomes its endpoint's address and a value equal to that
  Service's port its endpoint's port — what kube-proxy would translate.
* Elastic's ``kibana`` chart: not stood in for (the lab draws the Kibana-style views itself): its values are checked
  against the Elasticsearch release (its Service and Secrets must exist), its Service is not published.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import string
import sys
from typing import Any

import requests

from labkit.core.files import read_json, write_json
from labkit.core.paths import LabPaths
from labkit.logging.component import ELASTIC_PASSWORD

from . import nodeport, simlab
from .flags import Failure
from .harbor import _address
from .state import KUBECTL_ENV, State, python_env, wait_for

ES_UNAME = "elasticsearch-master"  # clusterName-nodeGroup, the chart's defaults
SERVICE_NAME = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?$")
CONFIG_ARG = "--config=/fluent-bit/etc/conf/"


def _process(kind: str, cluster: str, namespace: str, release: str, node: str = "") -> str:
    return f"{kind}-{cluster}-{namespace}-{release}" + (f"-{node}" if node else "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _apply(kube_run: Any, obj: dict[str, Any]) -> None:
    kube_run("apply", "-f", "-", stdin=json.dumps(obj))


def _secret(namespace: str, name: str, data: dict[str, bytes], kind: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind, "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def elasticsearch_values(values: dict[str, Any]) -> tuple[int, str]:
    """(NodePort, the values' password or ""), refused where the harness cannot do what the values ask."""
    service = values.get("service") or {}
    if service.get("type") != "NodePort" or not isinstance(service.get("nodePort"), int):
        raise Failure("the kind harness serves Elasticsearch as a NodePort only (service.type: NodePort, "
                      "service.nodePort)")
    if int(values.get("replicas", 3)) != 1:
        raise Failure("the kind harness runs a single Elasticsearch node only (replicas: 1)")
    if values.get("protocol", "https") != "https" or values.get("createCert", True) is not True:
        raise Failure("the kind harness serves Elasticsearch as the chart does by default only (protocol: https, "
                      "createCert: true)")
    secret = values.get("secret") or {}
    if secret.get("enabled", True) is not True:
        raise Failure("the kind harness needs the chart's credentials Secret (secret.enabled: true)")
    return int(service["nodePort"]), str(secret.get("password") or "")


def install_elasticsearch(state: State, cluster: str, kube_run: Any, namespace: str, release: str,
                          values: dict[str, Any]) -> None:
    """Start (or keep) the Elasticsearch stand-in, write the chart's Secrets and point its NodePort Service at it."""
    port, wanted = elasticsearch_values(values)
    name = _process("elasticsearch", cluster, namespace, release)
    home = state.cluster_dir(cluster) / "elasticsearch" / f"{namespace}-{release}"
    paths = LabPaths(home)
    if state.alive(name) is None:
        home.mkdir(parents=True, exist_ok=True)
        existing = json.loads(paths.secrets.read_text()) if paths.secrets.exists() else {}
        generated = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))  # randAlphaNum
        password = wanted or existing.get(ELASTIC_PASSWORD) or generated
        write_json(paths.secrets, {**existing, ELASTIC_PASSWORD: password}, mode=0o600)
        log = state.logs / f"{name}.log"
        log.unlink(missing_ok=True)
        names = [ES_UNAME, f"{ES_UNAME}.{namespace}", f"{ES_UNAME}.{namespace}.svc", "localhost"]
        state.spawn(name, [sys.executable, "-m", "labkit.logging", "--home", str(home),
                           "--listen", f"127.0.0.1:{_free_port()}", "--tls", ",".join(names)], env=python_env())
    host, listen = _address(state.logs / f"{name}.log", lambda: state.alive(name) is not None)
    password = json.loads(paths.secrets.read_text())[ELASTIC_PASSWORD]
    _apply(kube_run, _secret(namespace, f"{ES_UNAME}-credentials",
                             {"username": b"elastic", "password": password.encode()}))
    _apply(kube_run, _secret(namespace, f"{ES_UNAME}-certs",
                             {"ca.crt": (paths.tls / "ca.crt").read_bytes(),
                              "tls.crt": (paths.tls / "elasticsearch.crt").read_bytes(),
                              "tls.key": (paths.tls / "elasticsearch.key").read_bytes()}, "kubernetes.io/tls"))
    labels = {"app": ES_UNAME, "chart": "elasticsearch", "release": release, "heritage": "Helm"}
    nodeport.publish(kube_run, namespace, ES_UNAME, labels, port, host, listen, port=9200, target_port=9200)


def check_kibana(kube_run: Any, namespace: str, values: dict[str, Any]) -> None:
    """Kibana's values name an Elasticsearch Service and Secrets that exist (Kibana itself is not stood in for)."""
    hosts = str(values.get("elasticsearchHosts") or "https://elasticsearch-master:9200")
    match = re.match(r"^https?://([^:/]+)", hosts)
    service = match.group(1).split(".")[0] if match else ""
    for kind, obj in (("service", service),
                      ("secret", values.get("elasticsearchCredentialSecret") or f"{ES_UNAME}-credentials"),
                      ("secret", values.get("elasticsearchCertificateSecret") or f"{ES_UNAME}-certs")):
        if kube_run("get", kind, obj, "-n", namespace, check=False).returncode != 0:
            raise Failure(f"Kibana's values name the {kind} {namespace}/{obj}, which does not exist (install the "
                          "elasticsearch chart first)")


def _secret_key(kube_run: Any, namespace: str, ref: dict[str, Any]) -> str:
    res = kube_run("get", "secret", ref.get("name", ""), "-n", namespace, "-o", "json", check=False)
    data = (json.loads(res.stdout).get("data") or {}) if res.returncode == 0 else {}
    if ref.get("key") not in data:
        raise Failure(f"the fluent-bit pods would not start: secret {ref.get('name')!r} or its key "
                      f"{ref.get('key')!r} not found in {namespace}")
    return base64.b64decode(data[ref["key"]]).decode()


def _through_services(kube_run: Any, env: dict[str, str]) -> dict[str, str]:
    """Values naming a Service (and its port) as the Service's endpoint — cluster DNS and kube-proxy's part."""
    out, ports = dict(env), {}
    for key, value in env.items():  # names first
        m = SERVICE_NAME.match(value)
        if not m:
            continue
        svc = kube_run("get", "service", m.group(1), "-n", m.group(2), "-o", "json", check=False)
        eps = kube_run("get", "endpoints", m.group(1), "-n", m.group(2), "-o", "json", check=False)
        if svc.returncode != 0 or eps.returncode != 0:
            raise Failure(f"{key}={value}: no such Service in the cluster")
        subsets = json.loads(eps.stdout).get("subsets") or []
        if not subsets or not subsets[0].get("addresses"):
            raise Failure(f"{key}={value}: the Service has no ready endpoint")
        out[key] = subsets[0]["addresses"][0]["ip"]
        by_name = {p.get("name", ""): p["port"] for p in subsets[0].get("ports") or []}
        for p in json.loads(svc.stdout)["spec"].get("ports") or []:
            if p.get("name", "") in by_name:
                ports[str(p["port"])] = str(by_name[p.get("name", "")])
    return {k: v if SERVICE_NAME.match(env[k]) else ports.get(v, v) for k, v in out.items()}  # then their ports


def fluent_bit_config(values: dict[str, Any]) -> tuple[str, str]:
    """(file name, text) of the config the values' ``args`` run, refused where the harness cannot run it."""
    if values.get("hostNetwork") is not True:
        raise Failure("the kind harness runs Fluent Bit in the node's network only (hostNetwork: true), where each "
                      "node's monitoring API is published")
    args = values.get("args") or []
    chosen = next((a.removeprefix(CONFIG_ARG) for a in args if str(a).startswith(CONFIG_ARG)), "fluent-bit.conf")
    files = (values.get("config") or {}).get("extraFiles") or {}
    if chosen not in files:
        raise Failure(f"the kind harness runs a configuration file of config.extraFiles only (args: {CONFIG_ARG}"
                      f"{chosen}; extraFiles: {', '.join(files) or 'none'})")
    return chosen, str(files[chosen])


def install_fluent_bit(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str,
                       values: dict[str, Any]) -> None:
    """(Re)start one collector per node of the cluster with the release's config and environment."""
    file, text = fluent_bit_config(values)
    env: dict[str, str] = {}
    for var in values.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        env[var["name"]] = _secret_key(kube_run, namespace, ref) if ref else str(var.get("value", ""))
    env = _through_services(kube_run, env)
    home = state.cluster_dir(cluster) / "home"
    node_logs = ((read_json(home / "endpoints.json") or {}).get("products", {}).get(simlab.KUBERNETES)
                 or {}).get("node_logs") or {}
    addresses = simlab.node_addresses(home, os.environ.get(KUBECTL_ENV, "kubectl"))
    folder = state.cluster_dir(cluster) / "fluent-bit" / f"{namespace}-{release}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(text)
    port = int(values.get("metricsPort", 2020))
    for node in (*simlab.SERVERS, *simlab.AGENTS):
        if node not in node_logs or node not in addresses:
            raise Failure(f"the sim lab behind the cluster publishes no log folder or address of node {node}")
        name = _process("fluent-bit", cluster, namespace, release, node)
        if state.alive(name) is not None:
            state.stop(name, grace=10.0)  # delivers what it holds; its db keeps the offsets
        state.spawn(name, [sys.executable, "-m", "labkit.logging.fluentbit", "-c", str(folder / file),
                           "--node", node, "--node-dir", node_logs[node], "--kubeconfig", kubeconfig,
                           "--listen", f"{addresses[node]}:{port}"], env=python_env(**env))
        url = f"http://{addresses[node]}:{port}/api/v1/health"

        def healthy(url: str = url, name: str = name, node: str = node) -> bool:
            if state.alive(name) is None:
                raise Failure(f"Fluent Bit on {node} exited: {(state.logs / f'{name}.log').read_text()[-800:]}")
            try:
                return requests.get(url, timeout=2).ok
            except requests.RequestException:
                return False

        if not wait_for(healthy, 60, 0.2):
            raise Failure(f"Fluent Bit on {node} did not serve {url} in 60 s")


def stop_all(state: State, cluster: str) -> None:
    """Stop every logging stand-in of ``cluster`` (``kind delete cluster``)."""
    for entry in read_json(state.procs, []) or []:
        if entry["name"].startswith((f"elasticsearch-{cluster}-", f"fluent-bit-{cluster}-")):
            state.stop(entry["name"], grace=5.0)

