"""The lab's own components as the lab Prometheus' targets: on one sim lab, the ``nexus``, ``harbor``, ``argocd``
and ``gitlab`` jobs are up, and each product's characteristic series moves after a real action through the real
client (pip through Nexus, skopeo into Harbor, an Application synced through Argo CD's API, a pipeline created
with python-gitlab). The rendered configuration names Nexus' password file, never the password; GitLab's
``/-/metrics`` answers 404 outside its monitoring whitelist, as GitLab does."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from labkit.endpoints import ArgoCDEndpoint, GitLabEndpoint, NexusEndpoint, RegistryEndpoint
from labkit.gitlab.metrics import GitLabMetrics
from labkit.lab import Lab
from labkit.prometheus.component import product_jobs
from labkit.prometheus.config import parse

from ..registry.images import make_image, write_oci_layout
from ..waiting import until

JOBS = {"nexus": 1, "harbor": 3, "argocd": 3, "gitlab": 1}  # job -> its targets
SKOPEO = shutil.which("skopeo")
CI = "check:\n  script: [echo scraped]\n"
SUFFIX = uuid.uuid4().hex[:6]
NAME = f"scraped-{SUFFIX}"  # the GitLab project, Harbor project, Argo CD Application and ConfigMap
CONFIGMAP = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {NAME}
data:
  scraped: "yes"
"""
# the series each action must move: (job, PromQL giving one number)
SERIES = {
    "nexus": 'sum(nexus_repository_requests_total{job="nexus"})',
    "harbor-pull": f'sum(harbor_artifact_pulled{{job="harbor",project_name="{NAME}"}})',
    "harbor-push": 'sum(registry_http_requests_total{job="harbor",handler="manifest",method="put"})',
    "harbor-core": 'sum(harbor_core_http_request_total{job="harbor",operation="createProject"})',
    "argocd-sync": f'sum(argocd_app_sync_total{{job="argocd",name="{NAME}",phase="Succeeded"}})',
    "argocd-git": 'sum(argocd_git_request_total{job="argocd",request_type="ls-remote"})',
    "argocd-reconcile": 'sum(argocd_app_reconcile_count{job="argocd"})',
    "argocd-server": 'sum(grpc_server_handled_total{job="argocd",grpc_service="application.ApplicationService",'
                     'grpc_method="Sync",grpc_code="OK"})',
    "gitlab-pipeline": 'sum(gitlab_ci_pipeline_creation_duration_seconds_count{job="gitlab"})',
    "gitlab-requests": 'sum(http_requests_total{job="gitlab",method="post"})',
}


def value(lab: Lab, expr: str) -> float:
    """The query's one number, 0 when it has no series (yet)."""
    rows = lab.prometheus.query(expr)
    return float(rows["value"].iloc[0]) if len(rows) else 0.0


def pip_through_nexus(lab: Lab, dest: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | lab.nexus.pip_env() | {"NO_PROXY": "*"}
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps", "-d", str(dest),
                           "idna"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def skopeo_into_harbor(lab: Lab, work: Path) -> None:
    assert SKOPEO is not None
    user, password = lab.registry.credentials() or ("", "")
    resp = requests.post(f"{lab.registry.endpoint.api}/projects", auth=(user, password), timeout=30,
                         json={"project_name": NAME, "metadata": {"public": "false"}})
    assert resp.status_code == 201, resp.text
    layout = write_oci_layout(make_image(NAME, layer_files=[{"app/scraped.txt": b"scraped\n"}]), work / "oci", "v1")
    dest = f"docker://{lab.registry.endpoint.push}/{NAME}/app:v1"
    for args in (("copy", "--dest-tls-verify=false", "--dest-creds", f"{user}:{password}", f"oci:{layout}:v1", dest),
                 ("inspect", "--tls-verify=false", "--creds", f"{user}:{password}", dest)):  # the push, a pull
        done = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr


def gitlab_project(lab: Lab) -> tuple[str, int]:
    """A public project with a one-job pipeline definition and a manifest, and a pipeline created through the
    API; (its path, the pipeline's id)."""
    project = lab.gitlab.client().projects.create({"name": NAME, "visibility": "public"})
    project.commits.create({"branch": "main", "commit_message": "a job and a manifest", "actions": [
        {"action": "create", "file_path": ".gitlab-ci.yml", "content": CI},
        {"action": "create", "file_path": "deploy/configmap.yaml", "content": CONFIGMAP}]})
    pipeline = project.pipelines.create({"ref": "main"})
    return project.path_with_namespace, pipeline.id


def argocd_sync(lab: Lab, repo_path: str) -> None:
    view = lab.argocd
    view.api("POST", "/applications", json={"metadata": {"name": NAME}, "spec": {
        "project": "default", "source": {"repoURL": view.repo_url(repo_path), "targetRevision": "main",
                                         "path": "deploy"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}})
    view.api("POST", f"/applications/{NAME}/sync", json={})

    def synced() -> bool:
        state = (view.application(NAME).get("status") or {}).get("operationState") or {}
        return state.get("phase") == "Succeeded"

    until(f"Application {NAME} synced", synced)


@pytest.fixture(scope="module")
def acted(shared_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, float]]]:
    """The lab after one real action per product; the series' values Prometheus had before them."""
    lab = shared_lab
    until("the lab components' jobs", lambda: set(lab.prometheus.targets()["job"]) >= set(JOBS), 30)
    before = {name: value(lab, expr) for name, expr in SERIES.items()}
    work = tmp_path_factory.mktemp("scraped")
    pip_through_nexus(lab, work / "pip")
    skopeo_into_harbor(lab, work)
    repo_path, _ = gitlab_project(lab)
    argocd_sync(lab, repo_path)
    yield lab, before
    lab.argocd.api("DELETE", f"/applications/{NAME}")


@pytest.mark.skipif(SKOPEO is None, reason="needs skopeo: apt-get install -y skopeo (CI installs it)")
def test_each_product_is_a_target_that_is_up_and_its_series_move(acted: tuple[Lab, dict[str, float]]) -> None:
    lab, before = acted

    def up() -> bool:
        targets = lab.prometheus.targets()
        mine = targets[targets["job"].isin(list(JOBS))]
        return mine.groupby("job").size().to_dict() == JOBS and set(mine["health"]) == {"up"}

    until("every lab component's target up", up)
    for name, expr in SERIES.items():
        until(f"{name}: {expr} above {before[name]}", lambda e=expr, b=before[name]: value(lab, e) > b, every=1)
    info = lab.prometheus.query(f'argocd_app_info{{name="{NAME}"}}')
    assert (info["sync_status"].iloc[0], info["project"].iloc[0], info["dest_namespace"].iloc[0]) == \
        ("Synced", "default", "default")
    assert value(lab, f'harbor_project_repo_total{{project_name="{NAME}",public="false"}}') == 1
    assert value(lab, f'harbor_project_quota_usage_byte{{project_name="{NAME}"}}') > 0
    assert value(lab, 'sum(http_request_duration_seconds_count{job="gitlab"})') > 0


def test_the_rendered_config_names_the_password_file_not_the_password(shared_lab: Lab) -> None:
    text = shared_lab.prometheus.api("status/config")["yaml"]
    nexus = shared_lab.nexus.endpoint
    password = Path(nexus.password_file).read_text().strip()
    assert f"password_file: {nexus.password_file}" in text and password not in text


def test_gitlab_metrics_answer_404_outside_the_monitoring_whitelist() -> None:
    async def scrape(whitelist: tuple[str, ...]) -> tuple[int, str]:
        app = web.Application()
        GitLabMetrics(None, None, whitelist).install(app)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await client.get("/nothing")
            resp = await client.get("/-/metrics")
            return resp.status, await resp.text()

    status, text = asyncio.run(scrape(("10.0.0.0/8",)))
    assert (status, text) == (404, "404 Not Found\n")
    status, text = asyncio.run(scrape(("127.0.0.0/8", "::1/128")))
    assert status == 200 and 'http_requests_total{method="get",status="404"} 1.0' in text


def test_the_jobs_follow_the_running_products_and_promtool_accepts_them(tmp_path: Path) -> None:
    password = tmp_path / "nexus-password"
    password.write_text("s3cret\n")
    endpoints = {
        "nexus": NexusEndpoint("Nexus", "http://127.9.0.4:8081", password_file=str(password)),
        "registry": RegistryEndpoint("Harbor", "http://127.9.0.1:5000", metrics="http://127.9.0.1:8001/metrics"),
        "argocd": ArgoCDEndpoint("Argo CD", "http://127.9.0.5:8080", metrics=[
            "http://127.9.0.5:8082/metrics", "http://127.9.0.5:8084/metrics", "http://127.9.0.5:8083/metrics"]),
        "gitlab": GitLabEndpoint("GitLab", "http://127.9.0.3:8929")}
    assert product_jobs({}) == []
    jobs = {j["job_name"]: j for j in product_jobs(endpoints)}
    assert list(jobs) == list(JOBS)
    assert jobs["nexus"]["basic_auth"] == {"username": "admin", "password_file": str(password)}
    assert [g["labels"].get("__param_comp") for g in jobs["harbor"]["static_configs"]] == [None, "core", "registry"]
    assert [(g["targets"], g["labels"]["component"]) for g in jobs["argocd"]["static_configs"]] == [
        (["127.9.0.5:8082"], "application-controller"), (["127.9.0.5:8084"], "repo-server"),
        (["127.9.0.5:8083"], "server")]
    assert jobs["gitlab"]["metrics_path"] == "/-/metrics"
    text = yaml.safe_dump({"scrape_configs": list(jobs.values())})
    assert "s3cret" not in text
    config = parse(text)
    assert config.scrape_configs[0].credentials() == ("admin", "s3cret")
    promtool = shutil.which("promtool")
    if promtool:  # the real checker agrees
        (tmp_path / "prometheus.yml").write_text(text)
        check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                               text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
