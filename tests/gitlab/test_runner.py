"""The runner through the GitLab server, driven by ``git`` and ``python-gitlab``: a push starts a pipeline, jobs
stream their traces, artifacts download as zips, manual jobs play, jobs retry and cancel, CI_JOB_TOKEN
authenticates git; and the job images the sim runs (tool images, refused ones)."""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import gitlab
import pytest

from .conftest import RunningGitLab
from .pipeline_kit import Kit

IDENT = ["-c", "user.name=Attendee", "-c", "user.email=attendee@example.com", "-c", "init.defaultBranch=main"]

PIPELINE = """
stages: [build, test, deploy]
build:
  stage: build
  script:
    - echo "building $CI_COMMIT_SHORT_SHA"
    - for i in 1 2 3; do echo "step $i"; sleep 0.3; done
    - mkdir -p out && echo "$CI_PIPELINE_ID" > out/pipeline.txt
  artifacts:
    paths: [out/]
self-clone:
  stage: test
  script:
    - git clone -q
      "$CI_SERVER_PROTOCOL://gitlab-ci-token:$CI_JOB_TOKEN@$CI_SERVER_HOST:$CI_SERVER_PORT/$CI_PROJECT_PATH.git" again
    - test "$(git -C again rev-parse HEAD)" = "$CI_COMMIT_SHA"
    - cat out/pipeline.txt
release:
  stage: deploy
  when: manual
  script: [echo released]
"""


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp")}
    return subprocess.run(["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=True, env=env,
                          timeout=60).stdout.strip()


def wait_for(project: object, pipeline_id: int, statuses: tuple[str, ...], timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        pipeline = project.pipelines.get(pipeline_id)  # type: ignore[attr-defined]
        if pipeline.status in statuses or time.monotonic() > deadline:
            return pipeline
        time.sleep(0.2)


@pytest.fixture
def project(gitlab_server: RunningGitLab, tmp_path: Path) -> Iterator[tuple[object, Path]]:
    gl = gitlab_server.client()
    name = f"runner-{time.monotonic_ns()}"
    created = gl.projects.create({"name": name, "initialize_with_readme": False})
    work = tmp_path / "work"
    git("clone", "-q", gitlab_server.clone_url(created.path_with_namespace), str(work))
    yield created, work


def test_push_runs_the_pipeline_seen_through_python_gitlab(project: tuple[object, Path]) -> None:
    proj, work = project
    (work / ".gitlab-ci.yml").write_text(PIPELINE)
    git("add", ".gitlab-ci.yml", cwd=work)
    git("commit", "-qm", "ci", cwd=work)
    pushed = time.monotonic()
    git("push", "-q", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    pipelines = proj.pipelines.list(get_all=True)  # type: ignore[attr-defined]
    assert time.monotonic() - pushed < 3 and len(pipelines) == 1  # created by the push itself
    pipeline = pipelines[0]
    assert (pipeline.sha, pipeline.ref, pipeline.source) == (head, "main", "push")
    # the trace streams while the job runs
    build = next(j for j in pipeline.jobs.list(get_all=True) if j.name == "build")
    job = proj.jobs.get(build.id)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while b"step 1" not in job.trace() and time.monotonic() < deadline:
        time.sleep(0.1)
    job = proj.jobs.get(build.id)  # type: ignore[attr-defined]
    assert job.status == "running" and b"step 3" not in job.trace()
    done = wait_for(proj, pipeline.id, ("manual", "success", "failed"))
    jobs = {j.name: j for j in done.jobs.list(get_all=True)}
    assert done.status == "success" and {n: j.status for n, j in jobs.items()} == \
        {"build": "success", "self-clone": "success", "release": "manual"}
    trace = proj.jobs.get(jobs["self-clone"].id).trace().decode()  # type: ignore[attr-defined]
    assert f"\n{pipeline.id}\n" in trace and "Job succeeded" in trace
    archive = zipfile.ZipFile(io.BytesIO(proj.jobs.get(jobs["build"].id).artifacts()))  # type: ignore[attr-defined]
    assert archive.read("out/pipeline.txt") == f"{pipeline.id}\n".encode()
    release = proj.jobs.get(jobs["release"].id)  # type: ignore[attr-defined]
    release.play()
    done = wait_for(proj, pipeline.id, ("success", "failed"))
    assert proj.jobs.get(jobs["release"].id).status == "success"  # type: ignore[attr-defined]
    # retry a job: a new job takes its place, the old one is kept as retried
    retried = proj.jobs.get(jobs["build"].id)  # type: ignore[attr-defined]
    retried.retry()
    done = wait_for(proj, pipeline.id, ("success", "failed"))
    builds = [j for j in done.jobs.list(get_all=True, include_retried=True) if j.name == "build"]
    assert len(builds) == 2 and done.status == "success"


def test_api_pipeline_with_variables_cancel_and_retry(project: tuple[object, Path]) -> None:
    proj, work = project
    (work / ".gitlab-ci.yml").write_text('wait: {script: ["echo mode=$MODE", "sleep 30"]}\n')
    git("add", ".gitlab-ci.yml", cwd=work)
    git("commit", "-qm", "ci [skip ci]", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    skipped = proj.pipelines.list(get_all=True)  # type: ignore[attr-defined]
    assert [p.status for p in skipped] == ["skipped"]
    pipeline = proj.pipelines.create({"ref": "main", "variables": [{"key": "MODE", "value": "api"}]})  # type: ignore[attr-defined]
    assert pipeline.source == "api"
    job = pipeline.jobs.list(get_all=True)[0]
    deadline = time.monotonic() + 20
    while b"mode=api" not in proj.jobs.get(job.id).trace() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.1)
    pipeline.cancel()
    done = wait_for(proj, pipeline.id, ("canceled",), timeout=15)
    assert done.status == "canceled"
    assert proj.jobs.get(job.id).status == "canceled"  # type: ignore[attr-defined]
    with pytest.raises(gitlab.GitlabJobPlayError, match="400 Unplayable Job"):
        proj.jobs.get(job.id).play()  # type: ignore[attr-defined]
    pipeline.retry()
    again = proj.pipelines.get(pipeline.id)  # type: ignore[attr-defined]
    assert again.status in ("pending", "running")
    again.cancel()
    assert wait_for(proj, pipeline.id, ("canceled",), timeout=15).status == "canceled"


# -- job images ----------------------------------------------------------------------------------------------
@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path)
    yield k
    k.close()


def test_tool_images_run_the_wheels_binaries_and_unknown_images_are_refused(kit: Kit) -> None:
    config = """
lint:
  image: hadolint/hadolint:latest-debian
  script:
    - hadolint --version
    - printf 'FROM python:3.12-slim\\nRUN cd /tmp && echo hi\\n' > Dockerfile
    - hadolint --failure-threshold error Dockerfile || echo "hadolint exit $?"
sbom:
  image: anchore/syft:debug
  script: [syft version]
elsewhere:
  image: docker.io/library/nginx:1.27
  script: [echo never]
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert jobs["lint"]["status"] == "success" and jobs["sbom"]["status"] == "success"
    assert "Haskell Dockerfile Linter" in kit.trace(jobs["lint"])
    assert "Application:" in kit.trace(jobs["sbom"]) and "syft" in kit.trace(jobs["sbom"])
    refused = jobs["elsewhere"]
    assert refused["status"] == "failed" and refused["failure_reason"] == "runner_system_failure"
    assert 'failed to pull image "docker.io/library/nginx:1.27"' in kit.trace(refused)
    assert "not supported by the labkit simulator" in kit.trace(refused)


def test_config_toml_is_written_with_defaults_and_read_back(tmp_path: Path) -> None:
    from labkit.gitlab.runner import RunnerConfig

    path = tmp_path / "runner" / "config.toml"
    config = RunnerConfig.load(path)
    assert path.read_text().startswith("concurrent = 2\n")
    assert (config.concurrent, config.image, config.builds_dir) == (2, "python:3.12-slim", path.parent / "builds")
    assert config.can_run([]) and not config.can_run(["gpu"])
    path.write_text('concurrent = 4\n[[runners]]\n  name = "big"\n  tag_list = ["gpu", "docker"]\n'
                    '  run_untagged = false\n')
    config = RunnerConfig.load(path)
    assert (config.concurrent, config.name) == (4, "big")
    assert config.can_run(["gpu"]) and not config.can_run([]) and not config.can_run(["arm"])
    path.write_text("concurrent = 0\n")
    with pytest.raises(ValueError, match="concurrent must be at least 1"):
        RunnerConfig.load(path)


def test_the_runner_env_file_is_read_for_each_job_and_variables_win(kit: Kit) -> None:
    """``Runner.env_file`` (the standalone server's ``--runner-env``): what a job's environment has beside its
    variables once a runner is installed (the kind harness writes the job pods' credentials there); read anew
    for each job, missing at first; the job's variables override it."""
    env_file = kit.root / "runner-env.json"
    kit.service.runner.env_file = env_file
    config = "show:\n  script:\n    - echo \"pod=${POD_THING:-none} tag=$TAG_FROM\"\n  variables:\n    TAG_FROM: yaml\n"
    first = kit.jobs(kit.wait(kit.push({".gitlab-ci.yml": config})))["show"]
    assert "pod=none tag=yaml" in kit.trace(first)
    env_file.write_text('{"env": {"POD_THING": "kubeconfig-of-the-pod", "TAG_FROM": "env-file"}}')
    second = kit.jobs(kit.wait(kit.push({"README": "again\n"})))["show"]
    assert "pod=kubeconfig-of-the-pod tag=yaml" in kit.trace(second)
