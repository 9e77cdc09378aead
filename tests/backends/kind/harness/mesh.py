"""What ``helm upgrade --install`` of the mesh's charts runs in the harness.

* Istio's ``base``: Istio's CRDs into the cluster, as the chart does: the ones the sim serves
  (``labkit.mesh.crds.install``) and the ``Telemetry`` CRD of the same release (``schemas/``).
* jaegertracing's ``jaeger`` (4.x, Jaeger v2 all-in-one): ``python -m labkit.mesh.jaeger`` as the release's pod, behind
  the chart's Service (its fullname, ``jaeger.service.type``) with the ports the stand-in serves: ``http-query``
  (16686) and ``otlp-http`` (4318). The values' ``userconfig`` must be what the stand-in is: memory storage, the OTLP
  HTTP receiver on 4318, the query on 16686.
* Istio's ``istiod``: the sim's istiod (``python -m labkit.mesh.istiod``: it writes its own ``istiod`` Service) against
  the cluster, its sidecars tracing to the endpoint of the Service the values' ``opentelemetry`` extension provider
  names (cluster DNS and kube-proxy's part), always at 100 % (what the part's ``Telemetry`` asks; the stand-in does
  not read Telemetry resources). Its injection template's image, ``docker.io/istio/proxyv2``, is the sim's
  (``labkit.mesh.component.publish_proxy_image``), pushed to the cluster's Harbor stand-in, from which the harness's
  nodes pull Docker Hub's images (``kind.py``: the harness has no internet); without Harbor in the cluster the
  sidecars' image cannot be pulled.
* Istio's ``gateway``: the values checked against the chart's own ``values.schema.json`` (as helm checks them), then
  the chart's ServiceAccount, Service and Deployment. Not stood in for: its pod's image is ``auto``, which istiod's
  gateway injection template replaces on a real cluster; here the pod waits in ImagePullBackOff.
* ``kiali-server``: its values must name Prometheus and Jaeger by their cluster Services, Jaeger's existing with that
  port; its pod is the harness's Kiali (``kiali.py``: Kiali's graph API over the Prometheus the values name), behind
  the chart's Service ``kiali`` (a NodePort on ``server.node_port``, which the lab publishes).
"""

from __future__ import annotations

import json
import socket
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from labkit.core.files import read_json
from labkit.mesh.component import publish_proxy_image

from . import harbor
from .flags import Failure
from .harbor import announced
from .logging import SERVICE_NAME
from .nodeport import Port, publish_ports
from .state import State, python_env, wait_for

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
TELEMETRY_CRD = SCHEMAS / "istio-1.27.9-telemetries.telemetry.istio.io.yaml"
GATEWAY_SCHEMA = SCHEMAS / "istio-gateway-1.27.9.values.schema.json"
CHARTS = ("base", "istiod", "gateway", "jaeger", "kiali-server")
QUERY, OTLP_HTTP = 16686, 4318
KIALI_PORT = 20001  # the kiali-server chart's Service port (server.port)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(kind: str, cluster: str, namespace: str, release: str) -> str:
    return f"{kind}-{cluster}-{namespace}-{release}"


def install(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str, chart: str,
            values: dict[str, Any]) -> None:
    """The stand-in (or the checks) for one release of a mesh chart."""
    if chart == "base":
        install_base(kubeconfig)
    elif chart == "jaeger":
        install_jaeger(state, cluster, kube_run, namespace, release, values)
    elif chart == "istiod":
        install_istiod(state, cluster, kube_run, kubeconfig, namespace, release, values)
    elif chart == "gateway":
        install_gateway(kube_run, namespace, release, values)
    else:
        check_kiali(kube_run, values)
        install_kiali(state, cluster, kube_run, kubeconfig, namespace, release, values)


def install_base(kubeconfig: str) -> None:
    """Istio's CRDs, as the base chart installs them: the sim's (``labkit.mesh.crds``) and Telemetry's."""
    from kubernetes.client import ApiextensionsV1Api
    from kubernetes.client.rest import ApiException
    from kubernetes.config import new_client_from_config

    from labkit.mesh import crds

    telemetry = yaml.safe_load(TELEMETRY_CRD.read_text())
    name = telemetry["metadata"]["name"]
    with new_client_from_config(config_file=kubeconfig) as client:
        crds.install(client)
        api = ApiextensionsV1Api(client)
        try:
            api.create_custom_resource_definition(telemetry)
        except ApiException as err:
            if err.status != 409:  # already there: an upgrade of the release
                raise Failure(f"the CRD {name}: {err.reason} {err.body}") from None

        def established() -> bool:
            conditions = api.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        if not wait_for(established, 30, 0.1):
            raise Failure(f"the CRD {name} was not Established in 30 s")


def jaeger_ports(values: dict[str, Any]) -> None:
    """Refuse a Jaeger configuration the stand-in is not: memory storage, OTLP/HTTP on 4318, the query on 16686."""
    config = values.get("userconfig") or {}
    if not config:
        return  # the image's own all-in-one configuration: memory storage, every receiver on its default port
    ext = config.get("extensions") or {}
    backends = (ext.get("jaeger_storage") or {}).get("backends") or {}
    traces = ((ext.get("jaeger_query") or {}).get("storage") or {}).get("traces")
    if traces not in backends or "memory" not in (backends[traces] or {}):
        raise Failure("the kind harness runs Jaeger with its memory storage only (userconfig: jaeger_query's "
                      f"storage.traces {traces!r} is not a memory backend of jaeger_storage)")
    http = ((((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("http") or {})
    pipeline = (((config.get("service") or {}).get("pipelines") or {}).get("traces") or {})
    if not str(http.get("endpoint", "")).endswith(f":{OTLP_HTTP}") or "otlp" not in (pipeline.get("receivers") or []):
        raise Failure(f"the kind harness stands in for Jaeger's OTLP/HTTP receiver on {OTLP_HTTP} (userconfig: "
                      "receivers.otlp.protocols.http.endpoint, and otlp among the traces pipeline's receivers)")
    query = str(((ext.get("jaeger_query") or {}).get("http") or {}).get("endpoint", f":{QUERY}"))
    if not query.endswith(f":{QUERY}"):
        raise Failure(f"the kind harness serves Jaeger's query on {QUERY} only (jaeger_query.http.endpoint {query})")


def jaeger_fullname(release: str, values: dict[str, Any]) -> str:
    """The chart's ``jaeger.fullname``."""
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:63].rstrip("-")
    name = str(values.get("nameOverride") or "jaeger")
    return (release if name in release else f"{release}-{name}")[:63].rstrip("-")


def install_jaeger(state: State, cluster: str, kube_run: Any, namespace: str, release: str,
                   values: dict[str, Any]) -> None:
    """Start (or keep) the Jaeger stand-in and point the chart's Service at it."""
    jaeger_ports(values)
    name = _process("jaeger", cluster, namespace, release)
    home = state.cluster_dir(cluster) / "jaeger" / f"{namespace}-{release}"
    log = state.logs / f"{name}.log"
    if state.alive(name) is None:
        home.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        state.spawn(name, [sys.executable, "-m", "labkit.mesh.jaeger", "--home", str(home)], env=python_env())
    served = announced(log, lambda: state.alive(name) is not None, "Jaeger")
    query, otlp = urlsplit(served["url"]), urlsplit(served["otlp"])
    labels = {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": release,
              "app.kubernetes.io/component": "all-in-one", "app.kubernetes.io/managed-by": "Helm"}
    kind = ((values.get("jaeger") or {}).get("service") or {}).get("type") or "ClusterIP"
    publish_ports(kube_run, namespace, jaeger_fullname(release, values), labels, query.hostname or "127.0.0.1",
                  [Port("otlp-http", OTLP_HTTP, OTLP_HTTP, None, int(otlp.port or 0)),
                   Port("http-query", QUERY, QUERY, None, int(query.port or 0))], kind=kind)


def service_endpoint(kube_run: Any, host: str, port: int) -> tuple[str, int]:
    """The endpoint (address, port) behind a Service's DNS name and port: cluster DNS and kube-proxy's part."""
    m = SERVICE_NAME.match(host)
    if not m:
        raise Failure(f"{host} is not a cluster Service's name (<service>.<namespace>.svc[.cluster.local])")
    res = kube_run("get", f"service/{m.group(1)}", f"endpoints/{m.group(1)}", "-n", m.group(2), "-o", "json",
                   check=False)
    if res.returncode != 0:
        raise Failure(f"{host}: no such Service in the cluster")
    svc, eps = json.loads(res.stdout)["items"]
    names = [p.get("name", "") for p in svc["spec"].get("ports") or [] if p["port"] == port]
    subsets = eps.get("subsets") or []
    if not names or not subsets or not subsets[0].get("addresses"):
        raise Failure(f"{host}:{port}: the Service has no such port or no ready endpoint")
    by_name = {p.get("name", ""): p["port"] for p in subsets[0].get("ports") or []}
    return subsets[0]["addresses"][0]["ip"], int(by_name[names[0]])


def tracing_provider(values: dict[str, Any]) -> tuple[str, int]:
    """(service, port) of the values' OpenTelemetry extension provider, refused where the stand-in differs."""
    if (values.get("replicaCount") or 1) != 1 or values.get("autoscaleEnabled", True) is not False:
        raise Failure("the kind harness runs one istiod (replicaCount: 1, autoscaleEnabled: false)")
    if ((values.get("global") or {}).get("proxy") or {}).get("tracer", "none") != "none":
        raise Failure("the kind harness's sidecars trace through an OpenTelemetry extension provider only "
                      "(global.proxy.tracer: none)")
    mesh = values.get("meshConfig") or {}
    providers = [p for p in mesh.get("extensionProviders") or [] if "opentelemetry" in p]
    if len(providers) != 1:
        raise Failure("the kind harness needs one opentelemetry provider in meshConfig.extensionProviders (found "
                      f"{len(providers)})")
    otel = providers[0]["opentelemetry"]
    if "http" not in otel:
        raise Failure("the sim's Envoys export spans over OTLP/HTTP only: the opentelemetry provider needs its "
                      "http settings (OTLP/gRPC is not supported by the labkit simulator)")
    return str(otel.get("service", "")), int(otel.get("port", 0))


def install_istiod(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str,
                   values: dict[str, Any]) -> None:
    """(Re)start the sim's istiod for this release, its sidecars tracing where the values' provider points."""
    host, port = tracing_provider(values)
    ip, listen = service_endpoint(kube_run, host, port)
    hub = harbor.registry(state, cluster)
    if hub is not None:  # Docker Hub's istio/proxyv2, as the harness serves it
        publish_proxy_image(*hub)
    name = _process("istiod", cluster, namespace, release)
    folder = state.cluster_dir(cluster) / "istiod" / f"{namespace}-{release}"
    folder.mkdir(parents=True, exist_ok=True)
    if state.alive(name) is not None:
        state.stop(name, grace=10.0)
    log = state.logs / f"{name}.log"
    log.unlink(missing_ok=True)
    state.spawn(name, [sys.executable, "-m", "labkit.mesh.istiod", "--kubeconfig", kubeconfig, "--state",
                       str(folder / "xds"), "--listen", f"127.0.0.1:{_free_port()}", "--otlp",
                       f"http://{ip}:{listen}"], env=python_env())
    announced(log, lambda: state.alive(name) is not None, "istiod", key="istiod")


@cache
def _gateway_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(GATEWAY_SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)


def check_gateway(values: dict[str, Any]) -> None:
    """The chart's schema check, worded as helm words it."""
    errors = sorted(_gateway_validator().iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n".join(f"- at '/{'/'.join(map(str, e.absolute_path))}': {e.message}" for e in errors)
        raise Failure("values don't meet the specifications of the schema(s) in the following chart(s):\n"
                      f"gateway:\n{lines}")


def install_gateway(kube_run: Any, namespace: str, release: str, values: dict[str, Any]) -> None:
    """The gateway chart's ServiceAccount, Service and Deployment (its pods are not stood in for)."""
    check_gateway(values)
    name = str(values.get("name") or release)
    selector = {"app": name, "istio": name.removeprefix("istio-")}
    meta = {"name": name, "namespace": namespace, "labels": {**selector, "app.kubernetes.io/managed-by": "Helm"}}
    service = values.get("service") or {}
    ports = service.get("ports") or [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021}]
    pod_annotations = {"inject.istio.io/templates": "gateway", "sidecar.istio.io/inject": "true",
                       **(values.get("podAnnotations") or {})}
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"type": service.get("type") or "LoadBalancer", "selector": selector, "ports": ports}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": int(values.get("replicaCount") or 1), "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": {**selector, "sidecar.istio.io/inject": "true"},
                                      "annotations": pod_annotations},
                         "spec": {"serviceAccountName": name, "containers": [{
                             "name": "istio-proxy", "image": "auto",
                             "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
                             "resources": values.get("resources") or {}}]}}}},
    ]
    kube_run("apply", "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in objects))


def _service_of(url: str, what: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not SERVICE_NAME.match(parts.hostname):
        raise Failure(f"Kiali's {what} URL {url!r} does not name a cluster Service (http://<svc>.<ns>.svc:<port>)")
    return parts.hostname, int(parts.port or (443 if parts.scheme == "https" else 80))


def check_kiali(kube_run: Any, values: dict[str, Any]) -> None:
    """Kiali's values name a Prometheus and a Jaeger query by their cluster Services, Jaeger's (installed before it)
    existing with that port. Kiali starts without a reachable Prometheus (it reports it), so that one's existence is
    not required; Kiali itself is not stood in for."""
    services = values.get("external_services") or {}
    _service_of(str((services.get("prometheus") or {}).get("url") or ""), "prometheus")
    tracing = services.get("tracing") or {}
    if tracing.get("enabled"):
        url = str(tracing.get("internal_url") or "")
        host, port = _service_of(url, "tracing")
        m = SERVICE_NAME.match(host)
        assert m
        res = kube_run("get", "service", m.group(1), "-n", m.group(2), "-o", "json", check=False)
        if res.returncode != 0:
            raise Failure(f"Kiali's values name the service {m.group(2)}/{m.group(1)} (tracing), which does not "
                          "exist (install the jaeger chart first)")
        if port not in [p["port"] for p in json.loads(res.stdout)["spec"].get("ports") or []]:
            raise Failure(f"Kiali's tracing URL {url} names port {port}, which the service does not have")
    if (values.get("deployment") or {}).get("service_type") == "NodePort" and \
            not isinstance((values.get("server") or {}).get("node_port"), int):
        raise Failure("Kiali as a NodePort needs server.node_port (the port the lab publishes)")


def install_kiali(state: State, cluster: str, kube_run: Any, kubeconfig: str, namespace: str, release: str,
                  values: dict[str, Any]) -> None:
    """(Re)start the Kiali stand-in (``kiali.py``) with the values' Prometheus, behind the chart's Service ``kiali``
    (port 20001), a NodePort on ``server.node_port`` where the values ask for one."""
    name = _process("kiali", cluster, namespace, release)
    if state.alive(name) is not None:
        state.stop(name, grace=5.0)
    log = state.logs / f"{name}.log"
    log.unlink(missing_ok=True)
    prometheus = str(values["external_services"]["prometheus"]["url"])
    state.spawn(name, [sys.executable, "-m", "tests.backends.kind.harness.kiali", "--kubeconfig", kubeconfig,
                       "--prometheus", prometheus, "--listen", f"127.0.0.1:{_free_port()}"], env=python_env())
    served = urlsplit(announced(log, lambda: state.alive(name) is not None, "Kiali")["url"])
    kind = (values.get("deployment") or {}).get("service_type") or "ClusterIP"
    node_port = (values.get("server") or {}).get("node_port") if kind == "NodePort" else None
    labels = {"app": "kiali", "app.kubernetes.io/name": "kiali", "app.kubernetes.io/instance": release,
              "app.kubernetes.io/managed-by": "Helm"}
    publish_ports(kube_run, namespace, "kiali", labels, served.hostname or "127.0.0.1",
                  [Port("http", KIALI_PORT, KIALI_PORT, node_port, int(served.port or 0))], kind=kind)


def stop_all(state: State, cluster: str) -> None:
    """Stop every mesh stand-in of ``cluster`` (``kind delete cluster``)."""
    for entry in read_json(state.procs, []) or []:
        if entry["name"].startswith((f"istiod-{cluster}-", f"jaeger-{cluster}-", f"kiali-{cluster}-")):
            state.stop(entry["name"], grace=5.0)
