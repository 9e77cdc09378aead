"""The pipeline service on its own: a bare repository of the git server's (``GitRepos``), pushed to with the
system ``git``, the real planner and the real runner; no lab, no HTTP."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from labkit.gitlab.model import PipelineRequest, Project
from labkit.gitlab.pipelines import CiSettings, PipelineService
from labkit.gitlab.repos import GitRepos
from labkit.gitlab.runner import Runner, RunnerConfig

PROJECT = "shop/demo"
USER = {"id": 1, "username": "root", "name": "Administrator", "email": "admin@example.com"}


class Kit:
    """One project, its working copy, and a pipeline service over them."""

    def __init__(self, root: Path, concurrent: int = 2) -> None:
        self.root = root
        self.repos = GitRepos(root / "repositories")
        self.repos.init(PROJECT, "main")
        self.work = root / "work"
        subprocess.run(["git", "clone", "-q", str(self.repos.path(PROJECT)), str(self.work)], check=True,
                       capture_output=True)
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("checkout", "-q", "-b", "main")
        runner_dir = root / "ci" / "runner"
        runner_dir.mkdir(parents=True)
        (runner_dir / "config.toml").write_text(
            f'concurrent = {concurrent}\n[[runners]]\n  name = "test-runner"\n  executor = "labkit"\n'
            f'  builds_dir = "{root / "builds"}"\n  cache_dir = "{root / "cache"}"\n')
        self.config = RunnerConfig.load(runner_dir / "config.toml")
        self.project = Project(id=3, path_with_namespace=PROJECT, default_branch="main",
                               http_url_to_repo=f"http://127.0.0.1:9/{PROJECT}.git",
                               web_url=f"http://127.0.0.1:9/{PROJECT}")
        self.service = PipelineService(root / "ci", self.repos, CiSettings("http://127.0.0.1:9", "localhost:5001"),
                                       Runner(self.config, self.repos))
        self.head: str | None = None

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.work), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def push(self, files: dict[str, str], message: str = "change", branch: str = "main",
             source: str = "push", **kw: Any) -> dict[str, Any] | None:
        """Commit ``files``, push them, and start the pipeline GitLab would (None when it starts none)."""
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        before, self.head = self.head, self.git("rev-parse", "HEAD")
        return self.service.create(PipelineRequest(self.project, branch, self.head, source, USER,
                                                   before_sha=before, commit_message=message, **kw))

    def wait(self, pipeline: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        return self.service.wait(self.project.id, pipeline["id"], timeout)

    def jobs(self, pipeline: dict[str, Any], include_retried: bool = False) -> dict[str, dict[str, Any]]:
        """Jobs by name (the latest try of each unless ``include_retried``: then name#id)."""
        jobs = self.service.jobs(self.project.id, pipeline["id"], include_retried=include_retried)
        if include_retried:
            return {f"{j['name']}#{j['id']}": j for j in jobs}
        return {j["name"]: j for j in jobs}

    def trace(self, job: dict[str, Any]) -> str:
        return self.service.trace(self.project.id, job["id"])

    def wait_job(self, pipeline: dict[str, Any], name: str, statuses: tuple[str, ...],
                 timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.jobs(pipeline).get(name)
            if job and job["status"] in statuses:
                return job
            time.sleep(0.05)
        raise AssertionError(f"{name} is {self.jobs(pipeline).get(name, {}).get('status')}, not {statuses}")

    def close(self) -> None:
        self.service.close()
