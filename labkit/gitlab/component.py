"""GitLab as a lab component: git smart HTTP and the REST API v4 on one loopback listener, state on disk
under the lab home, the ``root`` user and the shop's projects seeded, a push → a pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.addresses import GITLAB
from ..core.component import Component, Context, Health
from ..core.files import write_atomic
from ..core.http import Listeners, api_app
from ..endpoints import GitLabEndpoint, RegistryEndpoint
from . import api
from .accounts import Accounts
from .errors import render
from .git import GitHttp, Push
from .hooks import Webhooks
from .instance_variables import InstanceVariables
from .manifests_access import DESCRIPTION, TOKEN
from .manifests_access import sim_variables as manifests_variables
from .metrics import GitLabMetrics
from .model import PipelineRequest, Pipelines
from .projects import Projects
from .registry_access import sim_variables
from .repos import BRANCH, TAG, ZERO, GitRepos
from .seed import MANIFESTS, SHOP, root_token, seed
from .store import GitLabStore

MAX_BODY = 512 * 1024 * 1024  # a push's pack
log = logging.getLogger("labkit.gitlab")

# How the pipeline service and the CI planner's lint are made (their modules install themselves here when
# they exist; see ``_services``): ``(ctx, repos, base_url) -> Pipelines`` and ``(**kw) -> lint answer``.
PipelinesFactory = Callable[[Context, GitRepos, str], Pipelines]


class GitLab(Component):
    """The GitLab emulator. ``bind``/``external_url``/``root_password`` override the lab's choices (the
    standalone server, which the kind harness runs for the ``gitlab/gitlab-ce`` image, sets them from the
    omnibus configuration)."""

    bind: tuple[str, int] | None = None
    external_url: str | None = None
    root_password: str | None = None
    runner_env: Path | None = None  # a JSON file of job environment the runner reads per job (standalone.py)
    fresh: bool = False  # only the root user, as a new GitLab CE (the kind harness provisions it through the API)

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        state = ctx.state_dir(self.name or "gitlab")
        self.address = self.bind or ctx.network.slot(GITLAB)
        host, port = self.address
        self.base_url = (self.external_url or f"http://{host}:{port}").rstrip("/")
        self.store = GitLabStore(state / "gitlab.db")
        self.repos = GitRepos(state / "repositories")
        self.accounts = Accounts(self.store, self.base_url)
        self.projects = Projects(self.store, self.repos, self.base_url)
        await asyncio.to_thread(seed, self.accounts, self.projects, self.repos, ctx.secrets, self.root_password,
                                self.fresh)
        self.token_file = state / "root-token"
        if not self.fresh:
            write_atomic(self.token_file, root_token(ctx.secrets) + "\n", mode=0o600)
        self.hooks = Webhooks(self.store, self.repos)
        self.hooks.loop = asyncio.get_running_loop()
        self.services = api.Services(self.accounts, self.projects, self.repos, self.base_url,
                                     *_services(ctx, self.repos, self.base_url))
        app = api_app(self.name or "gitlab", render_error=render, max_body=MAX_BODY,
                      logger=ctx.logger(self.name or "gitlab"))
        api.install(app, self.services, self.hooks)
        pipelines = self.services.pipelines
        GitLabMetrics(self.projects, pipelines).install(app)  # /-/metrics
        if pipelines is not None and hasattr(pipelines, "instance_variables"):
            pipelines.instance_variables = InstanceVariables(self.store)  # every job gets them
        registry = ctx.endpoints.get("registry")
        if not self.fresh and isinstance(registry, RegistryEndpoint):  # HARBOR_USER/HARBOR_PASSWORD for the build
            await asyncio.to_thread(self._registry_variables, registry)
        if not self.fresh:  # MANIFESTS_USER/MANIFESTS_TOKEN: the deploy job commits to shop/manifests
            await asyncio.to_thread(self._manifests_variables)
        if pipelines is not None and self.runner_env is not None:
            pipelines.runner.env_file = self.runner_env
        GitHttp(self.accounts, self.projects, self.repos, self.after_push,
                pipelines.job_for_token if pipelines is not None else None).install(app)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    def _registry_variables(self, registry: RegistryEndpoint) -> None:
        """Set the instance variables a pipeline pushes to the lab registry with (``registry_access``)."""
        variables = InstanceVariables(self.store)
        for v in sim_variables(registry, self.ctx.secrets):
            variables.set(v.key, {"value": v.value, "masked": v.masked, "raw": True, "description": v.description})

    def _manifests_variables(self) -> None:
        """Set the instance variables the deploy job pushes to ``shop/manifests`` with (``manifests_access``)."""
        variables = InstanceVariables(self.store)
        for key, value in manifests_variables(self.accounts, self.ctx.secrets).items():
            variables.set(key, {"value": value, "masked": key == TOKEN, "raw": True, "description": DESCRIPTION[key]})

    def after_push(self, push: Push) -> None:
        """What GitLab does after a push lands: a pipeline per pushed branch or tag, then the webhooks."""
        project = self.projects.touch(push.project, empty_repo=False)
        pipelines = self.services.pipelines
        for old, new, ref in push.updates:
            if new == ZERO or pipelines is None or not ref.startswith((BRANCH, TAG)):
                continue
            commit = self.repos.commit(project["path_with_namespace"], new)
            pipelines.create(PipelineRequest(
                self.projects.model(project), ref.removeprefix(BRANCH).removeprefix(TAG), new, "push",
                self.accounts.public(push.caller.user or {}), {}, None if old == ZERO else old,
                ref.startswith(TAG), push.options, commit.message.decode(errors="replace") if commit else ""))
        self.hooks.deliver(push)

    async def stop(self) -> None:
        await self.listeners.stop()
        close = getattr(self.services.pipelines, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        self.store.close()

    async def reset(self) -> None:
        import shutil

        self.store.wipe()
        shutil.rmtree(self.repos.root, ignore_errors=True)
        self.repos.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(seed, self.accounts, self.projects, self.repos, self.ctx.secrets, self.root_password,
                                self.fresh)
        registry = self.ctx.endpoints.get("registry")
        if not self.fresh and isinstance(registry, RegistryEndpoint):  # the wiped store lost HARBOR_USER/PASSWORD
            await asyncio.to_thread(self._registry_variables, registry)
        if not self.fresh:
            await asyncio.to_thread(self._manifests_variables)

    def endpoint(self) -> GitLabEndpoint:
        return GitLabEndpoint(self.title or "GitLab", self.base_url, api=f"{self.base_url}/api/v4",
                              projects=[SHOP, MANIFESTS], token_file="" if self.fresh else str(self.token_file))

    async def health(self) -> Health:
        return Health(True, f"{len(self.projects.all())} projects")


def _services(ctx: Context, repos: GitRepos, base_url: str) -> tuple[Pipelines | None, Callable[..., Any] | None]:
    """The pipeline service and the CI lint, from their modules (``pipelines.py``, ``ci/``) when installed."""
    pipelines = None
    try:
        from . import pipelines as pipelines_module  # type: ignore[attr-defined]
    except ImportError:
        pipelines_module = None
    make = getattr(pipelines_module, "for_lab", None)
    if make is not None:
        pipelines = make(ctx, repos, base_url)
    from .ci import lint as ci_lint

    def lint_answer(*, project: dict[str, Any], content: str, ref: str, sha: str, dry_run: bool) -> dict[str, Any]:
        return ci_lint(repos, Projects.model(project), sha=sha, ref=ref, content=content, dry_run=dry_run,
                       include_jobs=True)

    return pipelines, lint_answer
