"""The admission chain: every plugin the API server runs after defaulting and schema validation, in order.

``run`` gives each plugin's ``admit`` (mutating) and then each ``validate`` one write (``admission.Request``).
A new plugin is one line here.
"""

from __future__ import annotations

from ...mesh.injection import SidecarInjection
from ...mesh.validation import IstioValidation
from .admission import Request
from .podadmission import ServiceAccountAdmission
from .policy import LimitRanger, NetworkPolicyNotice, Priority, ResourceQuotaAdmission
from .rbacvalidation import RBACValidation
from .storage import DefaultStorageClass, StorageObjectInUseProtection, StorageValidation

CHAIN = (DefaultStorageClass(), StorageObjectInUseProtection(), StorageValidation(), LimitRanger(), Priority(),
         ResourceQuotaAdmission(), NetworkPolicyNotice(), ServiceAccountAdmission(), RBACValidation(),
         SidecarInjection(), IstioValidation())  # Istio's webhooks: after the built-in plugins, as the real chain


def run(req: Request) -> list[str]:
    """Every plugin's admit, then every plugin's validate, as the real chain orders them; their warnings."""
    warnings: list[str] = []
    for p in CHAIN:
        warnings += p.admit(req)
    for p in CHAIN:
        warnings += p.validate(req)
    return warnings
