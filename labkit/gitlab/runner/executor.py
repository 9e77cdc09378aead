"""One CI job, run as gitlab-runner's shell steps would run it, as local processes in the job image's root
filesystem (the image builder's RUN contract: ``labkit.images.run``).

Steps and trace lines follow gitlab-runner's: prepare the image, get the sources (a fresh working copy of the
commit at ``CI_PROJECT_DIR``), restore the cache, download the artifacts of earlier jobs, ``before_script`` and
``script`` in one ``bash -eo pipefail`` (each command echoed as ``$ cmd``), ``after_script`` in another shell
(its failure changes nothing), then cache and artifacts (a zip, plus ``junit``/``dotenv`` reports) uploaded.
The trace is appended to a file while the job runs. A timeout or a cancel kills the job's process group.
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.procs import _child_setup, kill_group
from ...images.run import make_shims, run_env
from ..ci.variables import expand
from ..model import Project, Repos
from .config import RunnerConfig
from .images import ImageError, resolve

AFTER_SCRIPT_TIMEOUT = 300
_GREEN, _RED, _CYAN, _RESET = "\x1b[32;1m", "\x1b[31;1m", "\x1b[36;1m", "\x1b[0;m"
_PASS_THROUGH = ("LABKIT_CACHE", "LABKIT_BUILD_CACHE")


@dataclass
class JobRun:
    """Everything the runner needs for one job (the pipeline service fills it)."""

    job: dict[str, Any]  # the job's record: id, name, stage, ... and ``_plan`` (a JobPlan as a dict)
    project: Project
    sha: str
    ref: str
    variables: dict[str, str]  # the job's variables, predefined ones of the pipeline and the job included
    timeout: int
    trace: Path
    artifacts_dir: Path  # where this job's archive and reports go
    dependencies: list[tuple[int, str, Path]] = field(default_factory=list)  # (job id, name, archive)
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class JobResult:
    status: str  # success, failed, canceled
    failure_reason: str | None = None
    exit_code: int | None = None
    archive: Path | None = None
    reports: dict[str, Path] = field(default_factory=dict)  # file type (junit, dotenv) -> stored file
    dotenv: dict[str, str] = field(default_factory=dict)


class _Trace:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the runner

    def line(self, text: str, color: str = "") -> None:
        self.file.write(f"{color}{text}{_RESET if color else ''}\n".encode())

    def raw(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


def _script(commands: list[str]) -> str:
    """The shell script gitlab-runner's bash shell generates, in short: echo each command, then run it."""
    lines = ["set -eo pipefail", "set +o noclobber", ": | eval $'true'"]
    for cmd in commands:
        first = cmd.strip().split("\n", 1)
        shown = f"{_GREEN}$ {first[0]}{' # collapsed multi-line command' if len(first) > 1 else ''}{_RESET}"
        lines.append(f"printf '%s\\n' {shlex.quote(shown)}")
        lines.append(cmd)
    return "\n".join(lines) + "\n"


def _matches(root: Path, patterns: list[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        for hit in sorted(glob.glob(pattern, root_dir=root, recursive=True)):
            path = root / hit
            if path.is_dir():
                found.extend(p for p in sorted(path.rglob("*")) if p.is_file() or p.is_symlink())
            elif path.exists() or path.is_symlink():
                found.append(path)
    return list(dict.fromkeys(found))


def _zip(root: Path, files: list[Path], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.relative_to(root).as_posix())


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (dest / member.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                continue  # an archive entry outside the project folder: skipped, as the runner does
            zf.extract(member, dest)


def parse_dotenv(text: str) -> dict[str, str]:
    """A ``dotenv`` report: ``KEY=VALUE`` lines (GitLab's rules: no ``export``, no multi-line values)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


class Runner:
    """Runs jobs (one thread each, ``config.concurrent`` at a time: the pipeline service's workers)."""

    def __init__(self, config: RunnerConfig, repos: Repos, mirrors: dict[str, str] | None = None,
                 pull: Callable[[str], Any] | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.repos = repos
        self.mirrors = mirrors or {}
        self.pull = pull
        self.extra_env = extra_env or {}  # e.g. PIP_NO_INDEX/PIP_FIND_LINKS, the registry for kaniko, KUBECONFIG
        self.env_file: Path | None = None  # JSON {"env": {...}} read for each job when it exists (standalone.py)

    def job_env(self) -> dict[str, str]:
        """What every job's environment gets beside its variables: ``extra_env``, then ``env_file``'s."""
        env = dict(self.extra_env)
        if self.env_file is not None and self.env_file.is_file():
            env.update({str(k): str(v) for k, v in json.loads(self.env_file.read_text()).get("env", {}).items()})
        return env

    # -- the job -------------------------------------------------------------------------------------------
    def run(self, job: JobRun, slot: int) -> JobResult:
        trace = _Trace(job.trace)
        scratch = self.config.builds_dir / str(slot) / ".images" / str(job.job["id"])
        try:
            return self._run(job, slot, trace)
        except Exception as err:
            trace.line(f"ERROR: Job failed (system failure): {err}", _RED)
            return JobResult("failed", "runner_system_failure")
        finally:
            trace.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, job: JobRun, slot: int, trace: _Trace) -> JobResult:
        plan = job.job["_plan"]
        trace.line(f"Running with gitlab-runner 17.5.0 (labkit)\n  on {self.config.name} labkit-sim", "")
        image_name = expand(plan.get("image") or self.config.image, job.variables)  # as the runner expands it
        builds = self.config.builds_dir / str(slot)
        project_dir = builds / job.project.path_with_namespace
        scratch = builds / ".images" / str(job.job["id"])
        trace.line("Preparing the \"labkit\" executor", _CYAN)
        trace.line(f"Using labkit executor with image {image_name} ...")
        try:
            image = resolve(image_name, scratch, self.mirrors, self.pull)
        except ImageError as err:
            trace.line(f"ERROR: Job failed: {err}", _RED)
            return JobResult("failed", "runner_system_failure")
        trace.line(f"Using {image.kind} image {image.name} (root filesystem {image.rootfs})")
        shutil.rmtree(project_dir, ignore_errors=True)
        project_dir.parent.mkdir(parents=True, exist_ok=True)
        if job.variables.get("GIT_STRATEGY") == "none":
            project_dir.mkdir()
            trace.line("Skipping Git repository setup", _CYAN)
        else:
            trace.line("Getting source from Git repository", _CYAN)
            trace.line(f"Fetching changes...\nCreated fresh repository.\n"
                       f"Checking out {job.sha[:8]} as detached HEAD (ref is {job.ref})...")
            self.repos.checkout(job.project.path_with_namespace, job.sha, project_dir)
        if job.cancel.is_set():
            return self._canceled(trace)
        self._restore_cache(job, plan, project_dir, trace)
        self._download_artifacts(job, project_dir, trace)
        with tempfile.TemporaryDirectory(prefix="labkit-job-") as tmp:
            shims = make_shims(Path(tmp) / "shims")
            env = run_env(image.env, {}, image.rootfs, shims)
            env.update({k: os.environ[k] for k in _PASS_THROUGH if k in os.environ})
            env.update(self.job_env())
            env.update(job.variables)
            env.update(CI_PROJECT_DIR=str(project_dir), CI_BUILDS_DIR=str(self.config.builds_dir),
                       TMPDIR=tmp, CI_JOB_STATUS="running")
            trace.line('Executing "step_script" stage of the job script', _CYAN)
            commands = [*plan.get("before_script", []), *plan.get("script", [])]
            code, why = self._shell(commands, env, project_dir, job, trace, job.timeout)
            status = "success" if code == 0 and why is None else ("canceled" if why == "canceled" else "failed")
            if plan.get("after_script") and why != "timeout":
                trace.line('Running after_script', _CYAN)
                after_env = {**env, "CI_JOB_STATUS": status}
                trace.line("Running after script...")
                acode, awhy = self._shell(plan["after_script"], after_env, project_dir, job, trace,
                                          AFTER_SCRIPT_TIMEOUT, after=True)
                if acode != 0 or awhy:
                    trace.line(f"WARNING: after_script failed, but job will continue unaffected: "
                               f"{'timed out' if awhy == 'timeout' else f'exit code {acode}'}", "\x1b[0;33m")
        if status == "canceled":
            return self._canceled(trace)
        result = JobResult(status, exit_code=code)
        self._save_cache(job, plan, project_dir, status, trace)
        self._upload_artifacts(job, plan, project_dir, status, result, trace)
        trace.line("Cleaning up project directory and file based variables", _CYAN)
        if status == "success":
            trace.line("Job succeeded", _GREEN)
        elif why == "timeout":
            result.failure_reason = "job_execution_timeout"
            trace.line(f"ERROR: Job failed: execution took longer than {_duration(job.timeout)} seconds", _RED)
        else:
            result.failure_reason = "script_failure"
            trace.line(f"ERROR: Job failed: exit code {code}", _RED)
        return result

    @staticmethod
    def _canceled(trace: _Trace) -> JobResult:
        trace.line("ERROR: Job failed: canceled", _RED)
        return JobResult("canceled")

    def _shell(self, commands: list[str], env: dict[str, str], cwd: Path, job: JobRun, trace: _Trace,
               timeout: float, after: bool = False) -> tuple[int, str | None]:
        """Run commands in bash; (exit code, None | "timeout" | "canceled")."""
        script = Path(env["TMPDIR"]) / ("after_script" if after else "step_script")
        script.write_text(_script(commands))
        shell = shutil.which("bash") or "/bin/sh"
        proc = subprocess.Popen([shell, "--noprofile", "--norc", str(script)] if shell.endswith("bash")
                                else [shell, str(script)], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_child_setup)  # own process group; killed if the daemon dies
        assert proc.stdout is not None
        out = proc.stdout

        def pump() -> None:
            for chunk in iter(lambda: out.read1(65536), b""):
                trace.raw(chunk)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        why: str | None = None
        while proc.poll() is None:
            if job.cancel.is_set() and not after:
                why = "canceled"
            elif time.monotonic() > deadline:
                why = "timeout"
            if why:
                kill_group(proc.pid, grace=2.0)
                break
            time.sleep(0.05)
        proc.wait()
        reader.join(timeout=5)
        return proc.returncode, why

    # -- cache ---------------------------------------------------------------------------------------------
    @staticmethod
    def _cache_key(job: JobRun, cache: dict[str, Any]) -> str:
        """The key with GitLab's suffix: protected refs (here the default branch) keep their caches apart."""
        protected = job.ref == job.project.default_branch and not job.job.get("tag")
        return f"{cache.get('key') or 'default'}-{'protected' if protected else 'non_protected'}"

    def _cache_file(self, job: JobRun, key: str) -> Path:
        safe = key.replace("/", "_").replace("..", "_")
        return self.config.cache_dir / str(job.project.id) / safe / "cache.zip"

    def _restore_cache(self, job: JobRun, plan: dict[str, Any], project_dir: Path, trace: _Trace) -> None:
        for cache in plan.get("cache") or []:
            if cache.get("policy", "pull-push") == "push":
                continue
            key = self._cache_key(job, cache)
            trace.line("Restoring cache", _CYAN)
            trace.line(f"Checking cache for {key}...")
            archive = self._cache_file(job, key)
            if archive.exists():
                _unzip(archive, project_dir)
                trace.line("Successfully extracted cache", _GREEN)
            else:
                trace.line("WARNING: file does not exist\nFailed to extract cache", "\x1b[0;33m")

    def _save_cache(self, job: JobRun, plan: dict[str, Any], project_dir: Path, status: str,
                    trace: _Trace) -> None:
        for cache in plan.get("cache") or []:
            when = cache.get("when", "on_success")
            if cache.get("policy", "pull-push") == "pull" or not _when(when, status):
                continue
            key = self._cache_key(job, cache)
            trace.line("Saving cache for successful job" if status == "success" else "Saving cache for failed job",
                       _CYAN)
            files = _matches(project_dir, list(cache.get("paths") or []))
            for pattern in cache.get("paths") or []:
                trace.line(f"{pattern}: found {len(_matches(project_dir, [pattern]))} matching artifact files "
                           "and directories")
            _zip(project_dir, files, self._cache_file(job, key))
            trace.line("Created cache", _GREEN)

    # -- artifacts -----------------------------------------------------------------------------------------
    def _download_artifacts(self, job: JobRun, project_dir: Path, trace: _Trace) -> None:
        if job.dependencies:
            trace.line("Downloading artifacts", _CYAN)
        for job_id, name, archive in job.dependencies:
            trace.line(f"Downloading artifacts for {name} ({job_id})...")
            _unzip(archive, project_dir)
            trace.line(f"Downloading artifacts from coordinator... ok        id={job_id} responseStatus=200 OK")

    def _upload_artifacts(self, job: JobRun, plan: dict[str, Any], project_dir: Path, status: str,
                          result: JobResult, trace: _Trace) -> None:
        spec = plan.get("artifacts") or {}
        if not spec or not _when(spec.get("when", "on_success"), status):
            return
        trace.line("Uploading artifacts for successful job" if status == "success"
                   else "Uploading artifacts for failed job", _CYAN)
        job.artifacts_dir.mkdir(parents=True, exist_ok=True)
        paths = list(spec.get("paths") or [])
        exclude = list(spec.get("exclude") or [])
        found = _matches(project_dir, paths)
        if spec.get("untracked"):  # every file git does not track, ignored ones included
            listed = subprocess.run(["git", "-C", str(project_dir), "ls-files", "--others", "-z"],
                                    capture_output=True, check=False).stdout.decode(errors="replace")
            found += [project_dir / p for p in listed.split("\0") if p]
        files = [f for f in dict.fromkeys(found)
                 if not any(fnmatch.fnmatch(f.relative_to(project_dir).as_posix(), e) for e in exclude)]
        for pattern in paths:
            trace.line(f"{pattern}: found {len(_matches(project_dir, [pattern]))} matching artifact files and "
                       "directories")
        if paths or spec.get("untracked"):
            if not files:
                trace.line("WARNING: no matching files. Ensure that the artifact path is relative to the working "
                           "directory", "\x1b[0;33m")
            else:
                result.archive = job.artifacts_dir / "artifacts.zip"
                _zip(project_dir, files, result.archive)
                trace.line('Uploading artifacts as "archive" to coordinator... 201 Created  '
                           f"id={job.job['id']} responseStatus=201 Created")
        for kind, patterns in (spec.get("reports") or {}).items():
            patterns = [patterns] if isinstance(patterns, str) else list(patterns)
            if kind not in ("junit", "dotenv"):
                trace.line(f"WARNING: {kind} report: not supported by the labkit simulator (not uploaded)",
                           "\x1b[0;33m")
                continue
            found = _matches(project_dir, patterns)
            for pattern in patterns:
                trace.line(f"{pattern}: found {len(_matches(project_dir, [pattern]))} matching artifact files and "
                           "directories")
            if not found:
                continue
            data = b"\n".join(f.read_bytes() for f in found) if kind == "dotenv" else found[0].read_bytes()
            if kind == "dotenv":
                result.dotenv = parse_dotenv(data.decode(errors="replace"))
                stored = job.artifacts_dir / ".env.gz"
            else:
                stored = job.artifacts_dir / "junit.xml.gz"
                if len(found) > 1:  # several report files: kept side by side, each gzipped
                    for i, f in enumerate(found[1:], 1):
                        (job.artifacts_dir / f"junit.{i}.xml.gz").write_bytes(gzip.compress(f.read_bytes()))
            stored.write_bytes(gzip.compress(data))
            result.reports[kind] = stored
            trace.line(f'Uploading artifacts as "{kind}" to coordinator... 201 Created  id={job.job["id"]} '
                       "responseStatus=201 Created")


def _when(when: str, status: str) -> bool:
    return when == "always" or (when == "on_success" and status == "success") or \
        (when == "on_failure" and status == "failed")


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"
