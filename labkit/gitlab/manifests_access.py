"""The CI/CD variables that let the shop's deploy job commit to ``shop/manifests`` (the GitOps chapter):
``MANIFESTS_USER`` and ``MANIFESTS_TOKEN`` (masked), a personal access token of ``root`` limited to the
``write_repository`` scope (git over HTTP only, no API).

A job's own ``CI_JOB_TOKEN`` reads ``shop/manifests`` through the project's job-token allowlist, but GitLab never
lets a job token push to another project (since 17.2 it may push to its own project only, when allowed), so a
pipeline that commits to a manifest repository pushes with a token of its own, as here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from .accounts import ROOT, Accounts, token_secret

if TYPE_CHECKING:
    import gitlab

    from ..core.secrets import Secrets

USER, TOKEN = "MANIFESTS_USER", "MANIFESTS_TOKEN"
TOKEN_NAME = "shop-manifests-push"
SCOPES = ["write_repository"]
SECRET = "gitlab-manifests-token"  # the lab's secret behind the sim's token (its random part)
DESCRIPTION = {USER: "who the deploy job pushes to shop/manifests as",
               TOKEN: "its personal access token (write_repository only); the deploy job commits image tags with it"}


def sim_variables(accounts: Accounts, secrets: Secrets) -> dict[str, str]:
    """The sim's: root's ``shop-manifests-push`` token, created in the accounts store on first use."""
    root = accounts.by_username(ROOT)
    if root is None:
        return {}
    value = token_secret(secrets.get(SECRET, 15)[:20])
    found = accounts.user_for_token(value)
    if found is None or found[1]["name"] != TOKEN_NAME:
        accounts.create_token(root, TOKEN_NAME, SCOPES, secret=value,
                              description="the shop's deploy job pushes image tags to shop/manifests")
    return {USER: ROOT, TOKEN: value}


def api_variables(gl: gitlab.Gitlab, have: set[str]) -> dict[str, str]:
    """Through the REST API (kind's GitLab CE): a new token for root unless the instance already holds the
    variables (``have``: the instance variables' keys); GitLab shows a token once, so it is not looked up."""
    if {USER, TOKEN} <= have:
        return {}
    gl.auth()
    assert gl.user is not None
    expires = (date.today() + timedelta(days=364)).isoformat()
    token = gl.users.get(gl.user.id).personal_access_tokens.create(
        {"name": TOKEN_NAME, "scopes": SCOPES, "expires_at": expires}).token
    return {USER: gl.user.username, TOKEN: token}
