"""Access reviews, answered at once from the authorizer and never stored: SelfSubjectAccessReview (``kubectl auth
can-i``), SelfSubjectRulesReview (``can-i --list``), SelfSubjectReview (``auth whoami``), SubjectAccessReview and
LocalSubjectAccessReview (another user's access)."""

from __future__ import annotations

from typing import Any

from ...core.errors import ApiError
from ...core.http import UserInfo
from .rbac import Attributes, Authorizer
from .resources import ResourceType
from .status import bad_request, invalid

Obj = dict[str, Any]


def _attributes(rt: ResourceType, user: UserInfo, spec: Obj, local_ns: str | None) -> Attributes:
    """The attributes a review's spec asks about, after the API server's validation of the spec."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes = []
    if resource is not None and non_resource is not None:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.nonResourceAttributes",
                       "message": "Invalid value: \"object\": cannot be specified in combination with "
                                  "resourceAttributes"})
    elif resource is None and non_resource is None:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.resourceAttributes",
                       "message": 'Invalid value: "null": exactly one of nonResourceAttributes or '
                                  "resourceAttributes must be specified"})
    if local_ns is not None:
        if non_resource is not None:
            causes.append({"reason": "FieldValueInvalid", "field": "spec.nonResourceAttributes",
                           "message": 'Invalid value: "object": disallowed on this kind of request'})
        if resource is not None and resource.get("namespace", "") != local_ns:
            causes.append({"reason": "FieldValueInvalid", "field": "spec.resourceAttributes.namespace",
                           "message": f'Invalid value: "{resource.get("namespace", "")}": must match '
                                      "metadata.namespace"})
    if rt.kind in ("SubjectAccessReview", "LocalSubjectAccessReview") and not spec.get("user") \
            and not spec.get("groups"):
        causes.append({"reason": "FieldValueInvalid", "field": "spec.user",
                       "message": 'Invalid value: "": at least one of user or group must be specified'})
    if causes:
        raise invalid(rt, "", causes)
    if resource is not None:
        r = resource
        return Attributes(user, r.get("verb", ""), True, "", r.get("namespace", ""), r.get("group", ""),
                          r.get("version", ""), r.get("resource", ""), r.get("subresource", ""), r.get("name", ""))
    return Attributes(user, non_resource.get("verb", ""), False, non_resource.get("path", ""))


def _subject(spec: Obj) -> UserInfo:
    """The user a SubjectAccessReview asks about (its groups as given: no group is added)."""
    extra = tuple(sorted((k, tuple(v or ())) for k, v in (spec.get("extra") or {}).items()))
    return UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""), extra)


def user_info(user: UserInfo) -> Obj:
    """A UserInfo as authentication.k8s.io/v1 writes it."""
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra}
    return out


def _rules_status(authorizer: Authorizer, user: UserInfo, namespace: str) -> Obj:
    rules, errors = authorizer.rules_for(user, namespace)
    resource_rules, non_resource_rules = [], []
    for r in rules:
        if r.get("resources"):
            rr: Obj = {"verbs": list(r.get("verbs") or [])}
            for field in ("apiGroups", "resources", "resourceNames"):
                if r.get(field):
                    rr[field] = list(r[field])
            resource_rules.append(rr)
        if r.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(r.get("verbs") or []),
                                       "nonResourceURLs": list(r["nonResourceURLs"])})
    status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
    if errors:
        status["evaluationError"] = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    return status


def review(rt: ResourceType, body: Obj, caller: UserInfo, authorizer: Authorizer, namespace: str) -> Obj:
    """The answered review: the request's spec (completed as the API server completes it) and its status."""
    if not isinstance(body, dict):
        raise bad_request("the body of the request was not a Kubernetes object")
    spec = dict(body.get("spec") or {})
    meta: Obj = {"creationTimestamp": None}
    if rt.kind == "SelfSubjectReview":
        status: Obj = {"userInfo": user_info(caller)}
    elif rt.kind == "SelfSubjectRulesReview":
        if not spec.get("namespace"):
            raise bad_request("no namespace on request")
        status = _rules_status(authorizer, caller, spec["namespace"])
    elif rt.kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        local = namespace if rt.kind == "LocalSubjectAccessReview" else None
        if local is not None:
            meta["namespace"] = namespace
        subject = caller if rt.kind == "SelfSubjectAccessReview" else _subject(spec)
        allowed, reason = authorizer.authorize(_attributes(rt, subject, spec, local))
        status = {"allowed": allowed}
        if reason:
            status["reason"] = reason
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return {"kind": rt.kind, "apiVersion": rt.group_version, "metadata": meta, "spec": spec, "status": status}
