"""What a new lab's GitLab holds: the ``root`` administrator with a personal access token (kept in the lab's
secrets), the ``shop`` group, and the shop's projects seeded from the lab repository (``apps/`` as
``shop/shop``, ``manifests/apps/`` as ``shop/manifests``)."""

from __future__ import annotations

from pathlib import Path

from ..core.checkout import Checkout
from ..core.secrets import GITLAB_ROOT_PASSWORD, GITLAB_ROOT_TOKEN, Secrets
from .accounts import ALL_SCOPES, ROOT, Accounts, token_secret
from .projects import Projects
from .repos import Author, GitRepos

SHOP = "shop/shop"
MANIFESTS = "shop/manifests"
SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".venv", "node_modules"}


def root_token(secrets: Secrets) -> str:
    """The root user's personal access token (the lab's secrets keep its random part)."""
    return token_secret(secrets.get(GITLAB_ROOT_TOKEN, 15)[:20])


def files_of(folder: Path) -> dict[str, bytes]:
    """A folder's files as a commit holds them (caches and bytecode left out)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not SKIP & set(rel.parts) and path.suffix not in (".pyc", ".pyo"):
            out[rel.as_posix()] = path.read_bytes()
    return out


def seed(accounts: Accounts, projects: Projects, repos: GitRepos, secrets: Secrets,
         root_password: str | None = None, fresh: bool = False) -> None:
    """Create what is missing (a restart keeps what is there); ``root_password``: the omnibus configuration's
    ``initial_root_password`` instead of the lab's secret; ``fresh``: only the root user, as a new GitLab CE
    (``provision`` does the rest through the API)."""
    root = accounts.by_username(ROOT)
    if root is None:
        root = accounts.create_user(ROOT, "Administrator", "admin@example.com",
                                    root_password or secrets.get(GITLAB_ROOT_PASSWORD), admin=True)
        projects.namespace_for_user(root)
        if not fresh:
            accounts.create_token(root, "labkit", list(ALL_SCOPES[:8]), secret=root_token(secrets))
    if fresh:
        return
    group = projects.namespace_by_path("shop") or projects.create_group("shop", "shop", "private", root)
    checkout = Checkout.find().root
    author = Author("Administrator", "admin@example.com")
    for path, folder, description in ((SHOP, checkout / "apps", "The demo shop: gateway, catalog, orders"),
                                      (MANIFESTS, checkout / "manifests" / "apps", "The shop's Kubernetes manifests")):
        if projects.find_path(path) is None:
            project = projects.create(root, path.split("/")[1], path.split("/")[1], group, "private", description)
            repos.write(path, project["default_branch"], files_of(folder), "Initial commit", author)
            projects.touch(project, empty_repo=False)
    shop, manifests = projects.find_path(SHOP), projects.find_path(MANIFESTS)
    if shop and manifests and shop["id"] not in manifests.get("_job_token_allowlist", []):
        # the shop's jobs read the manifests with their job token (they push with MANIFESTS_TOKEN)
        projects.touch(manifests, _job_token_allowlist=[*manifests.get("_job_token_allowlist", []), shop["id"]])
