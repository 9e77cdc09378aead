"""The shop's pipeline (``apps/.gitlab-ci.yml``) as the attendee meets it: clone ``shop/shop`` with ``git``,
change code, push, and the runner builds the images into the lab registry, runs the tests with a JUnit report,
scans with hadolint, Trivy, Syft and bandit; a broken test or a high-severity finding keeps the deploy from
running; the deploy commits the new image tag to ``shop/manifests`` (Argo CD syncs the cluster from there). Here
GitLab runs beside the lab registry only (no cluster)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest
import yaml

from labkit.core.secrets import REGISTRY_PASSWORD
from labkit.core.standalone import standalone_context
from labkit.gitlab.component import GitLab
from labkit.gitlab.seed import root_token
from labkit.images.client import RegistryClient
from labkit.registry.component import Registry

IDENT = ["-c", "user.name=Attendee", "-c", "user.email=attendee@example.com"]
BEFORE_DEPLOY = {"build: [catalog]", "build: [orders]", "build: [gateway]", "test", "hadolint", "trivy-config",
                 "sbom", "bandit"}


class ShopGitLab:
    """The lab registry and GitLab on one loop, in a lab home of their own."""

    def __init__(self, home: Path) -> None:
        self.ctx = standalone_context(home)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="shop-gitlab", daemon=True)
        self.thread.start()
        self.registry = Registry()
        self.registry.name, self.registry.title = "registry", "Registry"
        self.run(self.registry.start(self.ctx))
        self.ctx.endpoints["registry"] = self.registry.endpoint()
        self.gitlab = GitLab()
        self.gitlab.name, self.gitlab.title = "gitlab", "GitLab"
        self.run(self.gitlab.start(self.ctx))
        self.url = self.gitlab.endpoint().url
        self.token = root_token(self.ctx.secrets)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def stop(self) -> None:
        self.run(self.gitlab.stop())
        self.run(self.registry.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopGitLab]:
    server = ShopGitLab(tmp_path_factory.mktemp("shop-gitlab"))
    yield server
    server.stop()


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp")}
    return subprocess.run(["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=True, env=env,
                          timeout=60).stdout.strip()


def push_and_wait(shop: ShopGitLab, work: Path, message: str, timeout: float = 240) -> tuple[Any, dict[str, Any]]:
    if git("status", "--porcelain", cwd=work):
        git("add", "-A", cwd=work)
        git("commit", "-qm", message, cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    project = gitlab.Gitlab(shop.url, private_token=shop.token).projects.get("shop/shop")
    pipeline = project.pipelines.list(sha=head, get_all=True)[0]
    deadline = time.monotonic() + timeout
    while pipeline.status not in ("success", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(0.5)
        pipeline = project.pipelines.get(pipeline.id)
    return project, {j.name: j for j in pipeline.jobs.list(get_all=True)} | {"": pipeline}


@pytest.fixture
def work(shop: ShopGitLab, tmp_path: Path) -> Path:
    host = shop.url.removeprefix("http://")
    git("clone", "-q", f"http://root:{shop.token}@{host}/shop/shop.git", str(tmp_path / "shop"))
    return tmp_path / "shop"


def test_a_change_is_built_tested_and_scanned(shop: ShopGitLab, work: Path) -> None:
    catalog = work / "catalog" / "__init__.py"
    catalog.write_text(catalog.read_text() + "\n# a change from the attendee\n")
    started = time.monotonic()
    project, jobs = push_and_wait(shop, work, "catalog: a change")
    took = time.monotonic() - started
    pipeline = jobs.pop("")
    status = {name: j.status for name, j in jobs.items()}
    assert {n: s for n, s in status.items() if n in BEFORE_DEPLOY} == dict.fromkeys(BEFORE_DEPLOY, "success"), status
    print(f"shop pipeline up to the deploy: {took:.1f}s")
    # the images are in the lab registry under the commit's short sha
    tag = pipeline.sha[:8]
    registry = shop.ctx.endpoints["registry"]
    client = RegistryClient(registry.url, registry.user, shop.ctx.secrets.get(REGISTRY_PASSWORD))
    try:
        for service in ("catalog", "orders", "gateway"):
            assert tag in client.tags(f"shop/{service}")
    finally:
        client.close()
    test = project.jobs.get(jobs["test"].id)
    assert {a["file_type"] for a in test.attributes["artifacts"]} >= {"junit", "trace"}
    assert " passed" in test.trace().decode()
    sbom = zipfile.ZipFile(io.BytesIO(project.jobs.get(jobs["sbom"].id).artifacts()))
    assert json.loads(sbom.read("sbom.cdx.json"))["bomFormat"] == "CycloneDX"
    # the deploy ran after every check passed and committed the new tag to the manifest repository (GitOps)
    assert jobs["deploy"].status == "success", project.jobs.get(jobs["deploy"].id).trace().decode()[-1500:]
    assert_deployed(shop, tag, pipeline.id, work.parent)


def assert_deployed(shop: ShopGitLab, tag: str, pipeline_id: int, scratch: Path) -> None:
    """``shop/manifests``' head is the deploy job's commit, and the manifests, rendered by ``kubectl kustomize``,
    run every service's image at ``tag``."""
    manifests = gitlab.Gitlab(shop.url, private_token=shop.token).projects.get("shop/manifests")
    head = manifests.commits.get("main")
    assert head.title == f"shop: deploy {tag}" and f"pipeline {pipeline_id} " in head.message, head.message
    assert head.committer_name == "GitLab CI"
    clone = scratch / "manifests"
    git("clone", "-q", f"http://root:{shop.token}@{shop.url.removeprefix('http://')}/shop/manifests.git", str(clone))
    kubectl = str(Path(sys.executable).parent / "kubectl")
    rendered = subprocess.run([kubectl, "kustomize", str(clone)], capture_output=True, text=True, check=True,
                              timeout=60).stdout
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"}
    assert set(images) == {"catalog", "orders", "gateway"}
    assert all(image.endswith(f"/shop/{name}:{tag}") for name, image in images.items()), images


def test_a_failing_test_keeps_the_deploy_from_running(shop: ShopGitLab, work: Path) -> None:
    tests = work / "catalog" / "tests" / "test_catalog.py"
    tests.write_text(tests.read_text() + "\n\ndef test_broken() -> None:\n    assert 1 + 1 == 3\n")
    project, jobs = push_and_wait(shop, work, "a broken test")
    assert jobs.pop("").status == "failed"
    assert jobs["test"].status == "failed" and jobs["deploy"].status == "skipped"
    assert "1 failed" in project.jobs.get(jobs["test"].id).trace().decode()
    assert project.jobs.get(jobs["deploy"].id).started_at is None
    # fixed and pushed again: the tests pass and the deploy runs
    git("revert", "--no-edit", "HEAD", cwd=work)
    project, jobs = push_and_wait(shop, work, "fix the test")
    assert jobs["test"].status == "success" and jobs["deploy"].status != "skipped"
    assert project.jobs.get(jobs["deploy"].id).started_at is not None


def test_a_high_severity_finding_keeps_the_deploy_from_running(shop: ShopGitLab, work: Path) -> None:
    (work / "orders" / "admin_shell.py").write_text(
        '"""A dangerous helper."""\nimport subprocess\n\n\ndef run(command: str) -> None:\n'
        '    subprocess.call(command, shell=True)\n')
    project, jobs = push_and_wait(shop, work, "orders: a shell helper")
    assert jobs.pop("").status == "failed"
    assert jobs["bandit"].status == "failed" and jobs["deploy"].status == "skipped"
    assert jobs["test"].status == "success"
    assert "B602" in project.jobs.get(jobs["bandit"].id).trace().decode()


# kaniko's credentials as GitLab's kaniko documentation writes them, from the lab's HARBOR_USER/HARBOR_PASSWORD
DOCKER_LOGIN = """- printf '{"auths":{"%s":{"auth":"%s"}}}' "$CI_REGISTRY"
      "$(printf '%s:%s' "$HARBOR_USER" "$HARBOR_PASSWORD" | base64 | tr -d '\\n')" > "$DOCKER_CONFIG/config.json"
"""


def image_pipeline(shop: ShopGitLab, tmp_path: Path, name: str, login: str) -> tuple[Any, dict[str, Any]]:
    """A project whose pipeline builds an image with kaniko (``login``: the script lines before it) into Harbor's
    project ``shop`` (the CI robot's) and runs a job in it; the finished pipeline and its jobs by name."""
    gl = gitlab.Gitlab(shop.url, private_token=shop.token)
    project = gl.projects.create({"name": name})
    host = shop.url.removeprefix("http://")
    work = tmp_path / name
    git("clone", "-q", f"http://root:{shop.token}@{host}/{project.path_with_namespace}.git", str(work))
    (work / "hello").write_text('#!/bin/sh\necho "hello from the image, $1"\n')
    (work / "hello").chmod(0o755)
    (work / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY hello /usr/local/bin/hello\n")
    (work / ".gitlab-ci.yml").write_text(f"""
image-build:
  stage: build
  image: gcr.io/kaniko-project/executor:debug
  script:
    {login}    - executor --context . --dockerfile Dockerfile --destination "$CI_REGISTRY/shop/{name}:$TAG"
use-it:
  stage: test
  image: $CI_REGISTRY/shop/{name}:$CI_COMMIT_SHORT_SHA
  script: [hello attendee]
variables:
  TAG: $CI_COMMIT_SHORT_SHA
""")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "an image", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    pipeline = project.pipelines.list(get_all=True)[0]
    deadline = time.monotonic() + 120
    while pipeline.status not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        pipeline = project.pipelines.get(pipeline.id)
    return project, {j.name: j for j in pipeline.jobs.list(get_all=True)} | {"": pipeline}


def test_a_job_runs_in_an_image_an_earlier_job_pushed(shop: ShopGitLab, tmp_path: Path) -> None:
    project, jobs = image_pipeline(shop, tmp_path, "hello-image", DOCKER_LOGIN)
    log = project.jobs.get(jobs["use-it"].id).trace().decode()
    assert jobs[""].status == "success", log
    assert "Using registry image" in log and "hello from the image, attendee" in log


def test_kaniko_pushes_with_the_jobs_docker_config_not_the_runners(shop: ShopGitLab, tmp_path: Path) -> None:
    """Without a Docker config the push is anonymous, and the registry refuses it: the runner lends kaniko no
    credentials of its own (the lab's HARBOR_* variables are the only way in)."""
    gl = gitlab.Gitlab(shop.url, private_token=shop.token)
    masked = {v.key: v.masked for v in gl.variables.list(get_all=True)}
    assert masked.items() >= {"HARBOR_USER": False, "HARBOR_PASSWORD": True}.items()
    project, jobs = image_pipeline(shop, tmp_path, "no-login", "")
    log = project.jobs.get(jobs["image-build"].id).trace().decode()
    assert jobs[""].status == "failed" and jobs["image-build"].status == "failed", log
    assert "error pushing image" in log and "401" in log, log
