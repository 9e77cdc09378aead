"""Decoding the Kubernetes protobuf encoding of request bodies.

kubectl's typed clients (``kubectl create deployment|configmap|secret|…``,
``kubectl run``, ``kubectl drain``, ``kubectl autoscale``) send ``application/vnd.kubernetes.protobuf``
bodies: the ``k8s\\x00`` magic, then a ``runtime.Unknown`` envelope holding
the object's own message. The server answers in JSON (kubectl accepts it).

Field numbers are the wire format of k8s.io/api (listed below for the
messages kubectl's generators send); field types come from the OpenAPI
definitions bundled with kubernetes-validate, so each message only needs its
numbering. A field the table does not know is refused, never dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ...core.errors import ApiError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# message -> JSON field name per field number (1-based position; "-" unused; "@Msg" inline message)
_FIELDS: dict[str, str] = {
    "meta.v1.ObjectMeta": "name generateName namespace selfLink uid resourceVersion generation "
                          "creationTimestamp deletionTimestamp deletionGracePeriodSeconds labels annotations "
                          "ownerReferences finalizers - - managedFields",
    "meta.v1.LabelSelector": "matchLabels matchExpressions",
    "meta.v1.LabelSelectorRequirement": "key operator values",
    "meta.v1.OwnerReference": "kind - name uid apiVersion controller blockOwnerDeletion",
    "meta.v1.DeleteOptions": "gracePeriodSeconds preconditions orphanDependents propagationPolicy dryRun "
                             "ignoreStoreReadErrorWithClusterBreakingPotential",
    "meta.v1.Preconditions": "uid resourceVersion",
    "meta.v1.ManagedFieldsEntry": "manager operation apiVersion time - fieldsType fieldsV1 subresource",
    "core.v1.Namespace": "metadata spec status",
    "core.v1.NamespaceSpec": "finalizers",
    "core.v1.ConfigMap": "metadata data binaryData immutable",
    "core.v1.Secret": "metadata data type stringData immutable",
    "core.v1.ServiceAccount": "metadata secrets imagePullSecrets automountServiceAccountToken",
    "core.v1.Pod": "metadata spec status",
    "core.v1.PodTemplateSpec": "metadata spec",
    "core.v1.PodSpec": "volumes containers restartPolicy terminationGracePeriodSeconds "
                       "activeDeadlineSeconds dnsPolicy nodeSelector serviceAccountName serviceAccount "
                       "nodeName hostNetwork hostPID hostIPC securityContext imagePullSecrets hostname "
                       "subdomain affinity schedulerName initContainers automountServiceAccountToken "
                       "tolerations hostAliases priorityClassName priority dnsConfig shareProcessNamespace "
                       "readinessGates runtimeClassName enableServiceLinks preemptionPolicy overhead "
                       "topologySpreadConstraints",
    "core.v1.Container": "name image command args workingDir ports env resources volumeMounts livenessProbe "
                         "readinessProbe lifecycle terminationMessagePath imagePullPolicy securityContext "
                         "stdin stdinOnce tty envFrom terminationMessagePolicy volumeDevices startupProbe "
                         "resizePolicy restartPolicy",
    "core.v1.PodSecurityContext": "seLinuxOptions runAsUser runAsNonRoot supplementalGroups fsGroup runAsGroup "
                                  "sysctls windowsOptions fsGroupChangePolicy seccompProfile appArmorProfile "
                                  "supplementalGroupsPolicy seLinuxChangePolicy",
    "core.v1.ContainerPort": "name hostPort containerPort protocol hostIP",
    "core.v1.EnvVar": "name value valueFrom",
    "core.v1.EnvVarSource": "fieldRef resourceFieldRef configMapKeyRef secretKeyRef",
    "core.v1.ObjectFieldSelector": "apiVersion fieldPath",
    "core.v1.ConfigMapKeySelector": "@core.v1.LocalObjectReference key optional",
    "core.v1.SecretKeySelector": "@core.v1.LocalObjectReference key optional",
    "core.v1.EnvFromSource": "prefix configMapRef secretRef",
    "core.v1.ConfigMapEnvSource": "@core.v1.LocalObjectReference optional",
    "core.v1.SecretEnvSource": "@core.v1.LocalObjectReference optional",
    "core.v1.LocalObjectReference": "name",
    "core.v1.ObjectReference": "kind namespace name uid apiVersion resourceVersion fieldPath",
    "core.v1.ResourceRequirements": "limits requests",
    "core.v1.VolumeMount": "name readOnly mountPath subPath mountPropagation subPathExpr",
    "core.v1.Volume": "name @core.v1.VolumeSource",
    "core.v1.VolumeSource": "hostPath emptyDir - - - secret - - - persistentVolumeClaim - - - - - "
                            "downwardAPI - - configMap",
    "core.v1.EmptyDirVolumeSource": "medium sizeLimit",
    "core.v1.SecretVolumeSource": "secretName items defaultMode optional",
    "core.v1.ConfigMapVolumeSource": "@core.v1.LocalObjectReference items defaultMode optional",
    "core.v1.KeyToPath": "key path mode",
    "core.v1.Probe": "@core.v1.ProbeHandler initialDelaySeconds timeoutSeconds periodSeconds "
                     "successThreshold failureThreshold terminationGracePeriodSeconds",
    "core.v1.ProbeHandler": "exec httpGet tcpSocket",
    "core.v1.ExecAction": "command",
    "core.v1.HTTPGetAction": "path port host scheme httpHeaders",
    "core.v1.HTTPHeader": "name value",
    "core.v1.TCPSocketAction": "port host",
    "core.v1.Toleration": "key operator value effect tolerationSeconds",
    "core.v1.Service": "metadata spec status",
    "core.v1.ServiceSpec": "ports selector clusterIP type externalIPs - sessionAffinity loadBalancerIP "
                           "loadBalancerSourceRanges externalName externalTrafficPolicy healthCheckNodePort "
                           "publishNotReadyAddresses sessionAffinityConfig - - ipFamilyPolicy clusterIPs "
                           "ipFamilies allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy",
    "core.v1.ServicePort": "name protocol port targetPort nodePort appProtocol",
    "apps.v1.Deployment": "metadata spec status",
    "apps.v1.DeploymentSpec": "replicas selector template strategy minReadySeconds revisionHistoryLimit "
                              "paused - progressDeadlineSeconds",
    "apps.v1.DeploymentStrategy": "type rollingUpdate",
    "apps.v1.RollingUpdateDeployment": "maxUnavailable maxSurge",
    "autoscaling.v2.HorizontalPodAutoscaler": "metadata spec status",
    "autoscaling.v2.HorizontalPodAutoscalerSpec": "scaleTargetRef minReplicas maxReplicas metrics behavior",
    "autoscaling.v2.CrossVersionObjectReference": "kind name apiVersion",
    "autoscaling.v2.MetricSpec": "type object pods resource external - containerResource",
    "autoscaling.v2.ResourceMetricSource": "name target",
    "autoscaling.v2.ContainerResourceMetricSource": "name target container",
    "autoscaling.v2.PodsMetricSource": "metric target",
    "autoscaling.v2.ObjectMetricSource": "describedObject target metric",
    "autoscaling.v2.ExternalMetricSource": "metric target",
    "autoscaling.v2.MetricIdentifier": "name selector",
    "autoscaling.v2.MetricTarget": "type value averageValue averageUtilization",
    "autoscaling.v2.HorizontalPodAutoscalerBehavior": "scaleUp scaleDown",
    "autoscaling.v2.HPAScalingRules": "selectPolicy policies stabilizationWindowSeconds tolerance",
    "autoscaling.v2.HPAScalingPolicy": "type value periodSeconds",
    "autoscaling.v1.HorizontalPodAutoscaler": "metadata spec status",
    "autoscaling.v1.HorizontalPodAutoscalerSpec": "scaleTargetRef minReplicas maxReplicas "
                                                  "targetCPUUtilizationPercentage",
    "autoscaling.v1.CrossVersionObjectReference": "kind name apiVersion",
    "batch.v1.Job": "metadata spec status",
    "batch.v1.JobSpec": "parallelism completions activeDeadlineSeconds selector manualSelector template "
                        "backoffLimit ttlSecondsAfterFinished completionMode suspend",
    "batch.v1.CronJob": "metadata spec status",
    "batch.v1.CronJobSpec": "schedule startingDeadlineSeconds concurrencyPolicy suspend jobTemplate "
                            "successfulJobsHistoryLimit failedJobsHistoryLimit timeZone",
    "batch.v1.JobTemplateSpec": "metadata spec",
    "policy.v1.Eviction": "metadata deleteOptions",
    "authorization.v1.SelfSubjectAccessReview": "metadata spec status",
    "authorization.v1.SelfSubjectAccessReviewSpec": "resourceAttributes nonResourceAttributes",
    "authorization.v1.ResourceAttributes": "namespace verb group version resource subresource name",
    "authorization.v1.NonResourceAttributes": "path verb",
    "authorization.v1.SelfSubjectRulesReview": "metadata spec status",
    "authorization.v1.SelfSubjectRulesReviewSpec": "namespace",
    "authentication.v1.SelfSubjectReview": "metadata status",
    "networking.v1.Ingress": "metadata spec status",
    "networking.v1.IngressSpec": "defaultBackend tls rules ingressClassName",
    "networking.v1.IngressTLS": "hosts secretName",
    "networking.v1.IngressRule": "host @networking.v1.IngressRuleValue",
    "networking.v1.IngressRuleValue": "http",
    "networking.v1.HTTPIngressRuleValue": "paths",
    "networking.v1.HTTPIngressPath": "path backend pathType",
    "networking.v1.IngressBackend": "- - resource service",
    "networking.v1.IngressServiceBackend": "name port",
    "networking.v1.ServiceBackendPort": "name number",
    "core.v1.ResourceQuota": "metadata spec status",
    "core.v1.ResourceQuotaSpec": "hard scopes scopeSelector",
    "core.v1.ScopeSelector": "matchExpressions",
    "core.v1.ScopedResourceSelectorRequirement": "scopeName operator values",
    "core.v1.LimitRange": "metadata spec",
    "core.v1.LimitRangeSpec": "limits",
    "core.v1.LimitRangeItem": "type max min default defaultRequest maxLimitRequestRatio",
    "core.v1.PersistentVolumeClaim": "metadata spec status",
    "core.v1.PersistentVolumeClaimSpec": "accessModes resources volumeName selector storageClassName volumeMode "
                                         "dataSource dataSourceRef volumeAttributesClassName",
    "core.v1.VolumeResourceRequirements": "limits requests",
    "core.v1.TypedLocalObjectReference": "apiGroup kind name",
    "core.v1.TypedObjectReference": "apiGroup kind name namespace",
    "core.v1.PersistentVolumeClaimVolumeSource": "claimName readOnly",
    "core.v1.HostPathVolumeSource": "path type",
    "scheduling.v1.PriorityClass": "metadata value globalDefault description preemptionPolicy",
    "rbac.v1.Role": "metadata rules",
    "rbac.v1.ClusterRole": "metadata rules aggregationRule",
    "rbac.v1.RoleBinding": "metadata subjects roleRef",
    "rbac.v1.ClusterRoleBinding": "metadata subjects roleRef",
    "rbac.v1.PolicyRule": "verbs apiGroups resources resourceNames nonResourceURLs",
    "rbac.v1.Subject": "kind apiGroup name namespace",
    "rbac.v1.RoleRef": "apiGroup kind name",
    "rbac.v1.AggregationRule": "clusterRoleSelectors",
    "authentication.v1.TokenRequest": "metadata spec status",
    "authentication.v1.TokenRequestSpec": "audiences - boundObjectRef expirationSeconds",
    "authentication.v1.BoundObjectReference": "kind apiVersion name uid",
    "policy.v1.PodDisruptionBudget": "metadata spec status",
    "policy.v1.PodDisruptionBudgetSpec": "minAvailable selector maxUnavailable unhealthyPodEvictionPolicy",
    "certificates.v1.CertificateSigningRequest": "metadata spec status",
    "certificates.v1.CertificateSigningRequestSpec": "request username uid groups usages - signerName "
                                                     "expirationSeconds",
    "certificates.v1.CertificateSigningRequestStatus": "conditions certificate",
    "certificates.v1.CertificateSigningRequestCondition": "type reason message lastUpdateTime "
                                                          "lastTransitionTime status",
    "authorization.v1.SubjectAccessReview": "metadata spec status",
    "authorization.v1.SubjectAccessReviewSpec": "resourceAttributes nonResourceAttributes user groups - uid",
    "authorization.v1.LocalSubjectAccessReview": "metadata spec status",
    "networking.v1.NetworkPolicy": "metadata spec",
    "networking.v1.NetworkPolicySpec": "podSelector ingress egress policyTypes",
    "networking.v1.NetworkPolicyIngressRule": "ports from",
    "networking.v1.NetworkPolicyEgressRule": "ports to",
    "networking.v1.NetworkPolicyPeer": "podSelector namespaceSelector ipBlock",
    "networking.v1.NetworkPolicyPort": "protocol port endPort",
    "networking.v1.IPBlock": "cidr except",
    "storage.v1.StorageClass": "metadata provisioner parameters reclaimPolicy mountOptions allowVolumeExpansion "
                               "volumeBindingMode allowedTopologies",
    "apps.v1.StatefulSet": "metadata spec status",
    "apps.v1.StatefulSetSpec": "replicas selector template volumeClaimTemplates serviceName podManagementPolicy "
                               "updateStrategy revisionHistoryLimit minReadySeconds "
                               "persistentVolumeClaimRetentionPolicy ordinals",
    "apps.v1.StatefulSetUpdateStrategy": "type rollingUpdate",
    "apps.v1.RollingUpdateStatefulSetStrategy": "partition maxUnavailable",
    "apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy": "whenDeleted whenScaled",
    "apps.v1.StatefulSetOrdinals": "start",
}
# Pointer fields whose zero value means something; other zero values are Go's unset fields,
# which the typed clients always encode and JSON would have omitted.
_MEANINGFUL_ZERO = {"replicas", "completions", "parallelism", "backoffLimit", "activeDeadlineSeconds",
                    "terminationGracePeriodSeconds", "revisionHistoryLimit", "progressDeadlineSeconds",
                    "gracePeriodSeconds", "deletionGracePeriodSeconds", "ttlSecondsAfterFinished",
                    "immutable", "automountServiceAccountToken", "optional", "suspend", "enableServiceLinks",
                    "allocateLoadBalancerNodePorts", "controller", "blockOwnerDeletion", "defaultMode",
                    "minReplicas", "averageUtilization", "stabilizationWindowSeconds",
                    "targetCPUUtilizationPercentage", "value", "partition"}
_SCALARS = {"meta.v1.Time", "meta.v1.MicroTime", "intstr.IntOrString", "resource.Quantity"}


def _short(definition: str) -> str:
    """``io.k8s.api.core.v1.PodSpec`` -> ``core.v1.PodSpec``."""
    for prefix in ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg.util.",
                   "io.k8s.apimachinery.pkg.api."):
        if definition.startswith(prefix):
            return definition[len(prefix):]
    return definition


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / "v1.37.0-local" / \
        "_definitions.json"
    defs = json.loads(path.read_text())["$defs"]
    return {_short(k): v for k, v in defs.items()}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for each field of one message."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise _unsupported(f"protobuf wire type {wire}")
        out.append((num, wire, val))
    return out


def _unsupported(what: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"{what} in a protobuf request body is not supported by the labkit simulator; "
                    "send the object as JSON (e.g. kubectl apply -f) instead")


def _type(schema: dict[str, Any]) -> str | None:
    """The JSON type of a schema (``["string", "null"]`` counts as ``string``)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(schema: dict[str, Any], wire: int, raw: Any) -> Any:
    if "$ref" in schema:
        return _ref(schema["$ref"], raw)
    kind = _type(schema)
    if kind == "string":
        return base64.b64encode(raw).decode() if schema.get("format") == "byte" else raw.decode()
    if kind == "integer":
        return _signed(raw)
    if kind == "boolean":
        return bool(raw)
    if kind == "object":
        return json.loads(raw) if raw else {}
    raise _unsupported(f"a field of type {kind}")


def _ref(ref: str, raw: bytes) -> Any:
    return message(_short(ref.rsplit("/", 1)[-1]), raw)


def message(name: str, raw: bytes, inlined_in: str = "") -> Any:
    """Decode ``raw`` as the message ``name`` into its JSON form (``inlined_in``: the message whose
    OpenAPI definition holds the fields of an inlined one, e.g. Probe for ProbeHandler)."""
    if name in _SCALARS:
        f = {n: v for n, _, v in _fields(raw)}
        if name.endswith("Time"):
            if not f.get(1) and not f.get(2):
                return None
            stamp = dt.datetime.fromtimestamp(_signed(f.get(1, 0)), dt.UTC)
            return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        if name == "intstr.IntOrString":
            return f.get(3, b"").decode() if f.get(1) == 1 else _signed(f.get(2, 0))
        return f.get(1, b"").decode()
    if name == "meta.v1.FieldsV1":  # managedFields' field sets: their JSON, as bytes
        raw_json = {n: v for n, _, v in _fields(raw)}.get(1, b"")
        return json.loads(raw_json) if raw_json else {}
    if name not in _FIELDS:
        if name.endswith("Status"):  # server-owned: reset on create, written by controllers
            return {}
        raise _unsupported(f"the message {name}")
    names = _FIELDS[name].split()
    props = _definitions().get(name, {}).get("properties") or \
        _definitions().get(inlined_in, {}).get("properties", {})
    out: dict[str, Any] = {}
    for num, wire, raw_value in _fields(raw):
        field = names[num - 1] if 0 < num <= len(names) else "-"
        if field == "-":
            raise _unsupported(f"field {num} of {name}")
        if field.startswith("@"):
            out.update(message(field[1:], raw_value, inlined_in or name))
            continue
        schema = props.get(field, {})
        if _type(schema) == "array":
            items = schema.get("items", {})
            if wire == 2 and _type(items) in ("integer", "boolean"):  # packed
                vals, i = [], 0
                while i < len(raw_value):
                    v, i = _varint(raw_value, i)
                    vals.append(_scalar(items, 0, v))
                out.setdefault(field, []).extend(vals)
            else:
                out.setdefault(field, []).append(_scalar(items, wire, raw_value))
        elif _type(schema) == "object" and "additionalProperties" in schema:
            entry = {n: v for n, _, v in _fields(raw_value)}
            value_schema = schema["additionalProperties"]
            out.setdefault(field, {})[entry.get(1, b"").decode()] = _scalar(
                value_schema, 2, entry.get(2, b""))
        else:
            out[field] = _scalar(schema, wire, raw_value)
    return {k: v for k, v in out.items()
            if (k in _MEANINGFUL_ZERO and v is not None) or v not in (None, "", 0, False, {}, [])}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body (magic + runtime.Unknown) as the JSON object it encodes."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s magic prefix")
    envelope = {n: v for n, _, v in _fields(body[len(MAGIC):])}
    type_meta = {n: v.decode() for n, _, v in _fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    group, _, version = api_version.rpartition("/")
    name = f"{group.split('.')[0] or 'core'}.{version}.{kind}"
    obj = message(name, envelope.get(2, b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
