"""Pipelines with GitLab's semantics: statuses and their order, needs, when, allow_failure, manual and delayed
jobs, retry, cancel, interruptible, resource_group, artifacts, dotenv, cache, predefined variables, job tokens;
run by the real planner and runner over a repository pushed to with ``git``."""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.gitlab.model import PipelineError

from .pipeline_kit import Kit


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path)
    yield k
    k.close()


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


STAGES = """
stages: [build, test, deploy]
variables:
  GREETING: hello
build:
  stage: build
  script:
    - echo "$GREETING from $CI_JOB_NAME at $CI_COMMIT_SHORT_SHA"
    - mkdir -p dist && echo built > dist/app.txt
    - echo "IMAGE_TAG=v-$CI_PIPELINE_IID" > build.env
  artifacts:
    paths: [dist/]
    reports:
      dotenv: build.env
test:
  stage: test
  variables:
    GREETING: "$CI_PROJECT_NAME says hi"
  script:
    - cat dist/app.txt
    - echo "tag=$IMAGE_TAG greeting=$GREETING"
    - test "$PWD" = "$CI_PROJECT_DIR"
    - env | grep -E '^(CI|GITLAB_CI|CI_PIPELINE_SOURCE|CI_COMMIT_BRANCH|CI_DEFAULT_BRANCH|CI_JOB_STAGE)=' | sort
deploy:
  stage: deploy
  script: echo "deploying $IMAGE_TAG to $CI_REGISTRY_IMAGE"
"""


def test_stages_run_in_order_with_artifacts_dotenv_and_predefined_variables(kit: Kit) -> None:
    started = kit.push({".gitlab-ci.yml": STAGES, "app.py": "print(1)\n"}, "first")
    assert started is not None and started["source"] == "push" and started["iid"] == 1
    pipeline = kit.wait(started)
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "success", {n: j["status"] for n, j in jobs.items()}
    assert [j["status"] for j in jobs.values()] == ["success"] * 3
    build, test, deploy = jobs["build"], jobs["test"], jobs["deploy"]
    assert _epoch(build["finished_at"]) <= _epoch(test["started_at"]) <= _epoch(test["finished_at"]) \
        <= _epoch(deploy["started_at"])
    assert f"hello from build at {kit.head[:8]}" in kit.trace(build)
    test_log = kit.trace(test)
    assert "$ cat dist/app.txt" in test_log and "\nbuilt\n" in test_log
    assert "tag=v-1 greeting=demo says hi" in test_log
    for line in ("CI=true", "GITLAB_CI=true", "CI_PIPELINE_SOURCE=push", "CI_COMMIT_BRANCH=main",
                 "CI_DEFAULT_BRANCH=main", "CI_JOB_STAGE=test"):
        assert line in test_log
    assert test_log.rstrip().endswith("Job succeeded\x1b[0;m")
    assert "deploying v-1 to localhost:5001/shop/demo" in kit.trace(deploy)
    archive = kit.service.artifacts(kit.project.id, build["id"])
    assert archive is not None and zipfile.ZipFile(archive).namelist() == ["dist/app.txt"]
    assert {a["file_type"] for a in build["artifacts"]} >= {"archive", "dotenv", "trace"}
    assert kit.service.report(kit.project.id, build["id"], "dotenv") == b"IMAGE_TAG=v-1\n"
    assert pipeline["duration"] is not None and pipeline["finished_at"]


FAILING = """
stages: [build, test, deploy]
build: {stage: build, script: [echo ok]}
unit:
  stage: test
  script: [echo "1 failed", exit 3]
lint:
  stage: test
  allow_failure: true
  script: [exit 1]
deploy: {stage: deploy, script: [echo deploy]}
notify: {stage: deploy, when: on_failure, script: [echo "the pipeline failed"]}
cleanup: {stage: .post, when: always, script: [echo cleanup]}
"""


def test_a_failing_job_skips_the_next_stages_but_on_failure_and_always_jobs_run(kit: Kit) -> None:
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": FAILING}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "failed"
    status = {n: j["status"] for n, j in jobs.items()}
    assert status == {"build": "success", "unit": "failed", "lint": "failed", "deploy": "skipped",
                      "notify": "success", "cleanup": "success"}
    assert jobs["unit"]["failure_reason"] == "script_failure"
    assert jobs["lint"]["allow_failure"] is True and jobs["unit"]["allow_failure"] is False
    assert "ERROR: Job failed: exit code 3" in kit.trace(jobs["unit"])
    assert jobs["deploy"]["started_at"] is None


def test_allowed_failures_keep_the_pipeline_green_and_exit_codes_decide(kit: Kit) -> None:
    config = """
a: {script: [exit 1], allow_failure: true}
b: {script: [exit 137], allow_failure: {exit_codes: [137]}}
c: {stage: deploy, script: [echo after]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "success"
    assert jobs["b"]["status"] == "failed" and jobs["b"]["allow_failure"] is True
    assert jobs["c"]["status"] == "success"
    assert pipeline["detailed_status"]["label"] == "passed with warnings"
    other = """
b: {script: [exit 2], allow_failure: {exit_codes: [137]}}
c: {stage: deploy, script: [echo after]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": other}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "failed" and jobs["b"]["allow_failure"] is False
    assert jobs["c"]["status"] == "skipped"


def test_needs_start_jobs_before_their_stage_and_needs_empty_at_once(kit: Kit) -> None:
    config = """
stages: [build, test, deploy]
build: {stage: build, script: [echo build]}
slow-test: {stage: test, script: [sleep 2]}
quick-deploy: {stage: deploy, needs: [build], script: [echo deploy]}
lint: {stage: deploy, needs: [], script: [echo lint]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "success"
    assert _epoch(jobs["quick-deploy"]["finished_at"]) < _epoch(jobs["slow-test"]["finished_at"])
    assert _epoch(jobs["lint"]["started_at"]) < _epoch(jobs["build"]["finished_at"]) + 0.5


def test_a_failed_need_skips_the_dag_job(kit: Kit) -> None:
    config = """
build: {stage: build, script: [exit 1]}
other: {stage: build, script: [echo fine]}
use: {stage: test, needs: [other], script: [echo runs]}
blocked: {stage: test, needs: [build], script: [echo never]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "failed"
    assert jobs["use"]["status"] == "success" and jobs["blocked"]["status"] == "skipped"


def test_manual_jobs_block_only_when_they_come_from_rules(kit: Kit) -> None:
    config = """
stages: [build, deploy, verify]
build: {stage: build, script: [echo build]}
optional: {stage: build, when: manual, script: [echo optional]}
deploy:
  stage: deploy
  script: [echo deploy]
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      when: manual
verify: {stage: verify, script: [echo verify]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "manual"
    assert jobs["optional"]["status"] == "manual" and jobs["deploy"]["status"] == "manual"
    assert jobs["verify"]["status"] == "created"
    played = kit.service.play(kit.project.id, jobs["deploy"]["id"])
    assert played["status"] == "pending"
    pipeline = kit.wait(pipeline)
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "success"  # the optional manual job never ran: it blocks nothing
    assert jobs["verify"]["status"] == "success" and jobs["optional"]["status"] == "manual"
    with pytest.raises(PipelineError) as err:
        kit.service.play(kit.project.id, jobs["verify"]["id"])
    assert err.value.status == 400 and err.value.body == {"message": "400 Unplayable Job"}


def test_delayed_job_is_scheduled_then_runs(kit: Kit) -> None:
    config = "later: {when: delayed, start_in: 1 second, script: [echo later]}\n"
    started = kit.push({".gitlab-ci.yml": config})
    job = kit.wait_job(started, "later", ("scheduled",), timeout=5)
    assert job["scheduled_at"]
    pipeline = kit.wait(started)
    assert pipeline["status"] == "success"
    assert _epoch(kit.jobs(pipeline)["later"]["started_at"]) >= _epoch(job["scheduled_at"]) - 0.1


def test_cancel_kills_the_running_job_and_cancels_the_rest(kit: Kit, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    config = f"""
long: {{stage: build, script: ["sleep 60 & echo $! > {marker}; wait"]}}
next: {{stage: test, script: [echo next]}}
"""
    started = kit.push({".gitlab-ci.yml": config})
    kit.wait_job(started, "long", ("running",))
    deadline = time.monotonic() + 10  # the shell creates the file before echo writes to it
    while not (marker.exists() and marker.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(marker.read_text())
    kit.service.cancel(kit.project.id, started["id"])
    pipeline = kit.wait(started, timeout=15)
    jobs = kit.jobs(pipeline)
    assert pipeline["status"] == "canceled"
    assert jobs["long"]["status"] == "canceled" and jobs["next"]["status"] == "canceled"
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    deadline = time.monotonic() + 5  # the job is canceled at once; its worker writes the trace's end after the kill
    while "ERROR: Job failed: canceled" not in kit.trace(jobs["long"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "ERROR: Job failed: canceled" in kit.trace(jobs["long"])


def test_timeout_fails_the_job_with_job_execution_timeout(kit: Kit) -> None:
    config = "slow: {timeout: 1 second, script: [sleep 30]}\n"
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}), timeout=20)
    job = kit.jobs(pipeline)["slow"]
    assert pipeline["status"] == "failed" and job["failure_reason"] == "job_execution_timeout"
    assert job["duration"] < 10
    assert "execution took longer than 0h0m1s seconds" in kit.trace(job)


def test_retry_keyword_then_job_and_pipeline_retry(kit: Kit, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    config = f"""
flaky:
  retry: 1
  script:
    - echo x >> {counter}
    - test $(wc -l < {counter}) -ge 3
after: {{stage: deploy, script: [echo after]}}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    all_jobs = kit.jobs(pipeline, include_retried=True)
    flaky = sorted((j for j in all_jobs.values() if j["name"] == "flaky"), key=lambda j: j["id"])
    assert [(j["status"], j["retried"]) for j in flaky] == [("failed", True), ("failed", False)]
    assert pipeline["status"] == "failed" and kit.jobs(pipeline)["after"]["status"] == "skipped"
    clone = kit.service.retry_job(kit.project.id, flaky[-1]["id"])
    assert clone["id"] > flaky[-1]["id"] and clone["name"] == "flaky"
    pipeline = kit.wait(pipeline)
    assert pipeline["status"] == "success"  # the third try passes; the skipped job ran after it
    assert kit.jobs(pipeline)["after"]["status"] == "success"
    with pytest.raises(PipelineError) as err:
        kit.service.retry_job(kit.project.id, flaky[0]["id"])
    assert err.value.status == 403
    counter.write_text("")
    kit.service.retry(kit.project.id, pipeline["id"])  # nothing failed: nothing to retry
    assert kit.wait(pipeline)["status"] == "success"


def test_pipeline_retry_reruns_failed_jobs(kit: Kit, tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    config = f"""
check: {{script: ["test -e {flag}"]}}
after: {{stage: deploy, script: [echo after]}}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    assert pipeline["status"] == "failed"
    flag.touch()
    retried = kit.service.retry(kit.project.id, pipeline["id"])
    assert retried["status"] in ("pending", "running", "created")
    pipeline = kit.wait(pipeline)
    assert pipeline["status"] == "success"
    assert sorted(j["status"] for j in kit.jobs(pipeline, include_retried=True).values()) == \
        ["failed", "success", "success"]


def test_concurrency_and_resource_group(tmp_path: Path) -> None:
    log = tmp_path / "spans"
    kit = Kit(tmp_path / "k", concurrent=2)
    try:
        span = f'echo "$CI_JOB_NAME $(date +%s.%N) start" >> {log}; sleep 0.6; ' \
               f'echo "$CI_JOB_NAME $(date +%s.%N) end" >> {log}'
        quoted = span.replace("'", "''")
        config = "\n".join(f"j{i}: {{script: ['{quoted}']}}" for i in range(4)) + "\n" + "\n".join(
            f"d{i}: {{stage: deploy, resource_group: prod, script: ['{quoted}']}}" for i in range(2)) + "\n"
        pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
        assert pipeline["status"] == "success"
        events = []
        for line in log.read_text().splitlines():
            name, at, what = line.split()
            events.append((float(at), 1 if what == "start" else -1, name))
        running = peak = 0
        for _, delta, _ in sorted(events):
            running += delta
            peak = max(peak, running)
        assert peak == 2  # concurrent = 2
        spans = {name: [at for at, _, n in sorted(events) if n == name] for _, _, name in events}
        first, second = sorted((spans["d0"], spans["d1"]))
        assert first[1] <= second[0]  # one job of the resource group at a time
    finally:
        kit.close()


def test_a_new_push_cancels_an_interruptible_pipeline(kit: Kit) -> None:
    config = """
tests: {interruptible: true, script: [sleep 30]}
"""
    first = kit.push({".gitlab-ci.yml": config})
    kit.wait_job(first, "tests", ("running",))
    second = kit.push({"README": "again\n"}, "second")
    assert kit.wait(first, timeout=15)["status"] == "canceled"
    kit.service.cancel(kit.project.id, second["id"])
    assert kit.wait(second, timeout=15)["status"] == "canceled"


def test_a_running_non_interruptible_job_keeps_its_pipeline(kit: Kit, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    config = f"""
deploy: {{script: ["while [ ! -e {gate} ]; do sleep 0.1; done"]}}
"""
    first = kit.push({".gitlab-ci.yml": config})
    kit.wait_job(first, "deploy", ("running",))
    second = kit.push({"README": "again\n"}, "second")
    gate.touch()
    assert kit.wait(first)["status"] == "success"
    assert kit.wait(second)["status"] == "success"


def test_skip_ci_workflow_rules_and_yaml_errors(kit: Kit) -> None:
    skipped = kit.push({".gitlab-ci.yml": "job: {script: [echo hi]}\n"}, "docs only [skip ci]")
    assert skipped is not None and skipped["status"] == "skipped"
    assert kit.service.jobs(kit.project.id, skipped["id"]) == []
    option = kit.push({"a": "1"}, "push option", push_options=["ci.skip"])
    assert option is not None and option["status"] == "skipped"
    workflow = """
workflow:
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
job: {script: [echo hi]}
"""
    assert kit.push({".gitlab-ci.yml": workflow}, branch="feature") is None
    with pytest.raises(PipelineError) as err:
        kit.push({"b": "2"}, branch="feature", source="api")
    assert err.value.status == 400 and "workflow" in json.dumps(err.value.body)
    broken = kit.push({".gitlab-ci.yml": "job:\n  script: [echo hi]\n  stage: nowhere\n"}, "broken")
    assert broken is not None and broken["status"] == "failed"
    assert "nowhere" in broken["yaml_errors"]
    assert kit.service.jobs(kit.project.id, broken["id"]) == []


def test_cache_is_kept_between_pipelines(kit: Kit) -> None:
    config = """
job:
  cache: {key: deps, paths: [.cache/]}
  script:
    - ls .cache 2>/dev/null || true
    - mkdir -p .cache && echo "run $CI_PIPELINE_IID" >> .cache/runs
"""
    first = kit.wait(kit.push({".gitlab-ci.yml": config}))
    assert "Failed to extract cache" in kit.trace(kit.jobs(first)["job"])
    second = kit.wait(kit.push({"x": "1"}))
    log = kit.trace(kit.jobs(second)["job"])
    assert "Checking cache for deps-protected" in log and "Successfully extracted cache" in log and "\nruns\n" in log


def test_job_token_is_valid_while_the_job_runs(kit: Kit, tmp_path: Path) -> None:
    token_file, gate = tmp_path / "token", tmp_path / "gate"
    config = f"""
job: {{script: ["echo $CI_JOB_TOKEN > {token_file}", "while [ ! -e {gate} ]; do sleep 0.1; done"]}}
"""
    started = kit.push({".gitlab-ci.yml": config})
    deadline = time.monotonic() + 20
    while not token_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    token = token_file.read_text().strip()
    job = kit.service.job_for_token(token)
    assert job is not None and job["name"] == "job" and job["status"] == "running"
    assert kit.service.job_for_token("glcbt-wrong") is None
    gate.touch()
    kit.wait(started)
    assert kit.service.job_for_token(token) is None


def test_state_survives_a_restart(tmp_path: Path) -> None:
    kit = Kit(tmp_path)
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": "job: {script: [echo persisted]}\n"}))
    job = kit.jobs(pipeline)["job"]
    kit.close()
    from labkit.gitlab.pipelines import CiSettings, PipelineService
    from labkit.gitlab.runner import Runner

    again = PipelineService(tmp_path / "ci", kit.repos, CiSettings("http://127.0.0.1:9"),
                            Runner(kit.config, kit.repos))
    try:
        assert again.get(kit.project.id, pipeline["id"])["status"] == "success"
        assert "persisted" in again.trace(kit.project.id, job["id"])
        assert [p["id"] for p in again.list(kit.project.id)] == [pipeline["id"]]
    finally:
        again.close()
    # a daemon that died under a running job: the job is stuck, its pipeline goes on
    from labkit.core.store import Database

    db = Database(tmp_path / "ci" / "pipelines.sqlite")
    doc = json.loads(db.query("SELECT doc FROM jobs WHERE id = ?", (job["id"],))[0]["doc"])
    doc.update(status="running", finished_at=None)
    db.execute("UPDATE jobs SET doc = ? WHERE id = ?", (json.dumps(doc), job["id"]))
    db.close()
    third = PipelineService(tmp_path / "ci", kit.repos, CiSettings("http://127.0.0.1:9"),
                            Runner(kit.config, kit.repos))
    try:
        stuck = third.job(kit.project.id, job["id"])
        assert (stuck["status"], stuck["failure_reason"]) == ("failed", "stuck_or_timeout_failure")
        assert third.get(kit.project.id, pipeline["id"])["status"] == "failed"
    finally:
        third.close()


def test_coverage_is_read_from_the_trace(kit: Kit) -> None:
    config = r"""
unit:
  coverage: '/^TOTAL.+?(\d+(?:\.\d+)?%)$/'
  script: [echo "TOTAL   120   9   80%", echo "TOTAL   120   6   92.5%"]
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    assert kit.jobs(pipeline)["unit"]["coverage"] == 92.5
    assert pipeline["coverage"] == "92.50"


@pytest.mark.parametrize(("jobs", "dag", "expected"), [
    ([], False, None),
    ([("success", False), ("skipped", False)], False, "success"),
    ([("failed", True), ("success", False)], False, "success"),  # allowed to fail: success with warnings
    ([("manual", True), ("success", False)], False, "success"),  # a manual job that may fail blocks nothing
    ([("manual", False), ("success", False)], False, "manual"),  # a blocking manual job
    ([("manual", True)], False, "skipped"),
    ([("canceled", False), ("success", False)], False, "canceled"),
    ([("failed", False), ("canceled", False)], False, "failed"),
    ([("created", False), ("success", False)], False, "running"),
    ([("pending", False), ("created", False)], False, "pending"),
    ([("running", False), ("failed", False)], False, "running"),
    ([("success", False), ("manual", True)], True, "skipped"),  # a need that does not run skips the DAG job
    ([("success", False), ("skipped", False)], True, "skipped"),
    ([("scheduled", False), ("success", False)], False, "scheduled"),
])
def test_composite_status_as_gitlab_computes_it(jobs: list[tuple[str, bool]], dag: bool,
                                                expected: str | None) -> None:
    from labkit.gitlab.statuses import composite

    assert composite([{"status": s, "allow_failure": a} for s, a in jobs], dag=dag) == expected


def test_a_job_that_needs_a_manual_job_is_skipped(kit: Kit) -> None:
    config = """
optional: {stage: build, when: manual, script: [echo optional]}
after: {stage: test, needs: [optional], script: [echo after]}
plain: {stage: test, script: [echo plain]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert (jobs["optional"]["status"], jobs["after"]["status"], jobs["plain"]["status"]) == \
        ("manual", "skipped", "success")
    kit.service.play(kit.project.id, jobs["optional"]["id"])
    pipeline = kit.wait(pipeline)
    assert {n: j["status"] for n, j in kit.jobs(pipeline).items()} == \
        {"optional": "success", "after": "success", "plain": "success"}


def test_retry_when_and_git_strategy_none(kit: Kit) -> None:
    config = """
no-source:
  variables: {GIT_STRATEGY: none}
  script: [test ! -e .gitlab-ci.yml, echo empty]
only-on-code:
  retry: {max: 2, when: [runner_system_failure]}
  script: [exit 1]
by-exit-code:
  retry: {max: 1, exit_codes: [42]}
  script: [exit 42]
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = list(kit.jobs(pipeline, include_retried=True).values())
    tries = {name: sum(1 for j in jobs if j["name"] == name) for name in ("no-source", "only-on-code", "by-exit-code")}
    assert tries == {"no-source": 1, "only-on-code": 1, "by-exit-code": 2}
    assert "Skipping Git repository setup" in kit.trace(kit.jobs(pipeline)["no-source"])
    assert kit.jobs(pipeline)["no-source"]["status"] == "success"


def test_junit_reports_make_the_pipeline_test_report(kit: Kit) -> None:
    tests = """
def test_ok():
    assert True

def test_broken():
    assert 1 + 1 == 3, "arithmetic"
"""
    config = """
unit:
  script: [python -m pytest -q -p no:cacheprovider --junitxml=report.xml test_things.py]
  artifacts:
    when: always
    reports: {junit: report.xml}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config, "test_things.py": tests}))
    assert pipeline["status"] == "failed"
    report = kit.service.test_report(kit.project.id, pipeline["id"])
    assert (report["total_count"], report["success_count"], report["failed_count"]) == (2, 1, 1)
    suite = report["test_suites"][0]
    assert suite["name"] == "unit"
    broken = next(c for c in suite["test_cases"] if c["status"] == "failed")
    assert broken["name"] == "test_broken" and "arithmetic" in broken["stack_trace"]


def test_dependencies_choose_whose_artifacts_a_job_gets(kit: Kit) -> None:
    config = """
one: {stage: build, script: [echo 1 > one.txt], artifacts: {paths: [one.txt]}}
two: {stage: build, script: [echo 2 > two.txt], artifacts: {paths: [two.txt]}}
only-two: {stage: test, dependencies: [two], script: [test ! -e one.txt, cat two.txt]}
none: {stage: test, dependencies: [], script: [test ! -e one.txt, test ! -e two.txt]}
no-artifacts: {stage: test, needs: [{job: one, artifacts: false}], script: [test ! -e one.txt]}
all: {stage: test, script: [cat one.txt two.txt]}
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    assert {n: j["status"] for n, j in kit.jobs(pipeline).items()} == dict.fromkeys(
        ("one", "two", "only-two", "none", "no-artifacts", "all"), "success")


def test_artifacts_expire(kit: Kit) -> None:
    kit.service.expiry_interval = 0.2
    config = "job: {script: [echo x > x.txt], artifacts: {paths: [x.txt], expire_in: 2 seconds}}\n"
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    job = kit.jobs(pipeline)["job"]
    assert job["artifacts_expire_at"] and kit.service.artifacts(kit.project.id, job["id"]) is not None
    deadline = time.monotonic() + 10
    while kit.service.artifacts(kit.project.id, job["id"]) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    job = kit.service.job(kit.project.id, job["id"])
    assert job["artifacts_file"] is None and "archive" not in {a["file_type"] for a in job["artifacts"]}
    assert job["pipeline"]["web_url"] == pipeline["web_url"]


def test_parallel_jobs_know_their_place(kit: Kit) -> None:
    config = """
shard:
  parallel: 2
  script: [echo "node $CI_NODE_INDEX of $CI_NODE_TOTAL"]
build:
  parallel:
    matrix:
      - ARCH: [amd64, arm64]
  script: [echo "arch $ARCH node $CI_NODE_INDEX of $CI_NODE_TOTAL"]
"""
    pipeline = kit.wait(kit.push({".gitlab-ci.yml": config}))
    jobs = kit.jobs(pipeline)
    assert "node 2 of 2" in kit.trace(jobs["shard 2/2"])
    assert "arch arm64 node 2 of 2" in kit.trace(jobs["build: [arm64]"])
    assert "arch amd64 node 1 of 2" in kit.trace(jobs["build: [amd64]"])


def test_tagged_jobs_wait_for_a_runner_with_their_tags_and_untracked_artifacts(kit: Kit) -> None:
    config = """
gpu: {tags: [gpu], script: [echo never]}
files:
  script: [echo a > a.log, mkdir -p out, echo b > out/b.txt]
  artifacts: {untracked: true, exclude: ["*.log"]}
"""
    started = kit.push({".gitlab-ci.yml": config})
    kit.wait_job(started, "files", ("success",))
    time.sleep(0.5)
    jobs = kit.jobs(started)
    assert jobs["gpu"]["status"] == "pending" and jobs["gpu"]["started_at"] is None
    archive = kit.service.artifacts(kit.project.id, jobs["files"]["id"])
    assert archive is not None and zipfile.ZipFile(archive).namelist() == ["out/b.txt"]
    kit.service.cancel(kit.project.id, started["id"])
    assert kit.wait(started)["status"] == "canceled"
