"""git smart HTTP (``info/refs``, ``git-upload-pack``, ``git-receive-pack``) served with dulwich, as GitLab does:
HTTP Basic auth (a user's password or personal access token, or ``gitlab-ci-token`` with a job's token), a
protected default branch (no force push, no deletion), push options (``git push -o ci.skip``), and every
accepted push handed to ``on_push`` (pipelines, webhooks)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from aiohttp import web
from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import (
    CAPABILITY_PUSH_OPTIONS,
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_PROGRESS,
    ReceivableProtocol,
)
from dulwich.repo import Repo
from dulwich.server import Backend, ReceivePackHandler, UploadPackHandler

from .accounts import Accounts, Caller, JobLookup, git_caller
from .projects import Projects
from .repos import BRANCH, ZERO, GitRepos

SERVICES = ("git-upload-pack", "git-receive-pack")
ROUTE = re.compile(r"^/(?P<repo>.+?)(?:\.git)?/(?P<what>info/refs|git-upload-pack|git-receive-pack)$")
FORCE_PUSH = "GitLab: You are not allowed to force push code to a protected branch on this project."
DELETE_PROTECTED = "GitLab: You can only delete protected branches using the web interface."
DECLINED = b"pre-receive hook declined"
log = logging.getLogger("labkit.gitlab.git")


@dataclass
class Push:
    """An accepted push: who, which project, the refs it moved (old, new, ref) and its push options."""

    project: dict[str, Any]
    caller: Caller
    updates: list[tuple[str, str, str]]
    options: list[str] = field(default_factory=list)


class _OneRepo(Backend):
    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> Repo:
        return self.repo


class LabReceivePack(ReceivePackHandler):
    """receive-pack with GitLab's protected default branch and push options."""

    protected: tuple[str, ...] = ()
    options: list[str]
    results: list[tuple[bytes, bytes]]

    def capabilities(self) -> list[bytes]:
        return [*super().capabilities(), CAPABILITY_PUSH_OPTIONS]

    def _apply_pack(self, refs: list[Any]) -> Iterator[tuple[bytes, bytes]]:
        self.options, self.results = [], []
        if self.has_capability(CAPABILITY_PUSH_OPTIONS):  # sent after the commands, before the pack
            while (line := self.proto.read_pkt_line()) is not None:
                self.options.append(line.rstrip(b"\n").decode())
        for result in super()._apply_pack(refs):
            self.results.append(result)
            yield result

    def _on_update(self, ref_name: bytes, old_sha: bytes, new_sha: bytes) -> bytes | None:
        ref = ref_name.decode()
        if ref.startswith(BRANCH) and ref.removeprefix(BRANCH) in self.protected and old_sha.decode() != ZERO:
            message = None
            if new_sha.decode() == ZERO:
                message = DELETE_PROTECTED
            elif not _descends(self.repo, old_sha, new_sha):
                message = FORCE_PUSH
            if message:
                if self.has_capability(CAPABILITY_SIDE_BAND_64K):
                    self.proto.write_sideband(SIDE_BAND_CHANNEL_PROGRESS, message.encode() + b"\n")
                return DECLINED
        return super()._on_update(ref_name, old_sha, new_sha)


def _descends(repo: Repo, old: bytes, new: bytes) -> bool:
    return any(entry.commit.id == old for entry in repo.get_walker(include=[new]))


class GitHttp:
    """The git routes of the GitLab app."""

    def __init__(self, accounts: Accounts, projects: Projects, repos: GitRepos,
                 on_push: Callable[[Push], None], job_for_token: JobLookup | None = None) -> None:
        self.accounts = accounts
        self.projects = projects
        self.repos = repos
        self.on_push = on_push
        self.job_for_token = job_for_token

    def install(self, app: web.Application) -> None:
        app.router.add_route("GET", "/{repo:.+}/info/refs", self.handle)
        app.router.add_route("POST", "/{repo:.+}/git-upload-pack", self.handle)
        app.router.add_route("POST", "/{repo:.+}/git-receive-pack", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        match = ROUTE.match(request.path)
        if match is None:
            raise web.HTTPNotFound()
        what = match["what"]
        service = request.query.get("service", "") if what == "info/refs" else what
        if service not in SERVICES:
            return web.Response(status=403, text="Dumb HTTP is not supported by the labkit simulator: "
                                                 "use git's smart HTTP (git 1.6.6 or later)\n")
        caller = await asyncio.to_thread(git_caller, request, self.accounts, self.job_for_token)
        if caller is None:
            return _challenge("HTTP Basic: Access denied. If a password was provided for Git authentication, the "
                              "password was incorrect or you're required to use a token instead of a password.")
        project = self.projects.by_repo_path(match["repo"])
        pushing = service == "git-receive-pack"
        if project is None or not self.projects.visible(project, caller):
            if caller.user is None:
                return _challenge("HTTP Basic: Access denied")
            return web.Response(status=404, text="The project you were looking for could not be found or you "
                                                 "don't have permission to view it.\n")
        if pushing and caller.user is None:
            return _challenge("HTTP Basic: Access denied")
        if not caller.can("write_repository" if pushing else "read_repository"):
            return web.Response(status=403, text="You are not allowed to " + ("push code to" if pushing else
                                "download code from") + " this project.\n")
        if pushing and not self.projects.writable(project, caller):
            return web.Response(status=403, text="You are not allowed to push code to this project.\n")
        body = await request.read()  # aiohttp has undone a Content-Encoding: gzip (git sends big requests so)
        if what == "info/refs":
            out = await asyncio.to_thread(self._advertise, project, service)
            return _git_response(out, f"application/x-{service}-advertisement")
        if request.content_type != f"application/x-{service}-request":
            return web.Response(status=415, text="Unsupported Media Type\n")
        try:
            if service == "git-upload-pack":
                out = await asyncio.to_thread(self._upload_pack, project, body)
            else:
                out = await asyncio.to_thread(self._receive_pack, project, caller, body)
        except (GitProtocolError, HangupException) as err:
            return web.Response(status=400, text=f"git protocol error: {err}\n")
        return _git_response(out, f"application/x-{service}-result")

    def _advertise(self, project: dict[str, Any], service: str) -> bytes:
        out = BytesIO()
        proto = ReceivableProtocol(BytesIO().read, out.write)
        proto.write_pkt_line(f"# service={service}\n".encode())
        proto.write_pkt_line(None)
        with self.repos.open(project["path_with_namespace"]) as repo:
            cls = UploadPackHandler if service == "git-upload-pack" else LabReceivePack
            cls(_OneRepo(repo), ["/"], proto, stateless_rpc=True, advertise_refs=True).handle()
        return out.getvalue()

    def _upload_pack(self, project: dict[str, Any], body: bytes) -> bytes:
        out = BytesIO()
        with self.repos.open(project["path_with_namespace"]) as repo:
            proto = ReceivableProtocol(BytesIO(body).read, out.write)
            UploadPackHandler(_OneRepo(repo), ["/"], proto, stateless_rpc=True).handle()
        return out.getvalue()

    def _receive_pack(self, project: dict[str, Any], caller: Caller, body: bytes) -> bytes:
        out = BytesIO()
        with self.repos.open(project["path_with_namespace"]) as repo:
            proto = ReceivableProtocol(BytesIO(body).read, out.write)
            handler = LabReceivePack(_OneRepo(repo), ["/"], proto, stateless_rpc=True)
            handler.protected = (project["default_branch"],)
            commands: list[tuple[str, str, str]] = []
            original = handler._apply_pack

            def recording(refs: list[Any]) -> Iterator[tuple[bytes, bytes]]:
                commands.extend((o.decode(), n.decode(), r.decode()) for o, n, r in refs)
                return original(refs)

            handler._apply_pack = recording  # type: ignore[method-assign]
            handler.handle()
        results = dict(getattr(handler, "results", []))
        accepted = [c for c in commands if results.get(c[2].encode()) == b"ok"]
        if accepted:
            try:
                self.on_push(Push(project, caller, accepted, list(getattr(handler, "options", []))))
            except Exception:  # a push that landed is not undone by what follows it
                log.exception("after the push to %s", project["path_with_namespace"])
        return out.getvalue()


def _challenge(message: str) -> web.Response:
    return web.Response(status=401, text=message + "\n", headers={"WWW-Authenticate": 'Basic realm="GitLab"'})


def _git_response(body: bytes, content_type: str) -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-cache, max-age=0, "
                                            "must-revalidate", "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
                                            "Pragma": "no-cache"})
