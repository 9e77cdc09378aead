"""The GitLab component alone, on a real loopback listener in a temporary lab home (its loop on a thread),
driven by the real clients: ``git``, dulwich's client, ``python-gitlab``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest

from labkit.gitlab.component import GitLab
from labkit.gitlab.seed import root_token

from ..components import ComponentLoop


class RunningGitLab(ComponentLoop):
    def __init__(self, home: Path) -> None:
        super().__init__(home, "gitlab")
        self.component = self.start(GitLab(), "gitlab", "GitLab")

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

    def stop_components(self) -> None:
        self.run(self.component.stop())


@pytest.fixture(scope="module")
def gitlab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGitLab]:
    with RunningGitLab(tmp_path_factory.mktemp("gitlab-home")) as server:
        yield server
