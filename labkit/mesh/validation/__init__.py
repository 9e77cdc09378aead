"""What istiod's validating webhook (``validation.istio.io``) rejects, with its messages, for the kinds the lab
uses: VirtualService, DestinationRule, Gateway, ServiceEntry, PeerAuthentication (istio/istio 1.27
``pkg/config/validation``: ``ValidateVirtualService``, ``validateHTTPRoute``, ``ValidateDestinationRule``, …).

``check(obj)`` gives (error, warnings) as the webhook computes them; ``IstioValidation`` is the admission step of the
sim's API server: first the CRD's CEL rules (``celrules``, the API server's 422), then the webhook's verdict,
answered as the API server answers a denying webhook: ``admission webhook "validation.istio.io" denied the request:
configuration is invalid: ...`` (400, no reason), and an accepted object's warnings (the webhook's, then what
the sim's translation does not do: ``spec.http[0].mirror is not supported by the labkit simulator (ignored)``, mTLS
STRICT, as kubectl's ``Warning:`` lines). Weights need not sum to 100 (Istio normalises them since 1.x; only
a total of 0 over several destinations is refused), as the real webhook.
"""

from __future__ import annotations

from .webhook import IstioValidation, check, simulator_warnings

__all__ = ["IstioValidation", "check", "simulator_warnings"]
