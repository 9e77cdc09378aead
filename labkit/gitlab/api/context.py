"""What the REST API's route modules share: the GitLab emulator's services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..accounts import Accounts
from ..errors import unsupported
from ..model import Pipelines
from ..projects import Projects
from ..repos import GitRepos

VERSION = "17.11.0"  # the GitLab release whose API the emulator follows


@dataclass
class Services:
    accounts: Accounts
    projects: Projects
    repos: GitRepos
    base_url: str
    pipelines: Pipelines | None = None
    lint: Callable[..., dict[str, Any]] | None = None  # the CI planner's lint, when it is installed

    def need_pipelines(self) -> Pipelines:
        if self.pipelines is None:
            raise unsupported("CI/CD pipelines (the pipeline service is not installed)")
        return self.pipelines
