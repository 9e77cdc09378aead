"""The pipeline and job routes through python-gitlab, with the real pipeline service and runner behind them."""

from __future__ import annotations

import io
import time
import zipfile

import gitlab
import pytest
import requests

from .conftest import RunningGitLab

CI = """\
stages: [build, test, deploy]
build:
  stage: build
  script:
    - echo "built with $GREETING"
    - echo artifact > out.txt
    - >
      python3 -c "import json, os, urllib.request as u;
      r = u.Request(os.environ['CI_API_V4_URL'] + '/job', headers={'JOB-TOKEN': os.environ['CI_JOB_TOKEN']});
      print('JOB-TOKEN is job', json.load(u.urlopen(r))['name'])"
    - git clone -q "http://gitlab-ci-token:${CI_JOB_TOKEN}@${CI_SERVER_HOST}:${CI_SERVER_PORT}/${CI_PROJECT_PATH}" again
    - test -f again/.gitlab-ci.yml && echo "cloned with the job token"
  artifacts:
    paths: [out.txt]
test:
  stage: test
  script: ["test \\"$BREAK\\" != yes"]
deploy:
  stage: deploy
  script: [echo deploy]
"""


def wait(pipeline: object, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.refresh()  # type: ignore[attr-defined]
        if pipeline.status in ("success", "failed", "canceled", "skipped", "manual"):  # type: ignore[attr-defined]
            return pipeline.status  # type: ignore[attr-defined]
        time.sleep(0.2)
    raise AssertionError(f"pipeline still {pipeline.status}")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def project(gitlab_server: RunningGitLab):  # type: ignore[no-untyped-def]
    project = gitlab_server.client().projects.create({"name": "pipes"})
    project.files.create({"file_path": ".gitlab-ci.yml", "branch": "main", "content": CI,
                          "commit_message": "ci"})
    return project


def test_api_pipeline_with_variables_jobs_trace_artifacts(gitlab_server: RunningGitLab, project) -> None:  # type: ignore[no-untyped-def]
    pipeline = project.pipelines.create({"ref": "main", "variables": [{"key": "GREETING", "value": "hello"}]})
    assert (pipeline.source, pipeline.ref) == ("api", "main")
    assert wait(pipeline) == "success"
    jobs = {j.name: j for j in pipeline.jobs.list(get_all=True)}
    assert {n: j.status for n, j in jobs.items()} == {"build": "success", "test": "success", "deploy": "success"}
    build = project.jobs.get(jobs["build"].id)
    trace = build.trace().decode()
    assert "built with hello" in trace
    assert "JOB-TOKEN is job build" in trace
    assert "cloned with the job token" in trace
    with zipfile.ZipFile(io.BytesIO(build.artifacts())) as z:
        assert z.read("out.txt") == b"artifact\n"
    raw = requests.get(f"{gitlab_server.url}/api/v4/projects/{project.id}/jobs/{build.id}/trace",
                       headers={"PRIVATE-TOKEN": gitlab_server.token}, timeout=10)
    assert raw.headers["Content-Type"].startswith("text/plain")
    assert project.pipelines.latest(ref="main").id == pipeline.id
    assert project.pipelines.list(status="success", source="api")[0].id == pipeline.id
    # a job token no running job holds is refused; routes that take no job token see nobody
    gone = requests.get(f"{gitlab_server.url}/api/v4/job", headers={"JOB-TOKEN": "glcbt-nope"}, timeout=10)
    assert (gone.status_code, gone.json()) == (401, {"message": "401 Unauthorized"})
    other = requests.get(f"{gitlab_server.url}/api/v4/projects/{project.id}", headers={"JOB-TOKEN": "glcbt-x"},
                         timeout=10)
    assert (other.status_code, other.json()) == (404, {"message": "404 Project Not Found"})


def test_a_failing_test_skips_deploy_and_retry(gitlab_server: RunningGitLab, project) -> None:  # type: ignore[no-untyped-def]
    pipeline = project.pipelines.create({"ref": "main", "variables": [{"key": "BREAK", "value": "yes"}]})
    assert wait(pipeline) == "failed"
    jobs = {j.name: j for j in pipeline.jobs.list(get_all=True)}
    assert (jobs["test"].status, jobs["test"].failure_reason, jobs["deploy"].status) == \
        ("failed", "script_failure", "skipped")
    retried = project.jobs.get(jobs["test"].id).retry()
    assert retried["name"] == "test" and retried["id"] != jobs["test"].id


def test_pipeline_errors_in_gitlabs_shapes(gitlab_server: RunningGitLab, project) -> None:  # type: ignore[no-untyped-def]
    url = f"{gitlab_server.url}/api/v4/projects/{project.id}/pipeline"
    headers = {"PRIVATE-TOKEN": gitlab_server.token}
    missing = requests.post(url, json={}, headers=headers, timeout=10)
    assert (missing.status_code, missing.json()) == (400, {"error": "ref is missing"})
    nowhere = requests.post(url, json={"ref": "no-such-branch"}, headers=headers, timeout=10)
    assert nowhere.status_code == 400 and nowhere.json()["message"]["base"] == ["Reference not found"]
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.pipelines.get(999999)
    assert err.value.response_code == 404


def test_listing_more_pipelines_than_a_page(gitlab_server: RunningGitLab) -> None:
    project = gitlab_server.client().projects.create({"name": "many-pipelines"})
    project.files.create({"file_path": ".gitlab-ci.yml", "branch": "main", "commit_message": "ci",
                          "content": "wait:\n  when: manual\n  script: [echo later]\n"})
    for _ in range(105):
        project.pipelines.create({"ref": "main"})
    listed = project.pipelines.list(get_all=True)
    assert len(listed) == 105 and len({p.id for p in listed}) == 105
    assert [p.id for p in listed] == sorted((p.id for p in listed), reverse=True)
    assert len(project.pipelines.list(per_page=100, get_all=False)) == 100


def test_a_job_token_reaches_another_project_only_through_its_allowlist(gitlab_server: RunningGitLab) -> None:
    gl = gitlab_server.client()
    outsider = gl.projects.create({"name": "outsider"})
    outsider.files.create({"file_path": ".gitlab-ci.yml", "branch": "main", "commit_message": "ci", "content":
                           'read:\n  script:\n    - git clone -q "http://gitlab-ci-token:${CI_JOB_TOKEN}@'
                           '${CI_SERVER_HOST}:${CI_SERVER_PORT}/shop/manifests.git" m\n'})
    refused = outsider.pipelines.create({"ref": "main"})
    assert wait(refused) == "failed"
    job = refused.jobs.list()[0]
    assert "could not be found" in outsider.jobs.get(job.id).trace().decode()
    manifests = gl.projects.get("shop/manifests")
    allowlist = manifests.job_token_scope.get().allowlist
    assert gl.projects.get("shop/shop").id in [p.id for p in allowlist.list(get_all=True)]  # seeded
    allowlist.create({"target_project_id": outsider.id})
    assert wait(outsider.pipelines.create({"ref": "main"})) == "success"
