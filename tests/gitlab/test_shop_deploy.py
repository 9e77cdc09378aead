"""The whole loop on a running sim lab: ``git push`` of a change to ``shop/shop`` → the pipeline builds the images
into the lab registry, tests and scans them, and the deploy job rolls the new images out with ``kubectl``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import gitlab

from labkit.lab import Lab

from ..conftest import kubectl

IDENT = ["-c", "user.name=Attendee", "-c", "user.email=attendee@example.com"]


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp")}
    return subprocess.run(["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=True, env=env,
                          timeout=60).stdout.strip()


def test_a_push_rolls_the_new_images_out(lab: Lab, tmp_path: Path) -> None:
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
    project = gitlab.Gitlab(endpoint.url, private_token=token).projects.get("shop/shop")
    pipeline = project.pipelines.list(sha=head, get_all=True)[0]
    deadline = time.monotonic() + 400
    while pipeline.status not in ("success", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(1)
        pipeline = project.pipelines.get(pipeline.id)
    jobs = {j.name: j for j in pipeline.jobs.list(get_all=True)}
    failed = {n: project.jobs.get(j.id).trace().decode()[-1500:] for n, j in jobs.items() if j.status != "success"}
    assert pipeline.status == "success", failed
    tag = head[:8]
    for service in ("catalog", "orders", "gateway"):
        image = kubectl(lab, "-n", "shop", "get", "deployment", service, "-o",
                        "jsonpath={.spec.template.spec.containers[0].image}").stdout
        assert image.endswith(f"/shop/{service}:{tag}")
    deploy = project.jobs.get(jobs["deploy"].id).trace().decode()
    assert 'deployment "catalog" successfully rolled out' in deploy
