"""Who is calling the API server: X.509 client certificates, the admin token, service-account tokens, anonymous.

As kube-apiserver's union authenticator: a client certificate signed by the cluster CA names the user (CN) and
groups (O); a bearer token is the lab's admin token or a service-account token; a request with no credentials is
``system:anonymous``; credentials that fail are 401 Unauthorized. Every authenticated user also gets the group
``system:authenticated``.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ...core.http import UserInfo, peer_certificate
from ...core.tls import client_identity
from .objects import Objects
from .tokens import AUDIENCES, ServiceAccountUser

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
ADMIN = UserInfo("kubernetes-admin", (MASTERS, AUTHENTICATED))  # what kubeadm's and kind's admin.conf is
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"


def with_authenticated(name: str, groups: tuple[str, ...], uid: str = "",
                       extra: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> UserInfo:
    """A UserInfo with ``system:authenticated`` added, as the API server's group adder does."""
    if name != ANONYMOUS.name and AUTHENTICATED not in groups:
        groups = (*groups, AUTHENTICATED)
    return UserInfo(name, groups, uid, extra)


class KubeAuthenticator:
    """The kube API server's authenticators over the lab's objects (``objects.tokens`` signs SA tokens)."""

    def __init__(self, objects: Objects, admin_token: str) -> None:
        self.objects = objects
        self._admin = admin_token.encode()

    def authenticate(self, request: web.Request) -> UserInfo | None:
        der = peer_certificate(request)
        if der:
            identity = client_identity(der)
            if identity is not None and identity[0]:
                return with_authenticated(identity[0], identity[1])
        header = request.headers.get("Authorization", "")
        if not header:
            return None if der else ANONYMOUS
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return self.token_user(value.strip())

    def challenge(self) -> dict[str, str]:
        return {}

    def token_user(self, token: str) -> UserInfo | None:
        """The user a bearer token speaks for, or None."""
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        if not token.isascii():  # no token of ours (and hmac compares ASCII text only)
            return None
        issuer = self.objects.tokens
        sa = issuer.verify(token) if issuer is not None else None
        if sa is None or not set(sa.audiences) & set(AUDIENCES) or not self._still_valid(sa):
            return None
        extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if sa.pod:
            extra = ((POD_NAME, (sa.pod["name"],)), (POD_UID, (sa.pod["uid"],)))
        return with_authenticated(sa.username, sa.groups, sa.uid, extra)

    def _still_valid(self, sa: ServiceAccountUser) -> bool:
        """The service account (and the pod a token is bound to) still exist, with the uids in the token."""
        store = self.objects.store
        account = store.get("/serviceaccounts", sa.namespace, sa.name)
        if account is None or account["metadata"].get("uid") != sa.uid:
            return False
        if sa.pod:
            pod = store.get("/pods", sa.namespace, sa.pod.get("name", ""))
            if pod is None or pod["metadata"].get("uid") != sa.pod.get("uid"):
                return False
        return True
