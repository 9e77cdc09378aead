"""Istio's published CRDs (``manifests/charts/base/files/crd-all.gen.yaml`` of istio/istio 1.27.9), the ones the lab
uses, each kept verbatim as its own YAML document: VirtualService, DestinationRule, Gateway, ServiceEntry
(``networking.istio.io`` v1, v1beta1, v1alpha3) and PeerAuthentication (``security.istio.io`` v1, v1beta1).

``install`` puts them into a cluster as Istio's ``base`` chart does on kind (the sim's API server serves them once
they are Established); the release is recorded in an annotation, so a newer lab replaces an older release's CRDs.
"""

from __future__ import annotations

import copy
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ISTIO_VERSION = "1.27.9"  # the release the files come from (and the proxyv2 image the injector names)
FILES = ("virtualservices.networking.istio.io.yaml", "destinationrules.networking.istio.io.yaml",
         "gateways.networking.istio.io.yaml", "serviceentries.networking.istio.io.yaml",
         "peerauthentications.security.istio.io.yaml")
RELEASE_ANNOTATION = "labkit.mesh/istio-release"


@cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parent / name).read_text())


def crds() -> list[dict[str, Any]]:
    """The five CRDs (fresh copies: callers may change them)."""
    return [copy.deepcopy(_load(name)) for name in FILES]


def install(api_client: Any, timeout: float = 30) -> list[str]:
    """Create each CRD through ``api_client`` (the ``kubernetes`` client's ApiClient), or replace it when another
    release's is there; wait until all are Established. The names of the CRDs created or replaced."""
    from kubernetes.client import ApiextensionsV1Api
    from kubernetes.client.rest import ApiException

    api = ApiextensionsV1Api(api_client)
    changed: list[str] = []
    for crd in crds():
        name = crd["metadata"]["name"]
        crd["metadata"].setdefault("annotations", {})[RELEASE_ANNOTATION] = ISTIO_VERSION
        try:
            current = api.read_custom_resource_definition(name)
        except ApiException as err:
            if err.status != 404:
                raise
            api.create_custom_resource_definition(crd)
            changed.append(name)
            continue
        if (current.metadata.annotations or {}).get(RELEASE_ANNOTATION) != ISTIO_VERSION:
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            api.replace_custom_resource_definition(name, crd)
            changed.append(name)
    _wait_established(api, [c["metadata"]["name"] for c in crds()], timeout)
    return changed


def _wait_established(api: Any, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting:
        crd = api.read_custom_resource_definition(waiting[0])
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"Istio's CRD {waiting[0]} is not Established after {timeout:.0f} s")
        time.sleep(0.1)
