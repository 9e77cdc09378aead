"""The webhook as the API server calls it: ``check`` (istiod's verdict), ``simulator_warnings`` and the admission
plugin ``IstioValidation``."""

from __future__ import annotations

from ...core.errors import ApiError
from ...kube.apiserver.admission import Plugin, Request
from ...kube.apiserver.decoding import crd_schema
from ...kube.apiserver.fielderrors import invalid as invalid_cause
from ...kube.apiserver.status import invalid
from ..translate.clusters import SUPPORTED_POLICY
from ..translate.routes import SUPPORTED_HTTP
from . import celrules
from .destinationrule import destination_rule
from .fields import DRY_RUN, GROUPS, WEBHOOK, Err, Obj
from .gateway import gateway, peer_authentication, service_entry
from .goerrors import text
from .virtualservice import virtual_service


def check(obj: Obj) -> tuple[Err, list[str]]:
    """The webhook's verdict on one Istio object: its error (None when accepted) and its warnings."""
    meta = obj.get("metadata") or {}
    kind, spec, warnings = obj.get("kind", ""), obj.get("spec") or {}, []
    annotations = meta.get("annotations") or {}
    if DRY_RUN in annotations and kind != "AuthorizationPolicy":
        return (f"{meta.get('namespace', '')}/{meta.get('name', '')} has unsupported annotation {DRY_RUN}, "
                "please remove the annotation"), []
    if "istio.io/always-reject" in annotations:
        return '"istio.io/always-reject" annotation found, rejecting', []
    ns = meta.get("namespace", "")
    validators = {"VirtualService": lambda: virtual_service(spec, ns, warnings),
                  "DestinationRule": lambda: destination_rule(spec, ns, warnings),
                  "Gateway": lambda: gateway(meta.get("name", ""), spec),
                  "ServiceEntry": lambda: service_entry(spec, ns),
                  "PeerAuthentication": lambda: peer_authentication(spec)}
    if kind not in validators:
        return None, []
    return validators[kind](), warnings


def _policy_warnings(policy: Obj | None, where: str) -> list[str]:
    plaintext = ((policy or {}).get("tls") or {}).get("mode") == "DISABLE"  # what the sim does anyway
    out = [f"{where}.{key} is not supported by the labkit simulator (ignored)"
           for key in sorted(set(policy or {}) - SUPPORTED_POLICY) if not (key == "tls" and plaintext)]
    for i, p in enumerate((policy or {}).get("portLevelSettings") or []):
        out += _policy_warnings({k: v for k, v in p.items() if k != "port"}, f"{where}.portLevelSettings[{i}]")
    return out


def simulator_warnings(obj: Obj) -> list[str]:
    """What an accepted object asks of the mesh that the labkit simulator does not do (the translation's own
    supported sets), said when it is applied, as kubectl's ``Warning:`` lines."""
    kind, spec = obj.get("kind", ""), obj.get("spec") or {}
    out: list[str] = []
    if kind == "VirtualService":
        for i, http in enumerate(spec.get("http") or []):
            out += [f"spec.http[{i}].{key} is not supported by the labkit simulator (ignored)"
                    for key in sorted(set(http or {}) - SUPPORTED_HTTP)]
        out += [f"spec.{key} routes are not supported by the labkit simulator (ignored)"
                for key in ("tcp", "tls") if spec.get(key)]
    elif kind == "DestinationRule":
        out += _policy_warnings(spec.get("trafficPolicy"), "spec.trafficPolicy")
        for i, subset in enumerate(spec.get("subsets") or []):
            out += _policy_warnings((subset or {}).get("trafficPolicy"), f"spec.subsets[{i}].trafficPolicy")
    elif kind == "PeerAuthentication":
        modes = [(spec.get("mtls") or {}).get("mode")] + [(m or {}).get("mode")
                                                           for m in (spec.get("portLevelMtls") or {}).values()]
        if "STRICT" in modes:
            out.append("mTLS is not supported by the labkit simulator: mode STRICT is stored, traffic stays plaintext")
    return out


class IstioValidation(Plugin):
    """The API server's answer to Istio objects: the CRD's CEL rules (422 Invalid), then istiod's webhook."""

    name = "ValidatingAdmissionWebhook(validation.istio.io)"

    def validate(self, req: Request) -> list[str]:
        if req.rt.group not in GROUPS:
            return []
        obj = req.obj
        schema = crd_schema(obj.get("apiVersion", ""), obj.get("kind", ""), req.objects.registry.crds())
        spec_schema = ((schema or {}).get("properties") or {}).get("spec")
        if spec_schema is not None and isinstance(obj.get("spec"), dict):
            causes = [invalid_cause(path, kind, msg)
                      for path, kind, msg in celrules.failures(spec_schema, obj["spec"], "spec")]
            if causes:
                raise invalid(req.rt, obj.get("metadata", {}).get("name", ""), causes)
        err, warnings = check(obj)
        if err is not None:
            raise ApiError(400, "", f'admission webhook "{WEBHOOK}" denied the request: configuration is invalid: '
                                    f"{text(err)}")
        return warnings + simulator_warnings(obj)
