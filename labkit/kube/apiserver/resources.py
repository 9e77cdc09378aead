"""The resource types the API server serves: built-ins plus every established CRD."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def has_generation(self) -> bool:
        """Whether objects carry metadata.generation (bumped on spec changes), as their registry strategy sets it."""
        return self.crd is not None or self.key in GENERATION_KEYS

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``deployments.apps`` — how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        """Storage key: one per group and plural (the version is only a view)."""
        return f"{self.group}/{self.plural}"


# Storage keys whose real registry strategies set metadata.generation (ConfigMaps, Services, … have none).
GENERATION_KEYS = frozenset({"/pods", "apps/deployments", "apps/replicasets", "apps/daemonsets", "apps/statefulsets",
                             "batch/jobs", "batch/cronjobs", "policy/poddisruptionbudgets",
                             "networking.k8s.io/ingresses", "networking.k8s.io/networkpolicies",
                             "discovery.k8s.io/endpointslices", "apiextensions.k8s.io/customresourcedefinitions"})


def _r(gv: str, kind: str, plural: str, namespaced: bool = True, short: tuple[str, ...] = (),
       sub: tuple[str, ...] = (), cats: tuple[str, ...] = ("all",)) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced, short, sub, cats)


BUILTINS: tuple[ResourceType, ...] = (
    _r("v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize"), ()),
    _r("v1", "Pod", "pods", True, ("po",), ("status", "log", "binding", "eviction", "exec", "attach",
                                              "portforward")),
    _r("v1", "Service", "services", True, ("svc",), ("status",)),
    _r("v1", "Endpoints", "endpoints", True, ("ep",), (), ()),
    _r("v1", "ConfigMap", "configmaps", True, ("cm",), (), ()),
    _r("v1", "Secret", "secrets", True, (), (), ()),
    _r("v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",), ()),
    _r("v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",), ()),
    _r("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",), ()),
    _r("v1", "ResourceQuota", "resourcequotas", True, ("quota",), ("status",), ()),
    _r("v1", "LimitRange", "limitranges", True, ("limits",), (), ()),
    _r("v1", "Event", "events", True, ("ev",), (), ()),
    _r("v1", "Node", "nodes", False, ("no",), ("status",), ()),
    _r("apps/v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale")),
    _r("apps/v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale")),
    _r("apps/v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",)),
    _r("apps/v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale")),
    _r("apps/v1", "ControllerRevision", "controllerrevisions", True, (), (), ()),
    _r("batch/v1", "Job", "jobs", True, (), ("status",)),
    _r("batch/v1", "CronJob", "cronjobs", True, ("cj",), ("status",)),
    _r("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",), ()),
    # stored as v2; v1 is converted (conversion.py), as the real API server serves both
    _r("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ("status",)),
    _r("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ("status",)),
    _r("coordination.k8s.io/v1", "Lease", "leases", True, (), (), ()),
    _r("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", True, (), (), ()),
    _r("networking.k8s.io/v1", "Ingress", "ingresses", True, ("ing",), ("status",), ()),
    _r("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, ("netpol",), (), ()),
    _r("storage.k8s.io/v1", "StorageClass", "storageclasses", False, ("sc",), (), ()),
    _r("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, (), (), ()),
    _r("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, (), (), ()),
    _r("rbac.authorization.k8s.io/v1", "Role", "roles", True, (), (), ()),
    _r("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, (), (), ()),
    _r("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, ("pc",), (), ()),
    _r("certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests", False, ("csr",),
       ("status", "approval"), ()),
    _r("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False,
       ("crd", "crds"), ("status",), ("api-extensions",)),
)
# Served live from the kubelets' process measurements (metrics-server's API), never stored.
METRICS = (
    ResourceType("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=("get", "list")),
    ResourceType("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list")),
)


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for v in spec.get("versions", []):
        if not v.get("served", True):
            continue
        sub = tuple(s for s in ("status", "scale") if s in (v.get("subresources") or {}))
        out.append(ResourceType(
            spec["group"], v["name"], names["kind"], names["plural"], spec.get("scope") == "Namespaced",
            tuple(names.get("shortNames", [])), sub, tuple(names.get("categories", [])), crd=crd))
    return out


# Answered at once from the authorizer (kubectl auth can-i / whoami; reviews.py), never stored.
REVIEWS = (
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
                 verbs=("create",)),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
                 verbs=("create",)),
)


class Registry:
    """Looks resource types up by group/version/plural; CRDs are added and removed live."""

    def __init__(self) -> None:
        self._custom: dict[str, list[ResourceType]] = {}

    def all(self) -> list[ResourceType]:
        return [*BUILTINS, *METRICS, *REVIEWS, *(r for rs in self._custom.values() for r in rs)]

    def set_crds(self, crds: list[dict[str, Any]]) -> None:
        self._custom = {c["metadata"]["name"]: from_crd(c) for c in crds if _established(c)}

    def crds(self) -> list[dict[str, Any]]:
        return [rs[0].crd for rs in self._custom.values() if rs and rs[0].crd]

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        for r in self.all():
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for r in self.all():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """Non-core groups and their versions, in discovery order."""
        out: dict[str, list[str]] = {}
        for r in self.all():
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out


def _established(crd: dict[str, Any]) -> bool:
    return crd.get("metadata", {}).get("deletionTimestamp") is None
