"""``lab.gitlab``: the lab's GitLab from a notebook, the same on every backend.

``python-gitlab`` with the lab's token for the API, the system ``git`` with a clone URL that carries the
credentials (as GitLab takes them over HTTP: a user name and a personal access token), waiting for a pipeline
with a deadline while a live plot shows its jobs, job logs, and ``repair()``: the shop's project back to what the
lab seeded (its default branch, no broken ``.gitlab-ci.yml`` left by an interrupted lesson, nothing running).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..core.checkout import Checkout
from ..core.errors import LabError
from ..core.files import read_json, write_json
from ..core.view import ProductView
from ..endpoints import GitLabEndpoint
from .seed import MANIFESTS, SHOP, files_of

if TYPE_CHECKING:
    import gitlab
    import pandas as pd
    from matplotlib.figure import Figure

FINISHED = ("success", "failed", "canceled", "skipped")
RUNNING = ("created", "waiting_for_resource", "preparing", "pending", "running")
IDENTITY = {"user.name": "Attendee", "user.email": "attendee@example.com"}
REPAIR_MESSAGE = "Restore the shop as the lab seeded it [skip ci]"
SEEDED = {SHOP: "apps", MANIFESTS: "manifests/apps"}  # project -> the folder of the lab repository it was seeded from


@dataclass
class PipelineWatch:
    """What ``lab.gitlab.watch`` saw: the pipeline as GitLab last answered, its jobs (one row each: stage, status,
    start and end in seconds since the pipeline was created) and the plot of them."""

    pipeline: dict[str, Any]
    jobs: pd.DataFrame
    figure: Figure | None

    @property
    def status(self) -> str:
        return str(self.pipeline["status"])


class GitLabView(ProductView):
    @property
    def endpoint(self) -> GitLabEndpoint:
        return self.lab.endpoints.get(GitLabEndpoint)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def token(self) -> str:
        """The administrator's personal access token (the lab keeps it in a 0600 file)."""
        path = self.endpoint.token_file
        if not path or not Path(path).is_file():
            raise LabError("this lab's GitLab has no token for labkit yet: `labkit status` says whether it is up")
        return Path(path).read_text().strip()

    # -- clients ---------------------------------------------------------------------------------
    def client(self) -> gitlab.Gitlab:
        """A ``python-gitlab`` client signed in with the lab's token."""
        import gitlab

        return gitlab.Gitlab(self.url, private_token=self.token, timeout=30)

    def project(self, path: str = SHOP) -> Any:
        """A project by its path (``shop/shop``), as ``python-gitlab`` gives it."""
        return self.client().projects.get(path)

    def clone_url(self, project: str = SHOP, credentials: bool = True) -> str:
        """What ``git clone`` takes: ``http://root:<token>@<gitlab>/shop/shop.git`` (the token as the password)."""
        parts = urlsplit(self.url)
        auth = f"{quote(self.endpoint.user, safe='')}:{quote(self.token, safe='')}@" if credentials else ""
        return f"{parts.scheme}://{auth}{parts.netloc}{parts.path.rstrip('/')}/{project}.git"

    @property
    def workdir(self) -> Path:
        """Where the attendee's clones live: the lab's workspace, where JupyterLab's terminals start."""
        return self.lab.paths.workspace

    def git(self, *args: str, cwd: str | os.PathLike[str] | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The system ``git``, never prompting; ``check`` raises with git's own message (credentials hidden)."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
        if check and res.returncode != 0:
            said = (res.stderr.strip() or res.stdout.strip()).replace(self.token, "<token>")
            raise LabError(f"git {' '.join(a.replace(self.token, '<token>') for a in args)}: {said}")
        return res

    def clone(self, dest: str | os.PathLike[str] | None = None, project: str = SHOP, fresh: bool = False) -> Path:
        """``git clone`` of ``project`` into ``dest`` (default: ``shop`` in the workspace), with a commit identity
        set in the clone when git has none; ``fresh`` removes what is there first."""
        target = Path(dest) if dest is not None else self.workdir / project.rsplit("/", 1)[-1]
        if fresh and target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.git("clone", "--quiet", self.clone_url(project), str(target))
        for key, value in IDENTITY.items():
            if self.git("config", key, cwd=target, check=False).returncode != 0:
                self.git("config", key, value, cwd=target)
        return target

    def head(self, project: str = SHOP, branch: str | None = None) -> str:
        """The commit the server's branch (default: the default branch) points at, from the API."""
        p = self.project(project)
        return str(p.branches.get(branch or p.default_branch).commit["id"])

    # -- pipelines -------------------------------------------------------------------------------
    def pipelines(self, project: str = SHOP, **filters: Any) -> pd.DataFrame:
        """A project's pipelines, newest first (GitLab's list fields; ``filters`` as the API takes them)."""
        import pandas as pd

        filters.setdefault("get_all", True)
        rows = [p.attributes for p in self.project(project).pipelines.list(**filters)]
        columns = ["id", "iid", "status", "source", "ref", "sha", "created_at", "updated_at"]
        return pd.DataFrame(rows, columns=columns).set_index("id") if rows else pd.DataFrame(columns=columns)

    def pipeline_for(self, sha: str, project: str = SHOP, timeout: float = 30) -> dict[str, Any]:
        """The newest pipeline of commit ``sha``, waiting up to ``timeout`` seconds for GitLab to create it."""
        p = self.project(project)
        deadline = time.monotonic() + timeout
        while True:
            found = p.pipelines.list(sha=sha, per_page=1, get_all=False)
            if found:
                return dict(found[0].attributes)
            if time.monotonic() > deadline:
                raise LabError(f"GitLab created no pipeline for {sha[:8]} in {timeout:.0f} s: did the push reach "
                               f"{project}'s default branch? `git log origin/HEAD -1`; a `[skip ci]` in the message "
                               "or `git push -o ci.skip` skip it")
            time.sleep(0.2)

    def jobs(self, pipeline_id: int, project: str = SHOP) -> list[dict[str, Any]]:
        """A pipeline's jobs as GitLab's API gives them (retried ones left out)."""
        p = self.project(project)
        return [dict(j.attributes) for j in p.pipelines.get(pipeline_id, lazy=True).jobs.list(get_all=True)]

    def job(self, pipeline_id: int, name: str, project: str = SHOP) -> dict[str, Any]:
        """The job called ``name`` of a pipeline."""
        for job in self.jobs(pipeline_id, project):
            if job["name"] == name:
                return job
        raise LabError(f"pipeline {pipeline_id} has no job {name!r}")

    def trace(self, job_id: int, project: str = SHOP) -> str:
        """A job's log (its trace), as far as it has run."""
        return bytes(self.project(project).jobs.get(job_id, lazy=True).trace()).decode(errors="replace")

    def stages(self, sha: str, project: str = SHOP) -> list[str]:
        """The stages ``.gitlab-ci.yml`` declares at a commit, in order (for the plot), from CI lint."""
        p = self.project(project)
        try:
            f = p.files.get(".gitlab-ci.yml", ref=sha)
        except Exception:  # no file at this commit: the plot orders stages by the jobs alone
            return []
        import yaml

        try:
            doc = yaml.safe_load(f.decode()) or {}
        except yaml.YAMLError:
            return []
        stages = doc.get("stages") if isinstance(doc, dict) else None
        return [".pre", *[str(s) for s in stages], ".post"] if isinstance(stages, list) else []

    def watch(self, pipeline_id: int, project: str = SHOP, timeout: float | None = None, every: float = 1.0,
              title: str = "") -> PipelineWatch:
        """Follow a pipeline until it finishes or ``timeout`` seconds pass (default: the lab's
        ``pipeline_seconds``), with its jobs drawn live in this cell's output; the last answer, its jobs and the
        plot. Raises when the deadline passes, saying which jobs had not finished."""
        from .views import LivePipeline, job_frame, plot_pipeline

        limit = timeout if timeout is not None else self.lab.timings.pipeline_seconds
        p = self.project(project)
        pipeline = dict(p.pipelines.get(pipeline_id).attributes)
        order = self.stages(pipeline["sha"], project)
        title = title or f"{project} pipeline #{pipeline_id} ({pipeline['ref']} @ {pipeline['sha'][:8]})"
        live = LivePipeline(title, order)
        deadline = time.monotonic() + limit
        while True:
            pipeline = dict(p.pipelines.get(pipeline_id).attributes)
            jobs = job_frame(pipeline, [dict(j.attributes) for j in
                                        p.pipelines.get(pipeline_id, lazy=True).jobs.list(get_all=True)])
            live(jobs, pipeline["status"])
            if pipeline["status"] in (*FINISHED, "manual"):  # manual: blocked on a manual job
                break
            if time.monotonic() > deadline:
                late = ", ".join(f"{r.job} ({r.status})" for r in jobs.itertuples() if r.status in RUNNING)
                raise LabError(f"pipeline {pipeline_id} was still {pipeline['status']} after {limit:.0f} s "
                               f"(unfinished: {late or 'none'}); its jobs' logs say what they wait for")
            time.sleep(every)
        figure = live.close(plot_pipeline(jobs, title, order, pipeline["status"]))
        return PipelineWatch(pipeline, jobs, figure)

    def lint(self, content: str, project: str = SHOP) -> dict[str, Any]:
        """CI lint of ``content`` in the project's context (``POST /projects/:id/ci/lint``): ``valid``,
        ``errors``, ``warnings``."""
        return dict(self.project(project).ci_lint.create({"content": content}).attributes)

    def cancel_running(self, project: str = SHOP, timeout: float = 60) -> list[str]:
        """Cancel the project's unfinished pipelines and wait until they are (their jobs' processes stopped);
        what it cancelled."""
        p = self.project(project)
        cancelled = []
        for status in ("running", "pending", "created", "waiting_for_resource", "preparing", "scheduled"):
            for pl in p.pipelines.list(status=status, get_all=True):
                pl.cancel()
                cancelled.append(pl.id)
        deadline = time.monotonic() + timeout
        for pid in cancelled:
            while (status := p.pipelines.get(pid).status) not in FINISHED:
                if time.monotonic() > deadline:
                    raise LabError(f"pipeline {pid} of {project} was still {status} {timeout:.0f} s after it was "
                                   "cancelled: its jobs' logs say what they are doing")
                time.sleep(0.2)
        return [f"pipeline {pid} of {project} cancelled" for pid in cancelled]

    # -- repair ------------------------------------------------------------------------------------
    def repair(self) -> list[str]:
        """The shop's projects as the lab seeded them: their unfinished pipelines cancelled, and their default
        branches' files those of ``apps/`` and ``manifests/apps/`` again (a new commit, ``[skip ci]``; the default
        branch is protected, so history is not rewritten; the deploy job commits image tags to ``shop/manifests``).
        Cheap when nothing changed: the branch head is compared with the last one seen seeded, and the checkout's
        files with those it seeded (a workshop update brings new ones)."""
        done: list[str] = []
        for project, folder in SEEDED.items():
            done += self.cancel_running(project)
            done += self._restore(project, Checkout.find().root / folder)
        return done

    def commit(self, edit: Callable[[Path], Any], message: str, project: str = SHOP) -> str | None:
        """Change ``project``'s default branch as a person would: clone it, let ``edit(work)`` change the working
        copy, commit and ``git push`` (a pipeline follows, unless the message says ``[skip ci]``). The new commit,
        or None when ``edit`` changed nothing."""
        with tempfile.TemporaryDirectory(prefix="labkit-gitlab-") as tmp:
            work = self.clone(Path(tmp) / "work", project)
            edit(work)
            self.git("add", "--all", cwd=work)
            if not self.git("status", "--porcelain", cwd=work).stdout.strip():
                return None
            self.git("commit", "--quiet", "-m", message, cwd=work)
            self.git("push", "--quiet", "origin", "HEAD", cwd=work)
            return self.git("rev-parse", "HEAD", cwd=work).stdout.strip()

    def _restore(self, project: str, folder: Path) -> list[str]:
        record = self.lab.paths.state / "gitlab-seeded.json"
        seen = read_json(record, {}) or {}
        head = self.head(project)
        want = files_of(folder)
        digest = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in sorted(want.items()))).hexdigest()
        if seen.get(project) == {"head": head, "files": digest}:  # as seeded, from the checkout as it is now
            return []

        def restore(work: Path) -> None:
            for path in work.rglob("*"):
                rel = path.relative_to(work)
                if path.is_file() and ".git" not in rel.parts and rel.as_posix() not in want:
                    path.unlink()
            for rel, data in want.items():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                if not (work / rel).is_file() or (work / rel).read_bytes() != data:
                    (work / rel).write_bytes(data)

        restored = self.commit(restore, REPAIR_MESSAGE, project)
        seen[project] = {"head": restored or head, "files": digest}
        write_json(record, seen)
        return [f"{project} restored as the lab seeded it"] if restored else []


