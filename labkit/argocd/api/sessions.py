"""Argo CD's local accounts and sessions: ``POST /api/v1/session`` checks a user's password and answers a JWT
(HS256, signed with ``server.secretkey`` from the ``argocd-secret`` Secret, as Argo CD signs its own), which callers
send as ``Authorization: Bearer`` or as the ``argocd.token`` cookie (the UI's)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ISSUER = "argocd"
COOKIE = "argocd.token"
SESSION_ERROR = web.RequestKey("session_error", str)  # why a request's token was refused
LIFETIME = 24 * 3600  # users.session.duration's default


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidSession(Exception):
    """A token that is not one of this server's, or expired; the message says why."""


@dataclass
class Sessions:
    """Signs and verifies session tokens; ``passwords`` maps each local account to its password."""

    key: bytes
    passwords: dict[str, str]

    def login(self, username: str, password: str) -> str | None:
        """A new session token for a correct password, else None (Argo CD does not say which part was wrong)."""
        expected = self.passwords.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": username, "exp": now + LIFETIME, "nbf": now, "iat": now,
                  "jti": str(uuid.uuid4())}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{head}.{body}.{self._sign(f'{head}.{body}')}"

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self.key, signing_input.encode(), hashlib.sha256).digest())

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; InvalidSession otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidSession("token contains an invalid number of segments")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except ValueError as err:
            raise InvalidSession(f"token is malformed: {err}") from None
        if header.get("alg") != "HS256" or not hmac.compare_digest(self._sign(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise InvalidSession("token signature is invalid: signature is invalid")
        if claims.get("exp", 0) < time.time():
            raise InvalidSession("token has invalid claims: token is expired")
        if claims.get("sub") not in self.passwords:
            raise InvalidSession(f"account {claims.get('sub')} does not exist")
        return claims


def request_token(request: web.Request) -> str | None:
    """The session token a request carries: the bearer token, else the ``argocd.token`` cookie."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


@dataclass
class SessionAuthenticator:
    """``core.http``'s Authenticator over Argo CD sessions: the caller's claims, or None."""

    sessions: Sessions

    def authenticate(self, request: web.Request) -> object | None:
        token = request_token(request)
        if token is None:
            return None
        try:
            return Caller(self.sessions.verify(token))
        except InvalidSession as err:
            request[SESSION_ERROR] = str(err)
            return None

    def challenge(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its JWT claims."""

    claims: dict[str, Any]

    def __str__(self) -> str:
        return str(self.claims.get("sub", ""))
