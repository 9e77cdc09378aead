"""Registry auth as Docker Hub and Harbor do it: a token service and bearer tokens scoped to repositories.

``GET /service/token?service=...&scope=repository:shop/web:pull,push`` (basic auth, or anonymous)
returns a JWT-shaped token signed with HMAC-SHA256 whose ``access`` claim lists what was granted. The
registry accepts that token, or basic auth directly (as distribution with htpasswd does), and answers
401 with ``WWW-Authenticate: Bearer realm=...,service=harbor-registry,scope=...`` otherwise. What a caller
may do is a ``Policy``'s answer (Harbor's projects, members and robot accounts: ``harbor/policy.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import USER
from .errors import registry_error

SERVICE = "harbor-registry"  # Harbor's token service name
ISSUER = "labkit-registry-token-issuer"
TOKEN_TTL = 1800  # seconds, Harbor's default
LEEWAY = 60
ALL = "*"
MAX_FORM = 64 * 1024


@dataclass(frozen=True)
class Scope:
    """``type:name:action,action`` (e.g. ``repository:shop/web:pull,push``, ``registry:catalog:*``)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name or not actions:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


class Policy(Protocol):
    """Who may sign in and what they may do (Harbor's projects, members and robots: ``harbor/policy.py``)."""

    def authenticate(self, name: str, password: str) -> bool: ...

    def may(self, user: str, kind: str, name: str, action: str) -> bool:
        """``user`` ("" for anonymous) may do ``action`` on ``kind:name`` (``repository:shop/web``)."""
        ...

    def refusal(self, kind: str, name: str) -> str | None:
        """A message for refusals whatever the caller (e.g. the project does not exist), or None."""
        ...


@dataclass
class Caller:
    """Who sent a request: a user name ("" for anonymous) and, for a bearer token, what it grants."""

    user: str
    granted: dict[tuple[str, str], set[str]] | None = None  # None: basic auth, the user's full rights
    token: bool = False

    def may(self, kind: str, name: str, action: str, policy: Policy) -> bool:
        if self.granted is None:
            return policy.may(self.user, kind, name, action)
        actions = self.granted.get((kind, name), set())
        # what anyone may do (a public project's pulls) needs no grant
        return action in actions or ALL in actions or policy.may("", kind, name, action)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Authority:
    """Checks credentials, issues and verifies tokens, writes challenges."""

    policy: Policy
    key: bytes
    service: str = SERVICE
    ttl: int = TOKEN_TTL
    token_path: str = "/service/token"

    # -- credentials ----------------------------------------------------------
    def basic_user(self, value: str) -> str | None:
        try:
            name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return name if name and self.policy.authenticate(name, password) else None

    def caller(self, request: web.Request) -> Caller | None:
        """The caller of ``request``: anonymous without credentials, None when credentials are invalid."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if not header:
            return Caller("")
        if scheme == "basic":
            user = self.basic_user(value.strip())
            return Caller(user) if user else None
        if scheme == "bearer":
            return self.verify(value.strip())
        return None

    # -- tokens ---------------------------------------------------------------
    def grant(self, user: str, scopes: list[Scope]) -> list[Scope]:
        """What the token service grants ``user`` of the requested scopes (actions it may not do are dropped)."""
        caller = Caller(user)
        out = []
        for s in scopes:
            actions = tuple(a for a in s.actions if caller.may(s.type, s.name, a, self.policy))
            if actions:
                out.append(Scope(s.type, s.name, actions))
        return out

    def issue(self, user: str, scopes: list[Scope]) -> dict[str, object]:
        """The token service's answer, as Docker Hub and Harbor shape it."""
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": self.service, "iat": now, "nbf": now - 1,
                  "exp": now + self.ttl, "jti": secrets.token_hex(16),
                  "access": [s.claim() for s in self.grant(user, scopes)]}
        head = _b64(json.dumps({"typ": "JWT", "alg": "HS256", "kid": "labkit"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{sig}"
        issued = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "access_token": token, "expires_in": self.ttl, "issued_at": issued}

    def verify(self, token: str) -> Caller | None:
        """The caller a token stands for, or None if it is forged, expired or for another service."""
        try:
            head, body, sig = token.split(".")
            expected = hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(sig), expected):
                return None
            claims = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        now = time.time()
        valid = claims.get("nbf", 0) - LEEWAY <= now <= claims.get("exp", 0) + LEEWAY
        if claims.get("aud") != self.service or not valid:
            return None
        granted: dict[tuple[str, str], set[str]] = {}
        for a in claims.get("access", []):
            granted.setdefault((a["type"], a["name"]), set()).update(a["actions"])
        return Caller(claims.get("sub", ""), granted, token=True)

    # -- challenges -------------------------------------------------------------
    def challenge(self, request: web.Request, scope: Scope | None = None, error: str | None = None) -> ApiError:
        """401 UNAUTHORIZED with the Bearer challenge that sends clients to the token service."""
        value = f'Bearer realm="{request.scheme}://{request.host}{self.token_path}",service="{self.service}"'
        if scope is not None:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        detail = [{"Type": scope.type, "Name": scope.name, "Action": a} for a in scope.actions] if scope else None
        return registry_error("UNAUTHORIZED", detail=detail, headers={"WWW-Authenticate": value})

    def require(self, request: web.Request, caller: Caller | None, kind: str, name: str, action: str) -> None:
        """Raise the challenge unless ``caller`` may do ``action`` on ``kind:name``."""
        if caller is not None and caller.may(kind, name, action, self.policy):
            return
        actions = ("pull", "push") if action == "push" else (action,)
        err = self.challenge(request, Scope(kind, name, actions), self.error(request, caller))
        err.message = self.policy.refusal(kind, name) or err.message
        raise err

    @staticmethod
    def error(request: web.Request, caller: Caller | None) -> str | None:
        """The challenge's ``error``: a bad bearer token is invalid_token, a good one lacks scope."""
        if caller is None:
            return "invalid_token" if request.headers.get("Authorization", "").lower().startswith("bearer") else None
        return "insufficient_scope" if caller.token else None

    # -- the token service --------------------------------------------------------
    async def token_endpoint(self, request: web.Request) -> web.Response:
        """``GET /service/token`` (Docker token auth) and ``POST`` (OAuth2 password grant)."""
        if request.method not in ("GET", "POST"):
            raise registry_error("UNSUPPORTED", detail={"method": request.method})
        if request.method == "POST":
            if (request.content_length or 0) > MAX_FORM:
                raise registry_error("SIZE_INVALID", status=413, message="token request too large")
            form = await request.post()
            grant_type = str(form.get("grant_type", ""))
            if grant_type != "password":
                raise registry_error("UNSUPPORTED", status=400, message=(
                    f"OAuth2 grant_type {grant_type!r} is not supported by the labkit simulator "
                    "(use password, or GET with basic auth)"))
            username, password = str(form.get("username", "")), str(form.get("password", ""))
            user = username if username and self.policy.authenticate(username, password) else None
            if user is None:
                raise registry_error("UNAUTHORIZED", message="invalid username or password")
            scopes_text = str(form.get("scope", "")).split(" ")
        else:
            header = request.headers.get("Authorization", "")
            user = ""
            if header:
                scheme, _, value = header.partition(" ")
                found = self.basic_user(value.strip()) if scheme.lower() == "basic" else None
                if found is None:
                    raise registry_error("UNAUTHORIZED", message="invalid username or password", headers={
                        "WWW-Authenticate": f'Basic realm="{self.service}"'})
                user = found
            scopes_text = [s for q in request.query.getall("scope", []) for s in q.split(" ")]
        request[USER] = user
        scopes = [s for s in (Scope.parse(t) for t in scopes_text if t) if s is not None]
        answer = self.issue(user, scopes)
        if request.method == "POST":
            answer = {"access_token": answer["access_token"], "expires_in": answer["expires_in"],
                      "issued_at": answer["issued_at"], "scope": " ".join(str(s) for s in self.grant(user, scopes))}
        return web.json_response(answer)
