"""Git sources as Argo CD's repo server fetches them: over smart HTTP with the system ``git``, one bare cache per
repository URL, credentials from the repository Secrets (``argocd.argoproj.io/secret-type: repository``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SHA = re.compile(r"^[0-9a-f]{40}$")
RESOLVE_TTL = 1.0  # seconds a branch's resolved SHA is reused without asking the server again (a refresh asks)


class SourceError(Exception):
    """A source that cannot be fetched or rendered (a ComparisonError condition)."""


@dataclass
class Credentials:
    username: str = ""
    password: str = ""


@dataclass
class GitCache:
    root: Path
    creds: dict[str, Credentials] = field(default_factory=dict)  # repo URL prefix -> credentials
    _resolved: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    on_request: Callable[[str, str], None] | None = None  # (repo URL, git command): the repo server's metrics

    def _dir(self, url: str) -> Path:
        return self.root / hashlib.sha256(url.encode()).hexdigest()[:16]

    def _auth(self, url: str) -> list[str]:
        cred = next((c for prefix, c in sorted(self.creds.items(), key=lambda kv: -len(kv[0]))
                     if _norm(url).startswith(_norm(prefix))), None)
        if not cred or not cred.username:
            return []
        token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        return ["-c", f"http.extraHeader=Authorization: Basic {token}"]

    async def _git(self, url: str, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "no_proxy": "*", "NO_PROXY": "*"}
        if self.on_request is not None:
            self.on_request(url, args[0])
        proc = await asyncio.create_subprocess_exec(
            "git", *self._auth(url), *args, cwd=cwd, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise SourceError(f"git {args[0]}: {err.decode(errors='replace').strip() or out.decode().strip()}")
        return out.decode()

    async def resolve(self, url: str, revision: str, fresh: bool = False) -> str:
        """``targetRevision`` (branch, tag, SHA, HEAD or empty) as a commit SHA, as ``git ls-remote`` tells."""
        revision = revision or "HEAD"
        if SHA.match(revision):
            return revision
        cached = self._resolved.get((url, revision))
        if cached and not fresh and time.monotonic() - cached[0] < RESOLVE_TTL:
            return cached[1]
        refs: dict[str, str] = {}
        for line in (await self._git(url, "ls-remote", url)).splitlines():
            sha, _, ref = line.partition("\t")
            refs[ref] = sha
        for ref in (revision, f"refs/heads/{revision}", f"refs/tags/{revision}^{{}}", f"refs/tags/{revision}"):
            if ref in refs:
                self._resolved[(url, revision)] = (time.monotonic(), refs[ref])
                return refs[ref]
        if re.match(r"^[0-9a-f]{7,39}$", revision):  # a short SHA: the commit must be fetched to tell
            await self.fetch(url, revision)
            return (await self._git(url, "rev-parse", f"{revision}^{{commit}}", cwd=self._dir(url))).strip()
        raise SourceError(f"unable to resolve '{revision}' to a commit SHA")

    async def fetch(self, url: str, sha: str) -> Path:
        """The bare cache of ``url`` holding ``sha`` (fetched when missing)."""
        repo = self._dir(url)
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            if not (repo / "HEAD").exists():
                repo.mkdir(parents=True, exist_ok=True)
                await self._git(url, "init", "--bare", "-q", str(repo))
            try:
                await self._git(url, "cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
                return repo
            except SourceError:
                pass
            await self._git(url, "fetch", "-q", "--force", "--tags", url,
                            "+refs/heads/*:refs/heads/*", cwd=repo)
            try:
                await self._git(url, "cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
            except SourceError:
                raise SourceError(f"unable to resolve '{sha}' to a commit SHA: not in {url}") from None
        return repo

    async def checkout(self, url: str, sha: str, dest: Path) -> Path:
        """The tree of commit ``sha`` in ``dest`` (made afresh), from ``git archive``."""
        import io
        import tarfile

        repo = await self.fetch(url, sha)
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        proc = await asyncio.create_subprocess_exec("git", "--git-dir", str(repo), "archive", "--format=tar", sha,
                                                    env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise SourceError(f"git archive: {err.decode(errors='replace').strip()}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(out)) as tar:
            tar.extractall(dest, filter="data")
        return dest

    async def message(self, url: str, sha: str) -> dict[str, str]:
        """The commit's author, date and message (Argo CD's revision metadata)."""
        repo = await self.fetch(url, sha)
        out = await self._git(url, "show", "-s", "--format=%an <%ae>%n%cI%n%B", sha, cwd=repo)
        author, date, *msg = out.splitlines()
        return {"author": author, "date": date, "message": "\n".join(msg).strip()}


def _norm(url: str) -> str:
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url
