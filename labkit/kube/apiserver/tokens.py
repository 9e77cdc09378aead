"""Service-account tokens: JWTs as the API server's TokenRequest issues them, signed with the lab's key.

The real API server signs with RS256 and a service-account key pair; the lab signs with HS256 and a secret
kept in the lab home. Clients treat a token as an opaque bearer string either way; its claims are the
real ones (``iss``, ``sub``, ``aud``, ``exp``, ``kubernetes.io``), so ``kubectl create token`` output
decodes as it does on a cluster.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCES = (ISSUER, "k8s", "rke2")
DEFAULT_SECONDS = 3600
MOUNTED_SECONDS = 3607  # the kubelet's projected token, as kubeadm clusters mount it


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ServiceAccountUser:
    """Who a valid token speaks for: the user name and groups RBAC sees."""

    namespace: str
    name: str
    uid: str
    pod: dict[str, str] | None = None
    audiences: tuple[str, ...] = ()
    groups: tuple[str, ...] = field(default=())

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


class TokenIssuer:
    """Issues and verifies service-account tokens with one HMAC key."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str] | None = None,
              seconds: int = DEFAULT_SECONDS, pod: dict[str, str] | None = None) -> tuple[str, int]:
        """A signed token and its expiry (Unix seconds). ``pod`` binds it: {"name", "uid"}."""
        iat = int(time.time())
        exp = iat + max(600, int(seconds))
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if pod:
            k8s["pod"] = {"name": pod["name"], "uid": pod["uid"]}
        claims = {"aud": list(audiences or AUDIENCES), "exp": exp, "iat": iat, "nbf": iat, "iss": ISSUER,
                  "kubernetes.io": k8s, "sub": f"system:serviceaccount:{namespace}:{name}"}
        head = _b64(json.dumps({"alg": "HS256", "kid": "labkit", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{head}.{body}.{self._sign(head, body)}", exp

    def verify(self, token: str) -> ServiceAccountUser | None:
        """The token's service account if it is ours, well formed and unexpired (existence is the caller's)."""
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._sign(parts[0], parts[1]), parts[2]):
            return None
        try:
            claims = json.loads(_unb64(parts[1]))
            k8s = claims["kubernetes.io"]
            if claims.get("iss") != ISSUER or float(claims["exp"]) < time.time():
                return None
            sa = k8s["serviceaccount"]
            return ServiceAccountUser(
                k8s["namespace"], sa["name"], sa["uid"], k8s.get("pod"), tuple(claims.get("aud") or ()),
                ("system:serviceaccounts", f"system:serviceaccounts:{k8s['namespace']}", "system:authenticated"))
        except (ValueError, KeyError, TypeError):
            return None

    def _sign(self, head: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
