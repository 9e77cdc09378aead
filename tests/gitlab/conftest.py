"""The GitLab component alone, on a real loopback listener in a temporary lab home (its loop on a thread),
driven by the real clients: ``git``, dulwich's client, ``python-gitlab``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest

from labkit.core.standalone import standalone_context
from labkit.gitlab.component import GitLab
from labkit.gitlab.seed import root_token


class RunningGitLab:
    def __init__(self, home: Path) -> None:
        self.ctx = standalone_context(home)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gitlab-loop", daemon=True)
        self.thread.start()
        self.component = GitLab()
        self.component.name, self.component.title = "gitlab", "GitLab"
        self.run(self.component.start(self.ctx))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    @property
    def url(self) -> str:
        return self.component.endpoint().url

    @property
    def token(self) -> str:
        return root_token(self.ctx.secrets)

    def client(self, token: str | None = None, **kw: Any) -> gitlab.Gitlab:
        return gitlab.Gitlab(self.url, private_token=token or self.token, **kw)

    def clone_url(self, project: str, user: str = "root", secret: str | None = None) -> str:
        host = self.url.removeprefix("http://")
        return f"http://{user}:{secret or self.token}@{host}/{project}.git"

    def stop(self) -> None:
        self.run(self.component.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def gitlab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGitLab]:
    server = RunningGitLab(tmp_path_factory.mktemp("gitlab-home"))
    yield server
    server.stop()
