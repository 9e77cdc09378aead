"""CertificateSigningRequests as the API server's registry treats them: the requester recorded on create, and
the ``approval`` subresource (``kubectl certificate approve|deny``) that only changes the conditions, by callers
allowed to ``approve`` for the CSR's signer. Signing is the signer controller's (controllers/certificates.py)."""

from __future__ import annotations

import base64
import copy
from typing import Any

from cryptography import x509

from ...core.errors import ApiError
from ...core.http import UserInfo
from .objects import now
from .rbac import Attributes, Authorizer
from .resources import ResourceType
from .reviews import user_info
from .status import invalid

Obj = dict[str, Any]
KEY = "certificates.k8s.io/certificatesigningrequests"
GROUP = "certificates.k8s.io"


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Obj:
    return {"reason": reason, "field": field, "message": message}


def on_create(rt: ResourceType, csr: Any, user: UserInfo) -> None:
    """Record who asks (spec.username, uid, groups, extra), dropping what the body said, and check the request."""
    if not isinstance(csr, dict):
        return
    spec = csr.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for field in ("username", "uid", "groups", "extra"):
        spec.pop(field, None)
    spec.update(user_info(user))  # the requester, as the real registry fills it in
    csr.pop("status", None)
    causes = []
    try:
        x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError as exc:
        causes.append(_cause("spec.request", f"Invalid value: []byte{{...}}: {_csr_error(exc)}"))
    if not spec.get("signerName"):
        causes.append(_cause("spec.signerName", "Required value", "FieldValueRequired"))
    if not spec.get("usages"):
        causes.append(_cause("spec.usages", "Required value", "FieldValueRequired"))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and (not isinstance(seconds, int) or seconds < 600):
        causes.append(_cause("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration "
                                                       "less than 600 seconds (10 minutes)"))
    if causes:
        raise invalid(rt, (csr.get("metadata") or {}).get("name", ""), causes)


def _csr_error(exc: ValueError) -> str:
    return "PEM block type must be CERTIFICATE REQUEST" if "PEM" in str(exc) or "Unable to load" in str(exc) \
        else str(exc)


def conditions(csr: Obj) -> list[Obj]:
    return list((csr.get("status") or {}).get("conditions") or [])


def has_condition(csr: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True" for c in conditions(csr))


def approval_update(rt: ResourceType, old: Obj, body: Any, user: UserInfo, authorizer: Authorizer) -> Obj:
    """The CSR after a PUT to ``approval``: the old object with the body's conditions (timestamps filled)."""
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body of the request was not a Kubernetes object")
    name, signer = old["metadata"]["name"], old["spec"].get("signerName", "")
    wanted = [dict(c) for c in (body.get("status") or {}).get("conditions") or []]
    causes = []
    types = [c.get("type") for c in wanted]
    if "Approved" in types and "Denied" in types:
        i = max(types.index("Approved"), types.index("Denied"))
        causes.append(_cause(f"status.conditions[{i}].type",
                             f'Invalid value: "{types[i]}": Approved and Denied conditions are mutually exclusive'))
    for i, c in enumerate(wanted):
        if c.get("type") in ("Approved", "Denied") and c.get("status", "True") != "True":
            causes.append(_cause(f"status.conditions[{i}].status",
                                 f'Unsupported value: "{c.get("status")}": supported values: "True"',
                                 "FieldValueNotSupported"))
    if causes:
        raise invalid(rt, name, causes)
    if not _may(authorizer, user, "approve", signer):  # the CertificateApproval admission plugin
        raise ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: user not permitted to approve '
                                         f'requests with signerName "{signer}"',
                       {"name": name, "group": GROUP, "kind": rt.plural})
    stamp = now()
    for c in wanted:
        c.setdefault("status", "True")
        c.setdefault("lastUpdateTime", stamp)
        c.setdefault("lastTransitionTime", stamp)
    new = copy.deepcopy(old)
    new["status"] = {**(old.get("status") or {}), "conditions": wanted}
    new["metadata"]["resourceVersion"] = (body.get("metadata") or {}).get("resourceVersion") or \
        old["metadata"]["resourceVersion"]
    return new


def check_signing(rt: ResourceType, old: Obj, new: Any, user: UserInfo, authorizer: Authorizer) -> None:
    """A status update that changes the certificate or the conditions needs ``sign`` for the CSR's signer (the
    CertificateSigning admission plugin)."""
    status = (new.get("status") or {}) if isinstance(new, dict) else {}
    before = old.get("status") or {}
    if status.get("certificate") == before.get("certificate") and \
            status.get("conditions") == before.get("conditions"):
        return
    name, signer = old["metadata"]["name"], old["spec"].get("signerName", "")
    if not _may(authorizer, user, "sign", signer):
        raise ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: user not permitted to sign '
                                         f'requests with signerName "{signer}"',
                       {"name": name, "group": GROUP, "kind": rt.plural})


def _may(authorizer: Authorizer, user: UserInfo, verb: str, signer: str) -> bool:
    """``verb`` on ``signers`` named after the signer, or its domain wildcard (``example.com/*``)."""
    names = [signer, signer.split("/", 1)[0] + "/*"]
    return any(authorizer.allowed(Attributes(user, verb, True, api_group=GROUP, resource="signers", name=n))
               for n in names)
