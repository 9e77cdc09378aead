"""The whole loop on a running sim lab: ``git push`` of a change to ``shop/shop`` → the pipeline builds the images
into the lab registry, tests and scans them, and the deploy job commits the new image tag to ``shop/manifests``
(GitOps: Argo CD, not the pipeline, rolls it out)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import gitlab
import yaml

from labkit.lab import Lab

from ..conftest import kubectl

IDENT = ["-c", "user.name=Attendee", "-c", "user.email=attendee@example.com"]


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp")}
    return subprocess.run(["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=True, env=env,
                          timeout=60).stdout.strip()


def test_a_push_commits_the_new_images_to_the_manifests(lab: Lab, tmp_path: Path) -> None:
    endpoint = lab.endpoints.products["gitlab"]
    token = Path(endpoint.token_file).read_text().strip()
    host = endpoint.url.split("://", 1)[1]
    work = tmp_path / "shop"
    git("clone", "-q", f"http://root:{token}@{host}/shop/shop.git", str(work))
    catalog = work / "catalog" / "__init__.py"
    catalog.write_text(catalog.read_text() + "\n# deployed by the pipeline\n")
    git("commit", "-qam", "catalog: deploy me", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    client = gitlab.Gitlab(endpoint.url, private_token=token)
    project = client.projects.get("shop/shop")
    pipeline = project.pipelines.list(sha=head, get_all=True)[0]
    deadline = time.monotonic() + 400
    while pipeline.status not in ("success", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(1)
        pipeline = project.pipelines.get(pipeline.id)
    jobs = {j.name: j for j in pipeline.jobs.list(get_all=True)}
    failed = {n: project.jobs.get(j.id).trace().decode()[-1500:] for n, j in jobs.items() if j.status != "success"}
    assert pipeline.status == "success", failed
    tag = head[:8]
    # the manifest repository's head is the deploy job's commit; its manifests render every image at the new tag
    manifests = client.projects.get("shop/manifests")
    assert manifests.commits.get("main").title == f"shop: deploy {tag}"
    clone = tmp_path / "manifests"
    git("clone", "-q", f"http://root:{token}@{host}/shop/manifests.git", str(clone))
    rendered = kubectl(lab, "kustomize", str(clone)).stdout
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"}
    assert images and all(image.endswith(f"/shop/{name}:{tag}") for name, image in images.items()), images
    deploy = project.jobs.get(jobs["deploy"].id).trace().decode()
    assert f"committed {git('rev-parse', '--short', 'HEAD', cwd=clone)} to shop/manifests" in deploy
    lab.gitlab.repair()  # shop/shop and shop/manifests back as seeded
