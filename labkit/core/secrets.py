"""Credentials a lab generates once and keeps in its home (mode 0600)."""

from __future__ import annotations

import secrets as _secrets
from pathlib import Path

from .files import read_json, write_json

# The names of the lab's well-known secrets (what tests and tools outside the daemon read).
CONTROL_TOKEN = "control-token"  # the sim daemon's control API
REGISTRY_PASSWORD = "registry-admin-password"  # the registry's admin, who may push
KUBE_TOKEN = "kube-admin-token"  # the Kubernetes API's admin (also in the kubeconfig)
GITLAB_ROOT_TOKEN = "gitlab-root-token"  # GitLab's root user's personal access token (``glpat-`` + this)
GITLAB_ROOT_PASSWORD = "gitlab-root-password"  # GitLab's root user's password
SERVICE_ACCOUNT_KEY = "kube-service-account-key"  # signs service-account tokens (kube/apiserver/tokens.py)


class Secrets:
    """Named random tokens and passwords, stable across daemon restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[str, str] = read_json(path, {}) or {}

    def get(self, name: str, nbytes: int = 24) -> str:
        """The secret called ``name``, created on first use."""
        if name not in self._values:
            self._values[name] = _secrets.token_urlsafe(nbytes)
            write_json(self.path, self._values, mode=0o600)
        return self._values[name]
