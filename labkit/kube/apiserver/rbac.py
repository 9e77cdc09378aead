"""RBAC: the attributes the API server authorizes a request by, and the authorizer over Roles and their bindings.

As kube-apiserver: members of ``system:masters`` may do everything (the privileged-group authorizer, before RBAC);
everyone else gets what ClusterRoleBindings (anywhere) and RoleBindings (in the request's namespace) grant through
the rules of their Role or ClusterRole. The rules a user holds in a namespace are compiled once and kept until the
next write to an RBAC object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...core.errors import ApiError
from ...core.http import UserInfo
from .store import Event, Store, Watcher

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
ROLES, CLUSTER_ROLES = f"{GROUP}/roles", f"{GROUP}/clusterroles"
BINDINGS, CLUSTER_BINDINGS = f"{GROUP}/rolebindings", f"{GROUP}/clusterrolebindings"
RBAC_KEYS = frozenset({ROLES, CLUSTER_ROLES, BINDINGS, CLUSTER_BINDINGS})
MASTERS = "system:masters"
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Attributes:
    """What is asked: by whom, which verb, on which resource (or non-resource path)."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def request_attributes(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request, derived from its path and method as the API server's RequestInfo is."""
    parts = [p for p in path.split("/") if p]
    plain = Attributes(user, method.lower(), False, path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return plain
    rest, group = parts[1:], ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return plain
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if rest[0] == "watch" and len(rest) > 1:
        verb, rest = "watch", rest[1:]
    else:
        verb = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method, "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("1", "true") else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, namespace, group, version, resource, sub, name)


def _exact_name(selector: str) -> str:
    """The name a ``metadata.name=x`` field selector pins a list or watch to (authorized as that name)."""
    for term in selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and key.strip() == "metadata.name":
            return value.strip()
    return ""


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, with sets for matching."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]

    @classmethod
    def of(cls, rule: Obj) -> Rule:
        return cls(frozenset(rule.get("verbs") or ()), frozenset(rule.get("apiGroups") or ()),
                   frozenset(rule.get("resources") or ()), frozenset(rule.get("resourceNames") or ()),
                   tuple(rule.get("nonResourceURLs") or ()))

    def allows(self, a: Attributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            return any(u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                       for u in self.urls)
        if "*" not in self.groups and a.api_group not in self.groups:
            return False
        if self.names and a.name not in self.names:
            return False
        if "*" in self.resources:
            return True
        if not a.subresource:
            return a.resource in self.resources
        return f"{a.resource}/{a.subresource}" in self.resources or f"*/{a.subresource}" in self.resources


@dataclass(frozen=True)
class Grant:
    """A rule a user holds, and the binding that gives it (for the reviews' reasons)."""

    source: str
    rule: Obj
    compiled: Rule


def describe_subject(subject: Obj, binding_ns: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_ns}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def applies_to(subject: Obj, user: UserInfo, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace') or binding_ns}:{name}"
    return False


class _RbacChanges(Watcher):
    """Hears every write to an RBAC object and tells the authorizer to forget what it compiled."""

    def __init__(self, on_change: Any) -> None:
        super().__init__("", "", lambda o: False)
        self.on_change = on_change

    def wants(self, ev: Event) -> bool:
        if ev.key in RBAC_KEYS:
            self.on_change()
        return False


class Authorizer:
    """Decides requests from the RBAC objects in the store; what it compiles is dropped on every RBAC write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[list[Grant], list[str]]] = {}
        store.subscribe(_RbacChanges(self._cache.clear))

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as the authorizer chain answers: the reason names the binding that allowed it,
        or the RBAC errors met on the way (a binding to a missing role)."""
        if MASTERS in a.user.groups:
            return True, ""
        grants, errors = self.grants(a.user, a.namespace)
        for g in grants:
            if g.compiled.allows(a):
                return True, f"RBAC: allowed by {g.source}"
        return False, _errors_reason(errors)

    def allowed(self, a: Attributes) -> bool:
        return self.authorize(a)[0]

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[str]]:
        """Every rule ``user`` holds in ``namespace`` (cluster-wide ones first) and the errors met."""
        grants, errors = self.grants(user, namespace)
        return [g.rule for g in grants], errors

    def grants(self, user: UserInfo, namespace: str) -> tuple[list[Grant], list[str]]:
        key = (user.name, user.groups, namespace)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[key] = self._compile(user, namespace)
        return found

    def _compile(self, user: UserInfo, namespace: str) -> tuple[list[Grant], list[str]]:
        grants: list[Grant] = []
        errors: list[str] = []
        for binding in self.store.items(CLUSTER_BINDINGS):
            self._visit(binding, user, "", grants, errors)
        if namespace:
            for binding in self.store.items(BINDINGS, namespace):
                self._visit(binding, user, namespace, grants, errors)
        return grants, errors

    def _visit(self, binding: Obj, user: UserInfo, ns: str, grants: list[Grant], errors: list[str]) -> None:
        subject = next((s for s in binding.get("subjects") or [] if applies_to(s, user, ns)), None)
        if subject is None:
            return
        ref = binding.get("roleRef") or {}
        rules, error = self.role_rules(ref, ns)
        if error:
            errors.append(error)
            return
        described = f'RoleBinding "{binding["metadata"]["name"]}/{ns}"' if ns else \
            f'ClusterRoleBinding "{binding["metadata"]["name"]}"'
        source = f'{described} of {ref.get("kind")} "{ref.get("name")}" to {describe_subject(subject, ns)}'
        grants.extend(Grant(source, r, Rule.of(r)) for r in rules)

    def role_rules(self, ref: Obj, namespace: str) -> tuple[list[Obj], str]:
        """The rules of the role a roleRef names, or the error the API server reports when it is missing."""
        if ref.get("kind") == "ClusterRole":
            role = self.store.get(CLUSTER_ROLES, "", ref.get("name", ""))
            missing = f'clusterrole.{GROUP} "{ref.get("name")}" not found'
        elif ref.get("kind") == "Role":
            role = self.store.get(ROLES, namespace, ref.get("name", "")) if namespace else None
            missing = f'role.{GROUP} "{ref.get("name")}" not found'
        else:
            return [], f'unsupported role reference kind: "{ref.get("kind")}"'
        if role is None:
            return [], missing
        return list(role.get("rules") or []), ""


def _errors_reason(errors: list[str]) -> str:
    if not errors:
        return ""
    return "RBAC: " + (errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")


def forbidden_message(a: Attributes) -> str:
    """``User "jane" cannot list resource "pods" in API group "" in the namespace "y"`` and its other forms."""
    who = f'User "{a.user.name}"'
    if not a.resource_request:
        return f'{who} cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'{who} cannot {a.verb} resource "{resource}" in API group "{a.api_group}" {where}'


def forbidden(a: Attributes, reason: str = "") -> ApiError:
    """403 Forbidden as the API server writes it: ``pods "x" is forbidden: User ... cannot ...[: reason]``."""
    text = forbidden_message(a)
    if reason:
        text = f"{text}: {reason}"
    if not a.resource_request:
        return ApiError(403, "Forbidden", f"forbidden: {text}")
    qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    subject = f'{qualified} "{a.name}"' if a.name else qualified
    details: Obj = {"name": a.name, "kind": a.resource} if a.name else {"kind": a.resource}
    if a.api_group:
        details["group"] = a.api_group
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {text}", details)


# -- what a set of rules covers (the escalation check) -----------------------------------------------------
def breakdown(rule: Obj) -> Iterator[Obj]:
    """A rule as rules of one verb, one group, one resource and at most one name (or one verb and one URL)."""
    verbs = rule.get("verbs") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for name in rule.get("resourceNames") or [None]:
                for verb in verbs:
                    simple = {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
                    if name is not None:
                        simple["resourceNames"] = [name]
                    yield simple
    for url in rule.get("nonResourceURLs") or []:
        for verb in verbs:
            yield {"verbs": [verb], "nonResourceURLs": [url]}


def _covers(owner: Obj, simple: Obj) -> bool:
    def has_all(field: str) -> bool:
        have = owner.get(field) or []
        return "*" in have or all(x in have for x in simple.get(field) or [])

    if not (has_all("verbs") and has_all("apiGroups")):
        return False
    have_resources = owner.get("resources") or []
    for r in simple.get("resources") or []:
        if "*" in have_resources or r in have_resources:
            continue
        if "/" not in r or "*/" + r.split("/", 1)[1] not in have_resources:
            return False
    have_urls = owner.get("nonResourceURLs") or []
    for u in simple.get("nonResourceURLs") or []:
        if not any(h == u or (h.endswith("*") and u.startswith(h[:-1])) for h in have_urls):
            return False
    names, have_names = simple.get("resourceNames") or [], owner.get("resourceNames") or []
    return not have_names or (bool(names) and all(n in have_names for n in names))


def missing_rules(owned: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """The simple rules of ``wanted`` that no rule of ``owned`` covers."""
    return [s for rule in wanted for s in breakdown(rule) if not any(_covers(o, s) for o in owned)]


def compact_string(rule: Obj) -> str:
    """A rule as escalation errors print it: ``{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}``."""
    parts = []
    for label, field in (("APIGroups", "apiGroups"), ("Resources", "resources"),
                         ("NonResourceURLs", "nonResourceURLs"), ("ResourceNames", "resourceNames"),
                         ("Verbs", "verbs")):
        if rule.get(field):
            parts.append(f"{label}:[{' '.join(_quote(v) for v in rule[field])}]")
    return "{" + ", ".join(parts) + "}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compact(rules: list[Obj]) -> list[Obj]:
    """Simple rules of one group and one resource (and no names) merged into one rule with their verbs."""
    out: list[Obj] = []
    merged: dict[tuple[str, str], Obj] = {}
    for r in rules:
        if r.get("resources") and not r.get("resourceNames"):
            key = (r["apiGroups"][0], r["resources"][0])
            if key in merged:
                if r["verbs"][0] not in merged[key]["verbs"]:
                    merged[key]["verbs"].append(r["verbs"][0])
                continue
            merged[key] = {**r, "verbs": list(r["verbs"])}
            out.append(merged[key])
        else:
            out.append(r)
    return out


def quoted_list(values: tuple[str, ...] | list[str]) -> str:
    """A string list as Go's %q prints it: ``["a" "b"]``."""
    return "[" + " ".join(_quote(v) for v in values) + "]"

