"""HorizontalPodAutoscaler: the autoscaling/v2 and v1 API, metrics that follow the load, and the controller scaling
a CPU-burning Deployment up under load and back down, driven with real kubectl and the kubernetes client."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from labkit.core.timings import timings
from labkit.kube.controllers.hpa import PodMetric, SyncError, Tolerances, _plain_replicas, _resource_replicas
from labkit.lab import Lab

from ..conftest import kubectl
from .conftest import k

# A web server that burns ~20 ms of CPU per request (like the php-apache of the upstream HPA walkthrough), with
# a 100m CPU request; and a load generator inside the cluster that calls it through its Service, one request
# after another.
BURN = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      containers:
      - name: burn
        image: localhost:5001/test/web:1
        command: [python, -c]
        args:
        - |
          import http.server, os, time
          class Handler(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  end = time.thread_time() + 0.02
                  while time.thread_time() < end:
                      pass
                  self.send_response(200)
                  self.send_header("Content-Length", "2")
                  self.end_headers()
                  self.wfile.write(b"ok")
              def log_message(self, *args):
                  pass
          http.server.ThreadingHTTPServer((os.environ["HOST"], 8080), Handler).serve_forever()
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
        resources: {requests: {cpu: 100m}}
---
apiVersion: v1
kind: Service
metadata: {name: burn}
spec:
  selector: {app: burn}
  ports: [{port: 80, targetPort: 8080}]
"""
LOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: load}
spec:
  replicas: 1
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec:
      containers:
      - name: load
        image: localhost:5001/test/web:1
        command: [python, -c]
        args:
        - |
          import time, urllib.request
          while True:
              try:
                  urllib.request.urlopen("http://burn/", timeout=5).read()
              except OSError as err:
                  print(err, flush=True)
              time.sleep(0.05)
"""
SYNC = timings("sim").hpa_sync_seconds
ABOVE = "reason: cpu resource utilization (percentage of request) above target"


@pytest.fixture
def client(runtime_lab: Lab) -> kubernetes.client.ApiClient:
    return runtime_lab.kubernetes.api_client()


def wait(what: str, check: Callable[[], Any], timeout: float) -> tuple[Any, float]:
    """Poll ``check`` until it returns something true; (that, seconds it took)."""
    started = time.monotonic()
    while True:
        got = check()
        if got:
            return got, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def condition(hpa: Any, kind: str) -> Any:
    return next((c for c in (hpa.status.conditions if hpa.status else None) or [] if c.type == kind), None)


def hpa_events(client: kubernetes.client.ApiClient, ns: str, name: str) -> list[tuple[str, str, str]]:
    events = kubernetes.client.CoreV1Api(client).list_namespaced_event(
        ns, field_selector=f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in events]


def top_millicores(lab: Lab, ns: str, prefix: str) -> list[int]:
    rows = k(lab, "-n", ns, "top", "pods", "--no-headers").strip().splitlines()
    return [int(r.split()[1].removesuffix("m")) for r in rows if r.startswith(prefix)]


def test_hpa_scales_a_cpu_burning_deployment_up_under_load_and_back_down(runtime_lab: Lab, ns: str,
                                                                        client: kubernetes.client.ApiClient) -> None:
    lab, v2 = runtime_lab, kubernetes.client.AutoscalingV2Api(client)
    apps = kubernetes.client.AppsV1Api(client)
    k(lab, "-n", ns, "apply", "-f", "-", input=BURN)
    k(lab, "-n", ns, "rollout", "status", "deploy/burn", "--timeout=60s")
    out = k(lab, "-n", ns, "autoscale", "deployment", "burn", "--cpu=50%", "--min=1", "--max=4")
    assert out.strip() == "horizontalpodautoscaler.autoscaling/burn autoscaled"
    spec = json.loads(k(lab, "-n", ns, "get", "hpa", "burn", "-o", "json"))["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4) and "behavior" not in spec
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]

    def utilization() -> int | None:
        metrics = v2.read_namespaced_horizontal_pod_autoscaler("burn", ns).status.current_metrics or []
        current = metrics[0].resource.current if metrics and metrics[0].resource else None
        return current.average_utilization if current else None

    idle, _ = wait("the HPA reads the idle pod's CPU", lambda: (u := utilization()) is not None and [u], 4 * SYNC + 20)
    assert idle[0] < 50
    table = k(lab, "-n", ns, "get", "hpa").splitlines()
    assert table[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert re.match(r"burn\s+Deployment/burn\s+cpu: \d+%/50%\s+1\s+4\s+1\s+\d+s$", table[1]), table[1]

    k(lab, "-n", ns, "apply", "-f", "-", input=LOAD)
    loaded = time.monotonic()
    scaled, up_seconds = wait("scaled up under load", lambda: (n := apps.read_namespaced_deployment_scale(
        "burn", ns).spec.replicas) > 1 and n, 6 * SYNC + 30)
    assert 2 <= scaled <= 4
    print(f"\nscale-up: {up_seconds:.1f} s after the load started, to {scaled} replicas")
    events = hpa_events(client, ns, "burn")
    assert ("Normal", "SuccessfulRescale", f"New size: {scaled}; {ABOVE}") in events
    assert max(top_millicores(lab, ns, "burn-")) >= 50  # kubectl top: the loaded pod's CPU rose
    hpa = v2.read_namespaced_horizontal_pod_autoscaler("burn", ns)
    assert hpa.status.last_scale_time is not None and hpa.status.desired_replicas >= 2
    assert condition(hpa, "ScalingActive").reason == "ValidMetricFound"
    described = k(lab, "-n", ns, "describe", "hpa", "burn")
    assert re.search(r"resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\d+m\) / 50%", described)
    assert re.search(r"Normal\s+SuccessfulRescale\s+.*horizontal-pod-autoscaler\s+"
                     + re.escape(f"New size: {scaled}; {ABOVE}"), described)
    wait("the load reaches the new pods", lambda: len([m for m in top_millicores(lab, ns, "burn-") if m >= 20]) > 1,
         4 * SYNC)

    # Without a behavior, the default 5-minute scale-down stabilization keeps the replicas after the load stops.
    k(lab, "-n", ns, "delete", "deployment", "load")
    stopped = time.monotonic()
    wait("CPU below target after the load stopped", lambda: (u := utilization()) is not None and u < 50, 6 * SYNC)
    hpa, _ = wait("the scale-down is stabilized", lambda: (h := v2.read_namespaced_horizontal_pod_autoscaler(
        "burn", ns)) and condition(h, "AbleToScale").reason == "ScaleDownStabilized" and h, 3 * SYNC + 5)
    assert hpa.status.current_replicas >= 2
    assert condition(hpa, "AbleToScale").message == ("recent recommendations were higher than current one, "
                                                     "applying the highest recent recommendation")
    # kubectl top: the CPU fell with the load (a pod's usage is an average over the last metrics window, which can
    # still hold the load's last seconds when the HPA's average already fell below its target)
    wait("kubectl top shows the CPU fell with the load", lambda: max(top_millicores(lab, ns, "burn-")) < 20, 2 * SYNC)

    # The HPA's own behavior shortens the window to 5 s: down to minReplicas.
    k(lab, "-n", ns, "patch", "hpa", "burn", "--type=merge",
      "-p", '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":5}}}}')
    behavior = json.loads(k(lab, "-n", ns, "get", "hpa", "burn", "-o", "json"))["spec"]["behavior"]
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 5, "selectPolicy": "Max",
                                     "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                               {"type": "Percent", "value": 100, "periodSeconds": 15}]
    _, down_seconds = wait("scaled back down", lambda: apps.read_namespaced_deployment_scale(
        "burn", ns).spec.replicas == 1, 4 * SYNC + 10)
    print(f"scale-down: {down_seconds:.1f} s after the window was shortened "
          f"({time.monotonic() - stopped:.1f} s after the load stopped; {stopped - loaded:.1f} s under load)")
    assert ("Normal", "SuccessfulRescale", "New size: 1; reason: All metrics below target") in hpa_events(
        client, ns, "burn")
    wait("kubectl get hpa shows 1 replica", lambda: re.search(r"burn\s+Deployment/burn\s+cpu: \d+%/50%\s+1\s+4\s+1\s",
                                                              k(lab, "-n", ns, "get", "hpa", "burn")), 2 * SYNC + 5)


def test_hpa_without_cpu_requests_reports_the_missing_request(runtime_lab: Lab, ns: str,
                                                              client: kubernetes.client.ApiClient) -> None:
    lab = runtime_lab
    k(lab, "-n", ns, "create", "deployment", "web", "--image=localhost:5001/test/web:1")
    k(lab, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    k(lab, "-n", ns, "autoscale", "deployment", "web", "--cpu=50%", "--max=3")
    pod = k(lab, "-n", ns, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")
    missing = f"failed to get cpu utilization: missing request for cpu in container web of Pod {pod}"
    wait("the missing request is reported", lambda: ("Warning", "FailedGetResourceMetric", missing)
         in hpa_events(client, ns, "web"), 6 * SYNC + 20)
    events = hpa_events(client, ns, "web")
    assert ("Warning", "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), first error is: "
            f"failed to get cpu resource metric value: {missing}") in events
    hpa = kubernetes.client.AutoscalingV2Api(client).read_namespaced_horizontal_pod_autoscaler("web", ns)
    active = condition(hpa, "ScalingActive")
    assert (active.status, active.reason) == ("False", "FailedGetResourceMetric")
    assert active.message == f"the HPA was unable to compute the replica count: {missing}"
    assert "cpu: <unknown>/50%" in k(lab, "-n", ns, "get", "hpa", "web")
    assert not any(e[1] == "SuccessfulRescale" for e in events)


def test_bad_input_is_answered_as_the_api_server_does(runtime_lab: Lab, ns: str,
                                                      client: kubernetes.client.ApiClient) -> None:
    lab = runtime_lab
    base = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: %s}\nspec:\n"
            "  scaleTargetRef: {apiVersion: apps/v1, kind: %s, name: web}\n  maxReplicas: %d\n%s")
    res = kubectl(lab, "-n", ns, "apply", "-f", "-", check=False, input=base % ("bad", "Deployment", 1,
                                                                                "  minReplicas: 2\n"))
    assert res.returncode == 1
    assert ('The HorizontalPodAutoscaler "bad" is invalid: spec.maxReplicas: Invalid value: 1: must be greater '
            "than or equal to `minReplicas`") in res.stderr
    v2 = kubernetes.client.AutoscalingV2Api(client)
    with pytest.raises(kubernetes.client.ApiException) as err:
        v2.create_namespaced_horizontal_pod_autoscaler(ns, {
            "metadata": {"name": "bad"}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}],
                "behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}}})
    assert err.value.status == 422
    causes = {(c["field"], c["message"]) for c in json.loads(err.value.body)["details"]["causes"]}
    assert causes == {("spec.metrics[0].resource.target.averageUtilization",
                       "Required value: must set either a target raw value or a target utilization"),
                      ("spec.behavior.scaleDown.policies[0].value", "Invalid value: 0: must be greater than zero")}
    res = kubectl(lab, "-n", ns, "apply", "-f", "-", check=False,
                  input=base.replace("autoscaling/v2", "autoscaling/v1") % ("v1", "Deployment", 3, "  bogus: 1\n"))
    assert ('HorizontalPodAutoscaler in version "v1" cannot be handled as a HorizontalPodAutoscaler: strict decoding '
            'error: unknown field "spec.bogus"') in res.stderr

    # An unknown target kind is accepted: the controller reports it, as the real one does.
    k(lab, "-n", ns, "apply", "-f", "-", input=base % ("foo", "Foo", 3, ""))
    hpa, _ = wait("FailedGetScale", lambda: (h := v2.read_namespaced_horizontal_pod_autoscaler("foo", ns))
                  and condition(h, "AbleToScale") and h, 2 * SYNC + 5)
    able = condition(hpa, "AbleToScale")
    assert (able.status, able.reason) == ("False", "FailedGetScale")
    assert able.message == ('the HPA controller was unable to get the target\'s current scale: no matches for kind '
                            '"Foo" in group "apps"')
    assert ("Warning", "FailedGetScale", 'no matches for kind "Foo" in group "apps"') in hpa_events(client, ns, "foo")
    assert re.search(r"foo\s+Foo/web\s+cpu: <unknown>/80%\s+1\s+3\s+0", k(lab, "-n", ns, "get", "hpa", "foo"))


def test_autoscaling_v1_is_converted_to_and_from_the_stored_v2(runtime_lab: Lab, ns: str,
                                                               client: kubernetes.client.ApiClient) -> None:
    v1, v2 = kubernetes.client.AutoscalingV1Api(client), kubernetes.client.AutoscalingV2Api(client)
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    created = v1.create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "web"}, "spec": {"scaleTargetRef": ref, "maxReplicas": 3,
                                              "targetCPUUtilizationPercentage": 70}})
    assert (created.spec.min_replicas, created.spec.target_cpu_utilization_percentage) == (1, 70)
    assert (created.status.current_replicas, created.status.desired_replicas) == (0, 0)
    stored = v2.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert [(m.type, m.resource.name, m.resource.target.type, m.resource.target.average_utilization)
            for m in stored.spec.metrics] == [("Resource", "cpu", "Utilization", 70)]
    v2.patch_namespaced_horizontal_pod_autoscaler("web", ns, {"spec": {
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {
                        "type": "AverageValue", "averageValue": "100Mi"}}}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}})
    seen = v1.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert seen.spec.target_cpu_utilization_percentage == 60
    notes = seen.metadata.annotations
    assert json.loads(notes["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
    behavior = json.loads(notes["autoscaling.alpha.kubernetes.io/behavior"])  # upstream stores its Go field names
    assert behavior["ScaleDown"]["StabilizationWindowSeconds"] == 30
    # a v1 client's read-modify-write keeps what only v2 can say
    v1.patch_namespaced_horizontal_pod_autoscaler("web", ns, {"spec": {"maxReplicas": 5}})
    after = v2.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert after.spec.max_replicas == 5 and len(after.spec.metrics) == 2
    assert after.spec.behavior.scale_down.stabilization_window_seconds == 30
    assert not (after.metadata.annotations or {})


def _pod(name: str, cpu: str | None = "100m", ready: bool = True, age: float = 600.0) -> dict[str, Any]:
    """A Running pod started ``age`` seconds ago, Ready (or not) since then."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age))
    requests = {"cpu": cpu} if cpu else {}
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
            "status": {"phase": "Running", "startTime": started, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": started}]}}


def test_replica_calculator_follows_the_real_algorithm() -> None:
    """GetResourceReplicas: ceil(current x usage / target), the 10% tolerance, and pods without metrics or not
    Ready counted as upstream's replica_calculator.go counts them (the cases of its own unit tests)."""
    pods = [_pod(f"p{i}") for i in range(3)]

    def run(values: dict[str, int], target: int = 50, tolerances: Tolerances | None = None,
            with_pods: list[dict[str, Any]] = pods) -> tuple[int, int, int]:
        return _resource_replicas({n: PodMetric(v) for n, v in values.items()}, len(with_pods), target, with_pods,
                                  "cpu", "", tolerances or Tolerances())

    assert run({"p0": 90, "p1": 90, "p2": 90}) == (6, 90, 90)  # 90% of 50%: ceil(3 x 1.8)
    assert run({"p0": 20, "p1": 20, "p2": 20}) == (2, 20, 20)  # ceil(3 x 0.4)
    assert run({"p0": 54, "p1": 54, "p2": 54})[0] == 3  # 1.08 is within the 10% tolerance
    assert run({"p0": 54, "p1": 54, "p2": 54}, tolerances=Tolerances(up=0.05))[0] == 4  # a behavior's own tolerance
    # scaling up, a pod without metrics counts as 0%: (100 + 100 + 0) / 300 = 66% -> ceil(3 x 1.33)
    assert run({"p0": 100, "p1": 100})[0] == 4
    # scaling down, it counts as 100% of its request: (10 + 10 + 100) / 300 = 40% -> ceil(3 x 0.8)
    assert run({"p0": 10, "p1": 10})[0] == 3
    # an unready pod is ignored on the way down and counts as 0% on the way up
    unready = [*pods[:2], _pod("p2", ready=False, age=5)]
    assert run({"p0": 10, "p1": 10, "p2": 100}, with_pods=unready)[0] == 1
    assert run({"p0": 100, "p1": 100, "p2": 100}, with_pods=unready)[0] == 4
    with pytest.raises(SyncError, match="missing request for cpu in container c of Pod p3"):
        run({"p0": 90}, with_pods=[*pods, _pod("p3", cpu=None)])
    # an AverageValue target: the pods' average usage against it
    assert _plain_replicas({n: PodMetric(150) for n in ("p0", "p1", "p2")}, 3, 100, pods, "cpu", Tolerances()) \
        == (5, 150)


def test_kubectl_autoscale_with_cpu_percent_is_served_as_autoscaling_v2(runtime_lab: Lab, ns: str,
                                                                         client: kubernetes.client.ApiClient) -> None:
    """The issue's ``kubectl autoscale ... --cpu-percent=50 --min=1 --max=3`` (the flag deprecated for ``--cpu``
    but still taken) creates an HPA that the autoscaling/v2 API reads back with the utilization target."""
    lab = runtime_lab
    k(lab, "-n", ns, "create", "deployment", "web", "--image=localhost:5001/test/web:1")
    res = kubectl(lab, "-n", ns, "autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=3")
    assert res.stdout.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
    hpa = kubernetes.client.AutoscalingV2Api(client).read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 3)
    ref = hpa.spec.scale_target_ref
    assert (ref.api_version, ref.kind, ref.name) == ("apps/v1", "Deployment", "web")
    [metric] = hpa.spec.metrics
    assert (metric.type, metric.resource.name) == ("Resource", "cpu")
    assert (metric.resource.target.type, metric.resource.target.average_utilization) == ("Utilization", 50)
    assert hpa.spec.behavior is None  # the controller's own downscale stabilization applies
    row = k(lab, "-n", ns, "get", "hpa", "web", "--no-headers").split()
    assert row[:3] == ["web", "Deployment/web", "cpu:"] and row[3].endswith("/50%") and row[4:6] == ["1", "3"]
