"""Istio's API in the sim's Kubernetes: Istio's published CRDs served (kubectl get/explain, the ``kubernetes``
client in every version spelling), istiod's validating webhook answered as the API server answers a denying webhook
(and the CRDs' CEL rules before it), and the sidecar injector's admission step, seen in the pod spec.

One API server alone (its nodes and controllers too) on loopback in a temporary home, shared by the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.kube.component import KubeApiServer
from labkit.mesh import crds
from labkit.mesh.injection import IMAGE, STATUS_ANNOTATION
from labkit.mesh.validation import check
from labkit.mesh.validation.goerrors import text

from ..components import ComponentLoop
from ..waiting import until

DENIED = 'admission webhook "validation.istio.io" denied the request: configuration is invalid: '


class RunningKube(ComponentLoop):
    def __init__(self, home: Path) -> None:
        super().__init__(home, "kube")
        self.kube = self.start(KubeApiServer(), "kubernetes", "Kubernetes")

    def client(self) -> Any:
        import kubernetes

        return kubernetes.config.new_client_from_config(str(self.ctx.paths.kubeconfig))

    def stop_components(self) -> None:
        self.run(self.kube.stop())


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKube]:
    with RunningKube(tmp_path_factory.mktemp("istio-api") / "home") as running:
        assert sorted(crds.install(running.client())) == sorted(c["metadata"]["name"] for c in crds.crds())
        yield running


def vs(name: str, http: list[dict[str, Any]], version: str = "v1", hosts: tuple[str, ...] = ("catalog",)) -> str:
    return yaml.safe_dump({"apiVersion": f"networking.istio.io/{version}", "kind": "VirtualService",
                           "metadata": {"name": name, "namespace": "default"},
                           "spec": {"hosts": list(hosts), "http": http}})


def dr(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                           "metadata": {"name": name, "namespace": "default"}, "spec": spec})


SPLIT = [{"route": [{"destination": {"host": "catalog", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "catalog", "subset": "v2"}, "weight": 10}]}]


# ------------------------------------------------------------------------------------ the CRDs


def test_install_is_idempotent_and_crds_are_verbatim(kube: RunningKube) -> None:
    assert crds.install(kube.client()) == []  # the same release: nothing replaced
    served = kube.kubectl("get", "crd", "virtualservices.networking.istio.io", "-o", "json")
    crd = json.loads(served.stdout)
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1", "v1alpha3", "v1beta1"]
    assert crd["metadata"]["annotations"][crds.RELEASE_ANNOTATION] == crds.ISTIO_VERSION
    assert crd["spec"]["names"]["shortNames"] == ["vs"]
    resources = kube.kubectl("api-resources", "--api-group=networking.istio.io", "-o", "name").stdout.split()
    assert sorted(resources) == ["destinationrules.networking.istio.io", "gateways.networking.istio.io",
                                 "serviceentries.networking.istio.io", "virtualservices.networking.istio.io"]
    assert "peerauthentications.security.istio.io" in kube.kubectl("api-resources", "-o", "name").stdout


def test_kubectl_explain_reads_istios_schema(kube: RunningKube) -> None:
    out = kube.kubectl("explain", "virtualservice.spec.http.fault.abort").stdout
    assert "networking.istio.io" in out and "httpStatus" in out and "percentage" in out
    out = kube.kubectl("explain", "destinationrules.spec.trafficPolicy.outlierDetection").stdout
    assert "consecutive5xxErrors" in out and "baseEjectionTime" in out


def test_resources_in_every_version_spelling(kube: RunningKube) -> None:
    kube.kubectl("apply", "-f", "-", input=vs("split", SPLIT, "v1beta1") + "---\n" + dr("catalog", {
        "host": "catalog", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                       {"name": "v2", "labels": {"version": "v2"}}],
        "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 3, "interval": "1s",
                                               "baseEjectionTime": "30s", "maxEjectionPercent": 50}}}))
    table = kube.kubectl("get", "vs").stdout
    assert table.split("\n")[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]  # the CRD's printer columns
    assert '["catalog"]' in table.split("\n")[1]
    import kubernetes

    custom = kubernetes.client.CustomObjectsApi(kube.client())
    for version in ("v1", "v1beta1", "v1alpha3"):
        got = custom.get_namespaced_custom_object("networking.istio.io", version, "default", "virtualservices",
                                                  "split")
        assert got["apiVersion"] == f"networking.istio.io/{version}"
        assert [r["weight"] for r in got["spec"]["http"][0]["route"]] == [90, 10]
    rule = custom.get_namespaced_custom_object("networking.istio.io", "v1alpha3", "default", "destinationrules",
                                               "catalog")
    assert rule["spec"]["trafficPolicy"]["outlierDetection"]["baseEjectionTime"] == "30s"


# ------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(("http", "message"), [
    ([{"match": [{"uri": {"prefix": "/"}}]}], "HTTP route, redirect or direct_response is required"),
    ([{"route": [{"destination": {"host": "catalog", "subset": "v1"}, "weight": 0},
                 {"destination": {"host": "catalog", "subset": "v2"}, "weight": 0}]}],
     "total destination weight = 0"),
    ([{"route": [{"destination": {"host": "catalog"}}],
       "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 120}}}}],
     "percentage 120 is neither 0.0, nor in range [0.0001, 100.0]"),
    ([{"route": [{"destination": {"host": "catalog"}}], "retries": {"attempts": 3, "retryOn": "5xx,sometimes"}}],
     '"sometimes" is not a valid retryOn policy'),
])
def test_webhook_denies_as_kubectl_prints_it(kube: RunningKube, http: list[dict[str, Any]], message: str) -> None:
    res = kube.kubectl("apply", "-f", "-", input=vs("bad", http), check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(f'Error from server: error when creating "STDIN": {DENIED}{message}'), res.stderr
    assert kube.kubectl("get", "vs", "bad", check=False).returncode == 1  # nothing stored


def test_several_errors_are_listed_and_client_sees_a_400(kube: RunningKube) -> None:
    import kubernetes

    body = yaml.safe_load(vs("bad", [{"route": [{"destination": {"host": "catalog", "subset": "V_1"}, "weight": -1}],
                                      "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 200}}}}]))
    custom = kubernetes.client.CustomObjectsApi(kube.client())
    with pytest.raises(kubernetes.client.ApiException) as err:
        custom.create_namespaced_custom_object("networking.istio.io", "v1", "default", "virtualservices", body)
    status = json.loads(err.value.body)
    assert err.value.status == 400 and status["code"] == 400 and status["status"] == "Failure"
    assert status["message"] == DENIED + ("3 errors occurred:\n\t* percentage 200 is neither 0.0, nor in range "
                                          "[0.0001, 100.0]\n\t* subset name is invalid: V_1\n\t* weight -1 < 0\n\n")


def test_the_crd_schema_and_its_cel_rules_answer_before_the_webhook(kube: RunningKube) -> None:
    res = kube.kubectl("apply", "-f", "-", check=False, input=vs("nodest", [{"route": [{"weight": 100}]}]))
    assert res.stderr.strip() == \
        'The VirtualService "nodest" is invalid: spec.http[0].route[0].destination: Required value'
    res = kube.kubectl("apply", "-f", "-", check=False, input=vs("slow", [
        {"route": [{"destination": {"host": "catalog"}}], "timeout": "2 seconds"}]))
    assert res.stderr.strip() == ('The VirtualService "slow" is invalid: spec.http[0].timeout: Invalid value: '
                                  "\"string\": type conversion error from 'string' to 'google.protobuf.Duration' "
                                  "evaluating rule: must be a valid duration greater than 1ms")
    res = kube.kubectl("apply", "-f", "-", check=False, input=dr("tiny", {
        "host": "catalog", "trafficPolicy": {"outlierDetection": {"interval": "500us"}}}))
    assert "spec.trafficPolicy.outlierDetection.interval: Invalid value: \"string\": must be a valid duration " \
           "greater than 1ms" in res.stderr
    res = kube.kubectl("apply", "-f", "-", check=False, input=vs("fine", [  # 1.5 ms passes CEL, not istiod
        {"route": [{"destination": {"host": "catalog"}}], "timeout": "1500us"}]))
    assert DENIED + "only durations to ms precision are supported" in res.stderr
    kube.kubectl("apply", "-f", "-", input=vs("timeouts", [
        {"route": [{"destination": {"host": "catalog"}}], "timeout": "1.5s",
         "retries": {"attempts": 2, "perTryTimeout": "500ms"}}]))


def test_destination_rule_checks_and_updates_are_checked_too(kube: RunningKube) -> None:
    res = kube.kubectl("apply", "-f", "-", check=False, input=dr("bad-dr", {
        "host": "catalog", "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v1"}],
        "trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 150}}}))
    assert (DENIED + "2 errors occurred:\n\t* percentage 150 is not in range 0..100\n\t* duplicate subset names: v1"
            ) in res.stderr
    kube.kubectl("apply", "-f", "-", input=vs("edited", SPLIT))
    res = kube.kubectl("patch", "vs", "edited", "--type=json", "-p",
                       '[{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": -5}]', check=False)
    assert DENIED + "weight -5 < 0" in res.stderr


def test_istiods_warnings_reach_kubectl(kube: RunningKube) -> None:
    res = kube.kubectl("apply", "-f", "-", input=vs("catch-all-first", [
        {"route": [{"destination": {"host": "catalog", "subset": "v1"}}]},
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
         "route": [{"destination": {"host": "catalog", "subset": "v2"}}]}]))
    assert "Warning: virtualService rule #1 not used (route without matches defined before)" in res.stderr
    assert "created" in res.stdout


def test_what_the_simulator_does_not_do_is_a_warning(kube: RunningKube) -> None:
    res = kube.kubectl("apply", "-f", "-", input=vs("mirrored", [
        {"route": [{"destination": {"host": "catalog"}}], "mirror": {"host": "catalog-shadow"}}]))
    assert "Warning: spec.http[0].mirror is not supported by the labkit simulator (ignored)" in res.stderr
    res = kube.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "default"}, "spec": {"mtls": {"mode": "STRICT"}}}))
    assert "Warning: mTLS is not supported by the labkit simulator" in res.stderr
    assert "created" in res.stdout
    res = kube.kubectl("apply", "-f", "-", input=dr("plain", {"host": "catalog", "trafficPolicy": {
        "tls": {"mode": "DISABLE"}, "loadBalancer": {"simple": "ROUND_ROBIN"}}}))
    assert "Warning" not in res.stderr


def test_check_covers_the_kinds_without_an_api_server() -> None:
    def err(kind: str, spec: dict[str, Any], name: str = "x") -> str:
        e, _ = check({"kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec})
        return "" if e is None else text(e)

    assert err("VirtualService", {"hosts": ["catalog"], "http": SPLIT}) == ""
    assert err("VirtualService", {"hosts": ["*"], "http": SPLIT}) == \
        "wildcard host * is not allowed for virtual services bound to the mesh gateway"
    assert err("VirtualService", {"hosts": ["catalog"]}) == "http, tcp or tls must be provided in virtual service"
    assert err("VirtualService", {"hosts": ["catalog"], "http": [{"route": [{"destination": {"host": "catalog"}}],
                                                                  "match": [{"uri": {"regex": "(("}}]}]}) == \
        '"uri": error parsing regexp: missing closing ): `((`; Istio uses RE2 style regex-based match ' \
        "(https://github.com/google/re2/wiki/Syntax)"
    assert err("VirtualService", {"hosts": ["catalog"], "http": [{"route": [{"destination": {"host": "catalog"}}],
                                                                  "fault": {}}]}) == \
        "1 error occurred:\n\t* HTTP fault injection must have an abort and/or a delay\n\n"
    assert err("DestinationRule", {"host": "catalog", "trafficPolicy": {}}) == \
        "traffic policy must have at least one field"
    assert err("Gateway", {"servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                                        "hosts": ["*"]}]}, "gw") == \
        "server must have TLS settings for HTTPS/TLS protocols"
    assert err("Gateway", {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                        "hosts": ["shop", "shop/*.example.com"]}]}, "gw") == \
        "short names (non FQDN) are not allowed"
    assert err("VirtualService", {"hosts": ["*"], "gateways": ["shop/gw"], "http": SPLIT}) == ""
    assert err("VirtualService", {"hosts": ["*"], "gateways": ["shop/gw", "mesh"], "http": SPLIT}) == \
        "wildcard host * is not allowed for virtual services bound to the mesh gateway"
    assert err("Gateway", {"servers": []}, "my.gw") == \
        '2 errors occurred:\n\t* invalid gateway name: "my.gw"\n\t* gateway must have at least one server\n\n'
    assert err("ServiceEntry", {"hosts": ["api.example.com"], "resolution": "NONE",
                                "ports": [{"number": 80, "name": "http", "protocol": "HTTP"},
                                          {"number": 80, "name": "http", "protocol": "HTTP"}]}) == \
        '2 errors occurred:\n\t* service entry port name "http" already defined\n\t* service entry port 80 ' \
        "already defined\n\n"
    assert err("PeerAuthentication", {"portLevelMtls": {"8080": {"mode": "DISABLE"}}}) == \
        "mesh/namespace peer authentication cannot have port level mTLS"
    _, warnings = check({"kind": "VirtualService", "metadata": {"name": "w", "namespace": "shop"},
                         "spec": {"hosts": ["catalog"], "http": [{"route": [{"destination": {"host": "catalog"}}],
                                                                  "fault": {"abort": {"percentage": {"value": 5}}}}]}})
    assert warnings == ["abort configured, but error type not set"]


# ------------------------------------------------------------------------------------ injection


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: catalog, namespace: %(ns)s}
spec:
  replicas: 1
  selector: {matchLabels: {app: catalog}}
  template:
    metadata:
      labels: {app: catalog, version: v2}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080", prometheus.io/path: /metrics}
    spec:
      containers:
      - name: catalog
        image: localhost:5001/shop/catalog:1
        ports: [{containerPort: 8080, name: http}]
"""


def _pods(kube: RunningKube, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", ns, "-o", "json"] + (["-l", selector] if selector else [])
    return json.loads(kube.kubectl(*args).stdout)["items"]


def _pod(name: str, ns: str, labels: dict[str, str] | None = None) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns,
                                                                           "labels": labels or {}},
                           "spec": {"containers": [{"name": "app", "image": "localhost:5001/shop/web:1"}]}})


def test_a_labelled_namespace_gets_sidecars(kube: RunningKube) -> None:
    kube.kubectl("create", "namespace", "meshed")
    kube.kubectl("label", "namespace", "meshed", "istio-injection=enabled")
    kube.kubectl("apply", "-f", "-", input=DEPLOY % {"ns": "meshed"})
    pod = until("the Deployment's pod", lambda: _pods(kube, "meshed", "app=catalog"), timeout=30)[0]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert list(containers) == ["catalog", "istio-proxy"]  # a regular container, after the app's
    proxy = containers["istio-proxy"]
    assert proxy["image"] == IMAGE == f"docker.io/istio/proxyv2:{crds.ISTIO_VERSION}"
    assert proxy["args"][:2] == ["proxy", "sidecar"]
    assert {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"} in proxy["ports"]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["ISTIO_META_WORKLOAD_NAME"] == "catalog"
    assert env["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/meshed/deployments/catalog"
    assert env["ISTIO_META_APP_CONTAINERS"] == "catalog"
    assert json.loads(env["ISTIO_META_POD_PORTS"]) == [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]
    assert json.loads(env["ISTIO_PROMETHEUS_ANNOTATIONS"]) == {"scrape": "true", "path": "/metrics", "port": "8080"}
    annotations, labels = pod["metadata"]["annotations"], pod["metadata"]["labels"]
    assert {k: annotations[k] for k in annotations if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus"}
    status = json.loads(annotations[STATUS_ANNOTATION])
    assert status["containers"] == ["istio-proxy"] and status["revision"] == "default"
    assert {v["name"] for v in pod["spec"]["volumes"]} >= set(status["volumes"])
    assert labels["service.istio.io/canonical-name"] == "catalog"
    assert labels["service.istio.io/canonical-revision"] == "v2"
    assert labels["security.istio.io/tlsMode"] == "istio"
    row = kube.kubectl("get", "pods", "-n", "meshed", "--no-headers").stdout.split()
    assert row[1].endswith("/2")  # READY counts the sidecar
    preview = json.loads(kube.kubectl("run", "preview", "-n", "meshed", "--image=localhost:5001/shop/web:1",
                                      "--dry-run=server", "-o", "json").stdout)
    assert [c["name"] for c in preview["spec"]["containers"]] == ["preview", "istio-proxy"]  # sideEffects: None


def test_opt_in_and_opt_out_labels(kube: RunningKube) -> None:
    kube.kubectl("create", "namespace", "plain")
    kube.kubectl("create", "namespace", "off")
    kube.kubectl("label", "namespace", "off", "istio-injection=disabled")
    kube.kubectl("apply", "-f", "-", input="---\n".join([
        _pod("opt-out", "meshed", {"sidecar.istio.io/inject": "false"}),
        _pod("untouched", "plain"),
        _pod("opt-in", "plain", {"sidecar.istio.io/inject": "true"}),
        _pod("disabled-ns", "off", {"sidecar.istio.io/inject": "true"})]))

    def names(ns: str, pod: str) -> list[str]:
        got = json.loads(kube.kubectl("get", "pod", pod, "-n", ns, "-o", "json").stdout)
        return [c["name"] for c in got["spec"]["containers"]]

    assert names("meshed", "opt-out") == ["app"]
    assert names("plain", "untouched") == ["app"]
    assert names("plain", "opt-in") == ["app", "istio-proxy"]
    assert names("off", "disabled-ns") == ["app"]  # the namespace's label decides, as the webhooks' selectors
