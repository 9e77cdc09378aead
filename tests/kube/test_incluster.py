"""The workload, storage, policy and access-control APIs as a program in a pod uses them: the `kubernetes`
client with ``load_incluster_config()``, as a service account bound to ``edit`` in a namespace with a quota."""

from __future__ import annotations

import json

from labkit.lab import Lab

from .conftest import k
from .test_pods import apply, get, pod, py, until

# Runs in the pod; prints one JSON line of what each call answered.
SCRIPT = r"""
import json
from kubernetes import client, config
config.load_incluster_config()
ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
out = {}

def call(name, fn):
    try:
        fn()
        out[name] = "ok"
    except client.ApiException as err:
        out[name] = [err.status, json.loads(err.body)["message"]]

policy, batch, core = client.PolicyV1Api(), client.BatchV1Api(), client.CoreV1Api()
rbac, scaling, auth = client.RbacAuthorizationV1Api(), client.AutoscalingV2Api(), client.AuthorizationV1Api()
call("pdb", lambda: policy.create_namespaced_pod_disruption_budget(ns, {
    "metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}))
call("cronjob", lambda: batch.create_namespaced_cron_job(ns, {
    "metadata": {"name": "nightly"}, "spec": {"schedule": "0 3 * * *", "timeZone": "Asia/Seoul",
    "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
    "containers": [{"name": "job", "image": "localhost:5001/test/web:1"}]}}}}}}))
call("bad-cronjob", lambda: batch.create_namespaced_cron_job(ns, {
    "metadata": {"name": "broken"}, "spec": {"schedule": "61 * * * *",
    "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
    "containers": [{"name": "job", "image": "localhost:5001/test/web:1"}]}}}}}}))
call("pvc", lambda: core.create_namespaced_persistent_volume_claim(ns, {
    "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
    "resources": {"requests": {"storage": "1Gi"}}}}))
call("hpa", lambda: scaling.create_namespaced_horizontal_pod_autoscaler(ns, {
    "metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
    "name": "web"}, "minReplicas": 1, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}))
call("rolebinding", lambda: rbac.create_namespaced_role_binding(ns, {
    "metadata": {"name": "me-admin"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
    "name": "admin"}, "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}))
call("nodes", lambda: core.list_node())
for i in range(3):
    call(f"configmap-{i}", lambda i=i: core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}}))
review = auth.create_self_subject_access_review({"spec": {"resourceAttributes": {
    "namespace": ns, "verb": "create", "group": "apps", "resource": "deployments"}}})
out["can-create-deployments"] = review.status.allowed
out["storageclass"] = core.read_namespaced_persistent_volume_claim(
    "data", ns).spec.storage_class_name
print("RESULT " + json.dumps(out), flush=True)
"""


def test_a_pod_uses_the_apis_as_a_service_account_bound_to_edit(runtime_lab: Lab, ns: str) -> None:
    # kube-root-ca.crt is the namespace's one ConfigMap: the quota leaves room for two more
    apply(runtime_lab, ns,
          {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "deployer-edit"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
           "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]},
          {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "small"},
           "spec": {"hard": {"configmaps": "3"}}})
    apply(runtime_lab, ns, pod("client", [py("client", SCRIPT)], restartPolicy="Never",
                               serviceAccountName="deployer"))
    until("the pod ran", lambda: get(runtime_lab, ns, "client")["status"]["phase"] in ("Succeeded", "Failed"))
    logs = k(runtime_lab, "-n", ns, "logs", "client")
    assert get(runtime_lab, ns, "client")["status"]["phase"] == "Succeeded", logs
    out = json.loads(next(line for line in logs.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    user = f"system:serviceaccount:{ns}:deployer"
    assert out["pdb"] == out["cronjob"] == out["pvc"] == out["hpa"] == "ok", out
    assert out["bad-cronjob"][0] == 422 and "spec.schedule" in out["bad-cronjob"][1], out
    assert out["rolebinding"] == [403, f'rolebindings.rbac.authorization.k8s.io is forbidden: User "{user}" cannot '
                                        f'create resource "rolebindings" in API group "rbac.authorization.k8s.io" in '
                                        f'the namespace "{ns}"'], out
    assert out["nodes"] == [403, f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" '
                                 "at the cluster scope"], out
    assert out["configmap-0"] == out["configmap-1"] == "ok", out
    assert out["configmap-2"] == [403, 'configmaps "cm-2" is forbidden: exceeded quota: small, requested: '
                                       "configmaps=1, used: configmaps=3, limited: configmaps=3"], out
    assert out["can-create-deployments"] is True
    assert out["storageclass"] == "local-path"  # the DefaultStorageClass admission step
    # what the pod made is there for kubectl too, served by the controllers
    pdb = json.loads(k(runtime_lab, "-n", ns, "get", "pdb", "web", "-o", "json"))
    assert pdb["spec"]["minAvailable"] == 1
    assert k(runtime_lab, "-n", ns, "get", "pvc", "data", "-o", "jsonpath={.status.phase}") == "Pending"
    assert k(runtime_lab, "-n", ns, "get", "cronjob", "nightly", "-o", "jsonpath={.spec.timeZone}") == "Asia/Seoul"
