"""A git working repository made with the system ``git``, read through the ``model.Repos`` protocol: what the
planner's tests plan from, and the directory ``gitlab-ci-local`` reads in the differential test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from labkit.gitlab.model import PipelineRequest, Project


class WorkRepo:
    """One project's repository in ``root`` (a working copy), with commits made by ``git``."""

    def __init__(self, root: Path, project: str = "shop/catalog", branch: str = "main") -> None:
        self.root, self.project_path, self.branch = root, project, branch
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("remote", "add", "origin", f"http://gitlab.example.com/{project}.git")

    @classmethod
    def clone(cls, url: str, root: Path, branch: str) -> WorkRepo:
        """A clone of ``url`` (with ``git``) on ``branch``."""
        subprocess.run(["git", "clone", "-q", "-b", branch, url, str(root)], check=True, capture_output=True)
        repo = cls.__new__(cls)
        owner, name = url.rsplit("/", 2)[-2:]
        repo.root, repo.project_path, repo.branch = root, f"{owner}/{name.removesuffix('.git')}", branch
        repo.git("config", "user.email", "dev@example.com")
        repo.git("config", "user.name", "Dev")
        return repo

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or delete, for None) files and commit them; the new commit's sha."""
        for path, text in files.items():
            target = self.root / path
            if text is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def checkout_branch(self, name: str) -> None:
        self.git("checkout", "-q", "-B", name)

    @property
    def project(self) -> Project:
        return Project(id=7, path_with_namespace=self.project_path, default_branch="main",
                       http_url_to_repo=f"http://gitlab.example.com/{self.project_path}.git",
                       web_url=f"http://gitlab.example.com/{self.project_path}")

    def request(self, sha: str, *, ref: str | None = None, source: str = "push", before: str | None = None,
                **kw: object) -> PipelineRequest:
        return PipelineRequest(project=self.project, ref=ref or self.branch, sha=sha, source=source,
                               user={"id": 1, "username": "root", "name": "Administrator"}, before_sha=before,
                               commit_message=self.git("log", "-1", "--format=%B", sha), **kw)  # type: ignore[arg-type]

    # model.Repos ---------------------------------------------------------------------------------------------
    def read_file(self, project: str, sha: str, path: str) -> bytes | None:
        done = subprocess.run(["git", "-C", str(self.root), "show", f"{sha}:{path}"], capture_output=True)
        return done.stdout if done.returncode == 0 else None

    def list_files(self, project: str, sha: str) -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", sha).splitlines()

    def changed_files(self, project: str, before: str | None, after: str) -> list[str] | None:
        if not before or set(before) == {"0"}:
            return None
        return self.git("diff", "--name-only", before, after).splitlines()

    def checkout(self, project: str, sha: str, dest: Path) -> None:
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", str(self.root), str(dest)], check=True, capture_output=True)
        subprocess.run(["git", "-C", str(dest), "checkout", "-q", "--detach", sha], check=True, capture_output=True)
