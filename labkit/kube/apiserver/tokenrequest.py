"""TokenRequest: ``POST serviceaccounts/<name>/token`` (``kubectl create token``), a service-account token that
the API server accepts as a bearer token while the service account (and the pod it is bound to) exists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...core.errors import ApiError
from .objects import Objects, now
from .resources import ResourceType
from .status import bad_request, invalid, not_found
from .tokens import AUDIENCES, DEFAULT_SECONDS

Obj = dict[str, Any]
GROUP_VERSION = "authentication.k8s.io/v1"
MIN_SECONDS, MAX_SECONDS = 600, 1 << 32


def _invalid(name: str, field: str, message: str) -> ApiError:
    rt = ResourceType("authentication.k8s.io", "v1", "TokenRequest", "tokenrequests")
    return invalid(rt, name, [{"reason": "FieldValueInvalid", "field": field, "message": message}])


def _bound_pod(objects: Objects, namespace: str, sa: str, ref: Obj) -> dict[str, str] | None:
    """The pod a token is bound to ({name, uid}), checked as the API server checks it; None when unbound."""
    if not ref:
        return None
    kind, name = ref.get("kind", ""), ref.get("name", "")
    group, _, version = str(ref.get("apiVersion", "")).rpartition("/")
    if group or kind not in ("Pod", "Secret", "Node"):
        raise bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    if kind != "Pod":
        raise bad_request(f"binding a service-account token to a {kind} is not supported by the labkit simulator "
                          "(only to a Pod)")
    pods = objects.registry.find("", "v1", "pods")
    assert pods is not None
    pod = objects.store.get(pods.key, namespace, name)
    if pod is None:
        raise not_found(pods, name)
    if (pod.get("spec") or {}).get("serviceAccountName", "default") != sa:
        raise bad_request(f'cannot bind token for serviceaccount "{sa}" to pod running with different '
                          "serviceaccount name.")
    uid = pod["metadata"]["uid"]
    if ref.get("uid") and ref["uid"] != uid:
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on Pod "{name}": the UID in the bound '
                                        f"object reference ({ref['uid']}) does not match the UID in record ({uid}). "
                                        "The object might have been deleted and then recreated",
                       {"name": name, "kind": "Pod"})
    return {"name": name, "uid": uid}


def token_request(objects: Objects, sa_type: ResourceType, namespace: str, name: str, body: Any) -> Obj:
    """Issue a token for ``namespace/name``; the answered TokenRequest (201)."""
    if not isinstance(body, dict) or body.get("kind", "TokenRequest") != "TokenRequest":
        raise bad_request("the body of the request was not a TokenRequest")
    account = objects.store.get(sa_type.key, namespace, name)
    if account is None:
        raise not_found(sa_type, name)
    if objects.tokens is None:
        raise ApiError(503, "ServiceUnavailable", "the service-account token issuer is not running")
    meta = body.get("metadata") or {}
    for field, want, what in (("name", name, "name"), ("namespace", namespace, "namespace")):
        if meta.get(field) and meta[field] != want:
            raise _invalid(name, f"metadata.{field}", f'Invalid value: "{meta[field]}": must match the service '
                                                      f"account {what} if specified")
    spec = dict(body.get("spec") or {})
    seconds = spec.get("expirationSeconds") or DEFAULT_SECONDS
    if not isinstance(seconds, int) or seconds < MIN_SECONDS:
        raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration less "
                                                       "than 10 minutes")
    if seconds > MAX_SECONDS:
        raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration "
                                                       "larger than 2^32 seconds")
    audiences = list(spec.get("audiences") or AUDIENCES)
    ref = spec.get("boundObjectRef") or None
    pod = _bound_pod(objects, namespace, name, ref or {})
    token, expiry = objects.tokens.issue(namespace, name, account["metadata"]["uid"], audiences, seconds, pod)
    out_spec: Obj = {"audiences": audiences, "expirationSeconds": seconds}
    if ref:
        out_spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod["name"], "uid": pod["uid"]} \
            if pod else ref
    expires = dt.datetime.fromtimestamp(expiry, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "TokenRequest", "apiVersion": GROUP_VERSION,
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now()},
            "spec": out_spec, "status": {"token": token, "expirationTimestamp": expires}}
