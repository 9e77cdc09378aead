"""Repository URLs compared as Argo CD compares them: scheme, credentials, case, a trailing ``/`` or ``.git`` do not
matter (``git.SameURL``); a webhook's project URL matches a repoURL on its host and path, any port
(``getWebUrlRegex``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!\d+/)(.*)$")  # git@host:group/project.git


def _parts(url: str) -> tuple[str, str, str]:
    """(host, port, path) of a git URL in lower case, the path without ``.git`` and slashes around it."""
    url = url.strip()
    scp = _SCP.match(url) if "://" not in url else None
    if scp:
        host, port, path = scp.group(1), "", scp.group(2)
    else:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        host, port, path = parts.hostname or "", str(parts.port or ""), parts.path
    path = path.strip("/").lower()
    return host.lower(), port, path.removesuffix(".git")


def same_repo(a: str, b: str) -> bool:
    """Two URLs of one repository."""
    return _parts(a) == _parts(b)


def web_url_matches(web_url: str, repo_url: str) -> bool:
    """A webhook's project ``web_url`` names the repository ``repo_url`` (host and path; the port may differ)."""
    host, _, path = _parts(web_url)
    other_host, _, other_path = _parts(repo_url)
    for prefix in ("altssh.", "ssh."):  # GitLab's and GitHub's SSH hosts name the same project
        other_host = other_host.removeprefix(prefix) if other_host != host else other_host
    return bool(host) and (host, path) == (other_host, other_path)
