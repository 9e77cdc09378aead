"""Users, personal access tokens and who a request comes from (``PRIVATE-TOKEN``, ``Authorization: Bearer``,
``JOB-TOKEN``, HTTP Basic for git), as GitLab decides it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from .errors import gl_error
from .store import GitLabStore, now

ROOT = "root"
ALL_SCOPES = ("api", "read_api", "read_user", "read_repository", "write_repository", "read_registry",
              "write_registry", "sudo", "admin_mode", "create_runner", "manage_runner", "ai_features", "k8s_proxy",
              "read_service_ping", "self_rotate")
CI_USER = "gitlab-ci-token"  # the user name the runner clones with, CI_JOB_TOKEN as its password
# the API routes GitLab lets a CI_JOB_TOKEN authenticate (of those the simulator has): the job itself, artifacts
JOB_TOKEN_ROUTES = re.compile(r"^/api/v4/(job|projects/[^/]+/jobs/\d+/artifacts)$")


def token_secret(raw: str) -> str:
    """A personal access token as GitLab prints them (``glpat-`` and 20 characters)."""
    return "glpat-" + raw


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)
    return f"pbkdf2${salt.hex()}${dk.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(_hash_password(password, bytes.fromhex(salt)), stored)


@dataclass
class Caller:
    """Who sent a request: a user (by token, password or a job's token), or nobody."""

    user: dict[str, Any] | None = None
    token: dict[str, Any] | None = None
    job: dict[str, Any] | None = None  # set when authenticated by a CI_JOB_TOKEN

    @property
    def admin(self) -> bool:
        return bool(self.user and self.user.get("is_admin"))

    def can(self, scope: str) -> bool:
        """Whether the token's scopes allow ``scope`` (``api`` covers the rest; passwords and job tokens too)."""
        if self.token is None:
            return True
        scopes = set(self.token["scopes"])
        implied = {"read_user": {"read_api", "api"}, "read_api": {"api"}, "api": set(),
                   "read_repository": {"api", "read_api", "write_repository"}, "write_repository": {"api"}}
        return scope in scopes or bool(implied.get(scope, set()) & scopes)


class Accounts:
    """Users and their tokens, stored in the GitLab store."""

    def __init__(self, store: GitLabStore, base_url: str) -> None:
        self.store = store
        self.base_url = base_url

    # users -------------------------------------------------------------------------------------------------
    def create_user(self, username: str, name: str, email: str, password: str | None = None,
                    admin: bool = False) -> dict[str, Any]:
        """A new user; 409 with GitLab's message when the username or email is taken."""
        if any(u["username"].lower() == username.lower() for u in self.store.all("user")):
            raise gl_error(409, "Username has already been taken")
        if any(u.get("email") == email for u in self.store.all("user")):
            raise gl_error(409, "Email has already been taken")
        user = self.store.add("user", {
            "username": username, "name": name, "state": "active", "locked": False, "avatar_url": None,
            "web_url": f"{self.base_url}/{username}", "created_at": now(), "bio": "", "email": email,
            "public_email": None, "is_admin": admin, "bot": False, "two_factor_enabled": False,
            "external": False, "projects_limit": 100000, "can_create_group": True, "can_create_project": True,
        })
        if password:
            self.store.put("user", {**user, "_password": _hash_password(password)})
        return user

    def user(self, id_: int) -> dict[str, Any] | None:
        return self.store.get("user", id_)

    def by_username(self, username: str) -> dict[str, Any] | None:
        return next((u for u in self.store.all("user") if u["username"].lower() == username.lower()), None)

    def set_password(self, user: dict[str, Any], password: str) -> None:
        self.store.put("user", {**user, "_password": _hash_password(password)})

    @staticmethod
    def public(user: dict[str, Any], full: bool = False) -> dict[str, Any]:
        """The user as the API shows it (the basic fields to anyone, everything but secrets to admins/self)."""
        basic = ("id", "username", "name", "state", "locked", "avatar_url", "web_url")
        if not full:
            return {k: user.get(k) for k in basic}
        return {k: v for k, v in user.items() if not k.startswith("_")}

    # tokens ------------------------------------------------------------------------------------------------
    def create_token(self, user: dict[str, Any], name: str, scopes: list[str], expires_at: str | None = None,
                     secret: str | None = None, description: str = "") -> dict[str, Any]:
        """A personal access token; the answer (only this one) holds ``token``."""
        bad = [s for s in scopes if s not in ALL_SCOPES]
        if not scopes or bad:
            raise gl_error(400, {"scopes": [f"can only contain available scopes: {', '.join(ALL_SCOPES)}"]}) \
                if bad else _missing("scopes")
        value = secret or token_secret(secrets.token_urlsafe(15)[:20])
        doc = self.store.add("token", {
            "name": name, "description": description, "revoked": False, "created_at": now(), "scopes": scopes,
            "user_id": user["id"], "last_used_at": None, "active": True, "expires_at": expires_at,
        })
        self.store.remember_secret(value, doc["id"])
        return {**doc, "token": value}

    def tokens(self, user_id: int | None = None) -> list[dict[str, Any]]:
        return [t for t in self.store.all("token") if user_id is None or t["user_id"] == user_id]

    def revoke(self, token: dict[str, Any]) -> None:
        self.store.put("token", {**token, "revoked": True, "active": False})

    def user_for_token(self, secret: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(user, token) for a valid personal access token: not revoked, not expired, its user active."""
        token = self.store.token_for(secret)
        if token is None or token["revoked"]:
            return None
        if token.get("expires_at") and date.fromisoformat(token["expires_at"]) <= date.today():
            return None
        user = self.user(token["user_id"])
        if user is None or user["state"] != "active":
            return None
        return user, token

    def user_for_password(self, username: str, password: str) -> dict[str, Any] | None:
        user = self.by_username(username)
        ok = user is not None and user["state"] == "active" and bool(user.get("_password"))
        return user if ok and _check_password(password, user["_password"]) else None


def _missing(name: str) -> Exception:
    from .errors import param_error

    return param_error(f"{name} is missing")


JobLookup = Callable[[str], "dict[str, Any] | None"]


def api_caller(request: web.Request, accounts: Accounts, job_for_token: JobLookup | None) -> Caller:
    """Who calls the REST API: nobody (no credentials) or a user; a credential that fails is 401, as GitLab."""
    private = request.headers.get("PRIVATE-TOKEN") or request.query.get("private_token")
    auth = request.headers.get("Authorization", "")
    job_token = request.headers.get("JOB-TOKEN") or request.query.get("job_token")
    if private is None and auth.lower().startswith("bearer "):
        private = auth[7:].strip()
    if private is not None:
        found = accounts.user_for_token(private)
        if found is None:
            raise gl_error(401)
        stamp = now()
        if (found[1].get("last_used_at") or "")[:15] != stamp[:15]:  # as GitLab, at most every few minutes
            accounts.store.put("token", {**found[1], "last_used_at": stamp})
        return Caller(found[0], found[1])
    if job_token is not None:
        if not JOB_TOKEN_ROUTES.match(request.path):
            return Caller()  # routes that do not take a job token see nobody (a private project is 404 then)
        return _job_caller(job_token, accounts, job_for_token)
    return Caller()  # the API takes no HTTP Basic credentials (git over HTTP does): anonymous, as GitLab


def _job_caller(secret: str, accounts: Accounts, job_for_token: JobLookup | None) -> Caller:
    job = job_for_token(secret) if job_for_token else None
    user = accounts.user(job["user"]["id"]) if job and job.get("user") else None
    if job is None or user is None:
        raise gl_error(401)
    return Caller(user, None, job)


def git_caller(request: web.Request, accounts: Accounts, job_for_token: JobLookup | None) -> Caller | None:
    """The user of a git request's HTTP Basic credentials (password, personal access token, or
    ``gitlab-ci-token`` with a job's token); None when they fail; an anonymous Caller without any."""
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("basic "):
        return Caller()
    try:
        name, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    if name == CI_USER:
        job = job_for_token(password) if job_for_token else None
        user = accounts.user(job["user"]["id"]) if job and job.get("user") else None
        return Caller(user, None, job) if user else None
    found = accounts.user_for_token(password)
    if found is not None:
        return Caller(*found)  # GitLab takes a token with any user name
    user = accounts.user_for_password(name, password)
    return Caller(user) if user else None
