"""The ``kubernetes.io/kube-apiserver-client`` signer: approved CertificateSigningRequests get a client certificate
from the cluster CA in ``status.certificate``, as kube-controller-manager's csrsigning controller issues them."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..apiserver.csr import GROUP, KEY, conditions, has_condition
from ..apiserver.objects import now
from .base import MANAGER, Cluster, Controller, Key, Obj

SIGNER = "kubernetes.io/kube-apiserver-client"
DEFAULT_SECONDS = 365 * 24 * 3600  # kube-controller-manager's --cluster-signing-duration (8760h)
ALLOWED_USAGES = {"digital signature", "key encipherment", "client auth"}


def validation_error(csr: Obj) -> str:
    """Why the signer refuses a request (its usages must be client ones, with ``client auth``), or ""."""
    usages = list(csr["spec"].get("usages") or [])
    bad = [u for u in usages if u not in ALLOWED_USAGES]
    if bad:
        return f"invalid usage for client certificate: {bad[0]}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    except ValueError as exc:
        return f"unable to parse csr: {exc}"
    if not request.is_signature_valid:
        return "signature verification failed"
    return ""


class CertificateSigningController(Controller):
    name = "csrsigning-controller"
    watches = (KEY,)
    ca: Any = None  # the cluster CA (core.tls.LabCA), from configure()

    def configure(self, cluster: Cluster) -> None:
        self.ca = cluster.ca  # the cluster CA signs kube-apiserver-client certificates

    def reconcile(self, key: Key) -> None:
        csr = self.store.get(KEY, "", key[1])
        if csr is None or self.ca is None or csr["spec"].get("signerName") != SIGNER:
            return
        if not has_condition(csr, "Approved") or has_condition(csr, "Denied") or has_condition(csr, "Failed"):
            return
        if (csr.get("status") or {}).get("certificate"):
            return
        status = dict(csr.get("status") or {})
        error = validation_error(csr)
        if error:
            stamp = now()
            status["conditions"] = [*conditions(csr), {
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": error,
                "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
        else:
            seconds = min(csr["spec"].get("expirationSeconds") or DEFAULT_SECONDS, DEFAULT_SECONDS)
            usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
            pem = self.ca.sign_request(base64.b64decode(csr["spec"]["request"]), seconds, usages)
            status["certificate"] = base64.b64encode(pem).decode()
        self.objects.update(self.rt(GROUP, "v1", "certificatesigningrequests"), "", key[1],
                            {**csr, "status": status}, MANAGER, "status")
