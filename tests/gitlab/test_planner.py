"""The CI planner: `.gitlab-ci.yml` in a real git repository → the jobs GitLab creates, and CI lint's answers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gitlab
import pytest

from labkit.gitlab.ci import duration, evaluate, lint, pipeline_variables, plan, slug
from labkit.gitlab.ci.expressions import valid
from labkit.gitlab.model import PipelinePlan

from .conftest import RunningGitLab
from .workrepo import WorkRepo


@pytest.fixture
def repo(tmp_path: Path) -> WorkRepo:
    return WorkRepo(tmp_path / "catalog")


def run(repo: WorkRepo, ci: str, files: dict[str, str | None] | None = None, message: str = "change",
        **req: object) -> PipelinePlan:
    sha = repo.commit({".gitlab-ci.yml": ci, **(files or {})}, message)
    return plan(repo, repo.request(sha, **req))  # type: ignore[arg-type]


def names(p: PipelinePlan) -> list[str]:
    assert not p.errors, p.errors
    return [j.name for j in p.jobs]


def job(p: PipelinePlan, name: str):
    return next(j for j in p.jobs if j.name == name)


# --- expressions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("statement", "expected"), [
    ('$CI_COMMIT_BRANCH == "main"', True),
    ("$CI_COMMIT_BRANCH == 'dev'", False),
    ("$EMPTY", False),
    ("$SET", True),
    ("$UNSET == null", True),
    ("$EMPTY == null", False),
    ("$CI_COMMIT_BRANCH =~ /^MA/i", True),
    ("$CI_COMMIT_BRANCH =~ /^ma/", True),
    ("$CI_COMMIT_BRANCH !~ /^feat/", True),
    ("$CI_COMMIT_BRANCH =~ $PATTERN", True),
    ('($EMPTY || $SET) && $CI_COMMIT_BRANCH != "dev"', True),
    ('$EMPTY || $SET && $CI_COMMIT_BRANCH == "dev"', False),  # && binds tighter than ||
    ("$SET && $EMPTY", False),
    ('${SET} == "x"', True),
    ('$CI_COMMIT_BRANCH =~ "/^ma/"', True),  # a string holding a /pattern/ is one
    ('$CI_COMMIT_BRANCH =~ "main"', False),
])
def test_expressions(statement: str, expected: bool) -> None:
    variables = {"CI_COMMIT_BRANCH": "main", "EMPTY": "", "SET": "x", "PATTERN": "/^m/"}
    assert evaluate(statement, variables) is expected


@pytest.mark.parametrize("statement", ['$A ==', '$A == "x" &&', "main", '$A = "x"', "($A", "$A =~", "$A =~ /[a-/", ""])
def test_invalid_expressions(statement: str) -> None:
    assert not valid(statement)


def test_predefined_variables_and_durations(repo: WorkRepo) -> None:
    sha = repo.commit({"README.md": "x"}, "Add readme\n\nbody")
    v = pipeline_variables(repo.request(sha, ref="feature/Big_Thing"), pipeline_id=12, iid=3)
    assert v["CI_COMMIT_REF_SLUG"] == "feature-big-thing" == slug("feature/Big_Thing")
    assert v["CI_COMMIT_SHORT_SHA"] == sha[:8] and v["CI_COMMIT_BRANCH"] == "feature/Big_Thing"
    assert v["CI_PIPELINE_ID"] == "12" and v["CI_PIPELINE_IID"] == "3" and v["CI_COMMIT_TITLE"] == "Add readme"
    assert v["CI_API_V4_URL"] == "http://gitlab.example.com/api/v4" and v["CI_PROJECT_NAME"] == "catalog"
    assert "CI_COMMIT_TAG" not in v
    assert duration("1h 30m") == 5400 and duration("90 minutes") == 5400 and duration("600") == 600
    assert duration("2 hours and 10 seconds") == 7210 and duration("soon") is None


# --- stages, needs, when ------------------------------------------------------------------------------------

def test_default_stages_pre_post_and_no_stage_means_test(repo: WorkRepo) -> None:
    p = run(repo, """
lint: {stage: .pre, script: [echo lint]}
unit: {script: echo unit}
ship: {stage: deploy, script: echo ship}
compile: {stage: build, script: echo build}
report: {stage: .post, script: echo done}
""")
    assert names(p) == ["lint", "compile", "unit", "ship", "report"]
    assert p.stages == [".pre", "build", "test", "deploy", ".post"]
    assert job(p, "unit").stage == "test" and job(p, "unit").script == ["echo unit"]
    assert job(p, "unit").needs is None  # stage order


def test_needs_dag_empty_needs_and_same_stage_needs(repo: WorkRepo) -> None:
    p = run(repo, """
stages: [build, test]
a: {stage: build, script: x}
b: {stage: build, script: x, needs: [a]}
c: {stage: test, script: x, needs: []}
d: {stage: test, script: x, needs: [{job: b, artifacts: false}]}
""")
    assert [n.job for n in job(p, "b").needs] == ["a"]
    assert job(p, "c").needs == []
    need = job(p, "d").needs[0]
    assert (need.job, need.artifacts, need.optional) == ("b", False, False)


def test_when_defaults_manual_blocking(repo: WorkRepo) -> None:
    p = run(repo, """
plain: {script: x}
manual: {stage: deploy, script: x, when: manual}
manual_strict: {stage: deploy, script: x, when: manual, allow_failure: false}
from_rules:
  stage: deploy
  script: x
  rules: [{if: $CI_COMMIT_BRANCH == "main", when: manual}]
delayed: {stage: deploy, script: x, when: delayed, start_in: 30 minutes}
cleanup: {stage: .post, script: x, when: always}
""")
    assert job(p, "plain").when == "on_success" and not job(p, "plain").allow_failure
    m = job(p, "manual")
    assert (m.when, m.allow_failure, m.manual_blocks) == ("manual", True, False)
    assert job(p, "manual_strict").manual_blocks
    r = job(p, "from_rules")
    assert (r.when, r.allow_failure, r.manual_blocks) == ("manual", False, True)
    assert job(p, "delayed").start_in == "30 minutes" and job(p, "cleanup").when == "always"


# --- rules ----------------------------------------------------------------------------------------------------

RULES = """
variables: {DEPLOY_ENV: staging}
build: {stage: build, script: make}
deploy:
  stage: deploy
  script: deploy $DEPLOY_ENV
  rules:
    - if: $CI_COMMIT_TAG
      variables: {DEPLOY_ENV: production}
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE != "schedule"
      when: manual
      allow_failure: true
    - if: $CI_COMMIT_BRANCH =~ /^release\\//
docs:
  script: mkdocs
  rules:
    - changes: [docs/**/*.md, mkdocs.yml]
flaky:
  script: exit 3
  allow_failure: {exit_codes: [3, 4]}
  rules:
    - exists: [tests/**/test_*.py]
    - when: never
"""


def test_rules_first_match_wins(repo: WorkRepo) -> None:
    p = run(repo, RULES, {"tests/unit/test_a.py": "", "docs/x.txt": "x"})
    d = job(p, "deploy")
    assert (d.when, d.allow_failure, d.manual_blocks) == ("manual", True, False)
    assert d.variables["DEPLOY_ENV"] == "staging"
    assert "docs" in names(p)  # a first push (no before) counts every changes rule as true
    flaky = job(p, "flaky")
    assert flaky.allow_failure is False and flaky.allow_failure_exit_codes == [3, 4]


def test_rules_variables_tags_and_no_match(repo: WorkRepo) -> None:
    sha = repo.commit({".gitlab-ci.yml": RULES}, "v1")
    tagged = plan(repo, repo.request(sha, ref="v1.0", tag=True))
    assert job(tagged, "deploy").when == "on_success"
    assert job(tagged, "deploy").variables["DEPLOY_ENV"] == "production"
    assert "flaky" not in names(tagged)  # no tests/: the last rule says never
    feature = plan(repo, repo.request(sha, ref="feature/x"))
    assert "deploy" not in names(feature)  # no rule matched: no job
    release = plan(repo, repo.request(sha, ref="release/1.2"))
    assert job(release, "deploy").when == "on_success"


def test_rules_changes_against_the_push(repo: WorkRepo) -> None:
    first = repo.commit({".gitlab-ci.yml": RULES, "docs/guide/a.md": "a", "src/app.py": "x"}, "first")
    code = repo.commit({"src/app.py": "y"}, "code only")
    assert "docs" not in names(plan(repo, repo.request(code, before=first)))
    doc = repo.commit({"docs/guide/a.md": "b"}, "docs")
    assert "docs" in names(plan(repo, repo.request(doc, before=code)))
    assert "docs" in names(plan(repo, repo.request(code, before=first, source="web")))  # not a push: true
    assert "docs" in names(plan(repo, repo.request(code, ref="v1", tag=True, before=first)))  # a tag: true


def test_workflow_rules(repo: WorkRepo) -> None:
    ci = """
workflow:
  rules:
    - if: $CI_COMMIT_MESSAGE =~ /wip/
      when: never
    - if: $CI_COMMIT_BRANCH
      variables: {LEVEL: branch}
job:
  script: echo $LEVEL
"""
    p = run(repo, ci, message="real work")
    assert p.variables["LEVEL"] == "branch" and job(p, "job").variables["LEVEL"] == "branch"
    blocked = run(repo, ci, message="wip: later")
    assert blocked.workflow_blocked and blocked.warnings[0] == "Pipeline filtered out by workflow rules."
    assert not blocked.jobs and not blocked.errors
    sha = repo.git("rev-parse", "HEAD")
    assert plan(repo, repo.request(sha, ref="v1", tag=True)).workflow_blocked  # no rule matched


def test_rules_leaving_no_job_and_skip_ci(repo: WorkRepo) -> None:
    p = run(repo, 'job: {script: x, rules: [{if: $CI_COMMIT_BRANCH == "nope"}]}')
    assert p.workflow_blocked and p.warnings[0].startswith("Pipeline will not run for the selected trigger.")
    edges = run(repo, "a: {stage: .pre, script: x}\nb: {stage: .post, script: x}\n")  # only edge stages: none
    assert edges.workflow_blocked and edges.warnings[0] == p.warnings[0]
    assert run(repo, "job: {script: x}", message="fix typo [skip ci]").workflow_blocked
    assert run(repo, "job: {script: x}", push_options=["ci.skip"]).workflow_blocked
    sha = repo.git("rev-parse", "HEAD")
    assert not plan(repo, repo.request(sha, push_options=["ci.variable=A=1"])).workflow_blocked


def test_pipeline_variables_reach_rules_and_win(repo: WorkRepo) -> None:
    ci = """
variables: {MODE: normal}
fast: {script: x, rules: [{if: $MODE == "fast"}]}
always: {script: x}
"""
    sha = repo.commit({".gitlab-ci.yml": ci})
    assert names(plan(repo, repo.request(sha))) == ["always"]
    assert names(plan(repo, repo.request(sha, source="api", variables={"MODE": "fast"}))) == ["fast", "always"]
    assert names(plan(repo, repo.request(sha, push_options=["ci.variable=MODE=fast"]))) == ["fast", "always"]


def test_needs_on_a_job_the_rules_removed(repo: WorkRepo) -> None:
    ci = """
build: {stage: build, script: x, rules: [{if: $CI_COMMIT_TAG}]}
lint: {stage: build, script: x, rules: [{if: $CI_COMMIT_TAG}]}
test: {script: x, needs: [build, {job: lint, optional: true}]}
"""
    p = run(repo, ci)
    assert p.errors == ["'test' job needs 'build' job, but 'build' does not exist in the pipeline. This might be "
                        "because of the only, except, or rules keywords. To need a job that sometimes does not exist "
                        "in the pipeline, use needs:optional."]
    sha = repo.git("rev-parse", "HEAD")
    tagged = plan(repo, repo.request(sha, ref="v1", tag=True))
    assert [n.job for n in job(tagged, "test").needs] == ["build", "lint"]


# --- only/except --------------------------------------------------------------------------------------------

def test_only_except(repo: WorkRepo) -> None:
    ci = """
default_only: {script: x}
main_only: {script: x, only: [main]}
tags_only: {script: x, only: [tags]}
not_main: {script: x, except: [main]}
release_re: {script: x, only: {refs: ['/^release-.*$/'], variables: [$RUN == "yes"]}}
web_only: {script: x, only: [web]}
"""
    sha = repo.commit({".gitlab-ci.yml": ci})
    assert names(plan(repo, repo.request(sha))) == ["default_only", "main_only"]
    assert names(plan(repo, repo.request(sha, ref="v2", tag=True))) == ["default_only", "tags_only", "not_main"]
    rel = plan(repo, repo.request(sha, ref="release-3", source="web", variables={"RUN": "yes"}))
    assert names(rel) == ["default_only", "not_main", "release_re", "web_only"]


# --- extends, default, include, !reference, variables --------------------------------------------------------

def test_extends_default_reference_and_inherit(repo: WorkRepo) -> None:
    ci = """
default:
  image: python:3.12-slim
  before_script: [pip install -r requirements.txt]
  retry: 1
  timeout: 10m
variables: {GLOBAL: g, SHARED: global}
.py:
  variables: {SHARED: base, PY: "3.12"}
  script: [pytest]
  artifacts: {reports: {junit: report.xml}}
.setup:
  script: [echo setup]
test:
  extends: [.py]
  variables: {SHARED: job}
  cache: {key: $CI_COMMIT_REF_SLUG, paths: [.cache/pip]}
lint:
  extends: .py
  inherit: {default: [image], variables: false}
  script:
    - !reference [.setup, script]
    - ruff check .
"""
    p = run(repo, ci)
    t = job(p, "test")
    assert t.image == "python:3.12-slim" and t.before_script == ["pip install -r requirements.txt"]
    assert t.variables == {"GLOBAL": "g", "SHARED": "job", "PY": "3.12"}
    assert t.artifacts["reports"] == {"junit": ["report.xml"]} and t.artifacts["when"] == "on_success"
    assert t.cache[0]["key"] == "main" and t.cache[0]["policy"] == "pull-push"
    assert t.timeout == 600 and t.retry == {"max": 1, "when": ["always"]}
    lint_job = job(p, "lint")
    assert lint_job.script == ["echo setup", "ruff check ."] and lint_job.image == "python:3.12-slim"
    assert lint_job.before_script == [] and lint_job.retry == {} and lint_job.variables == {"SHARED": "base",
                                                                                              "PY": "3.12"}
    assert "test:" in p.merged_yaml and ".setup:" in p.merged_yaml


def test_include_local(repo: WorkRepo) -> None:
    ci = """
include:
  - local: ci/build.yml
  - ci/deploy/*.yml
stages: [build, test, deploy]
build: {variables: {FROM: main-file}}
"""
    p = run(repo, ci, {
        "ci/build.yml": "include: /ci/common.yml\nbuild: {stage: build, extends: .common, variables: {FROM: inc}}\n",
        "ci/common.yml": ".common: {script: [make], tags: [docker]}\n",
        "ci/deploy/prod.yml": "prod: {stage: deploy, script: [deploy], when: manual}\n",
    })
    assert names(p) == ["build", "prod"]
    assert job(p, "build").variables["FROM"] == "main-file" and job(p, "build").tags == ["docker"]
    report = lint(repo, repo.project, sha=repo.git("rev-parse", "HEAD"), ref="main")
    assert report["valid"] and [i["location"] for i in report["includes"]] == [
        "ci/build.yml", "ci/deploy/prod.yml", "ci/common.yml"]
    sha = repo.git("rev-parse", "HEAD")
    assert report["includes"][0] == {
        "type": "local", "location": "ci/build.yml", "extra": {}, "context_project": "shop/catalog",
        "context_sha": sha, "blob": f"http://gitlab.example.com/shop/catalog/-/blob/{sha}/ci/build.yml",
        "raw": f"http://gitlab.example.com/shop/catalog/-/raw/{sha}/ci/build.yml"}


def test_parallel_and_matrix(repo: WorkRepo) -> None:
    ci = """
test: {stage: test, script: pytest, parallel: 3}
build:
  stage: build
  script: make
  parallel:
    matrix:
      - ARCH: [amd64, arm64]
        PY: ["3.11", "3.12"]
      - ARCH: riscv
deploy:
  stage: deploy
  script: x
  needs:
    - test
    - job: build
      parallel: {matrix: [{ARCH: amd64, PY: "3.12"}]}
only_riscv:
  stage: deploy
  script: x
  rules: [{if: $ARCH == "riscv"}]
  parallel: {matrix: [{ARCH: [amd64, riscv]}]}
"""
    p = run(repo, ci)
    assert names(p) == ["build: [amd64, 3.11]", "build: [amd64, 3.12]", "build: [arm64, 3.11]",
                        "build: [arm64, 3.12]", "build: [riscv]", "test 1/3", "test 2/3", "test 3/3",
                        "deploy", "only_riscv: [riscv]"]
    assert job(p, "test 2/3").variables == {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
    assert job(p, "build: [riscv]").variables == {"ARCH": "riscv", "CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "5"}
    assert [n.job for n in job(p, "deploy").needs] == ["test 1/3", "test 2/3", "test 3/3", "build: [amd64, 3.12]"]


def test_cache_key_files_interruptible_resource_group(repo: WorkRepo) -> None:
    ci = """
test:
  script: x
  interruptible: true
  resource_group: deploy-$CI_COMMIT_REF_SLUG
  cache:
    - key: {files: [requirements.txt], prefix: pip}
      paths: [.pip]
      policy: pull
"""
    p1 = run(repo, ci, {"requirements.txt": "flask\n"})
    p2 = run(repo, ci, {"requirements.txt": "flask\nrequests\n"})
    k1, k2 = job(p1, "test").cache[0]["key"], job(p2, "test").cache[0]["key"]
    assert k1.startswith("pip-") and k1 != k2 and job(p1, "test").cache[0]["policy"] == "pull"
    assert job(p1, "test").interruptible and job(p1, "test").resource_group == "deploy-main"


# --- errors, as CI lint words them --------------------------------------------------------------------------

@pytest.mark.parametrize(("ci", "message"), [
    ("build:\n  script: [make\n",
     "(<unknown>): did not find expected ',' or ']' while parsing a flow sequence at line 2 column 11"),
    ("build:\n  stage: build\n   script: make\n",
     "(<unknown>): mapping values are not allowed in this context at line 3 column 10"),
    ("test:\n  scrpt: pytest\n", "jobs test config should implement the script:, run:, or trigger: keyword"),
    ("test:\n  script: pytest\n  artefacts: {}\n", "jobs:test config contains unknown keys: artefacts"),
    ("test:\n  stage: tests\n  script: pytest\n",
     "test job: chosen stage tests does not exist; available stages are .pre, build, test, deploy, .post"),
    ("test:\n  script: x\n  needs: [build]\n", "test job: undefined need: build"),
    ("build: {stage: build, script: x, needs: [test]}\ntest: {script: x}\n",
     "build job: need test is not defined in current or prior stages"),
    ("test: {script: x, dependencies: [nope]}\n", "test job: undefined dependency: nope"),
    ("test: {script: x, when: later}\n",
     "jobs:test when should be one of: on_success, on_failure, always, manual, delayed"),
    ("test: {script: x, rules: [{if: '$A = 1'}]}\n", "jobs:test:rules:rule if invalid expression syntax"),
    ("test: {script: x, rules: [{when: sometimes}]}\n", "jobs:test:rules:rule when unknown value: sometimes"),
    ("test: {script: x, rules: [{iff: $A}]}\n", "jobs:test:rules:rule config contains unknown keys: iff"),
    ("test: {script: x, only: [main], rules: [{if: $A}]}\n",
     "jobs:test config key may not be used with `rules`: only"),
    ("test: {extends: .base, script: x}\n", "test: unknown keys in `extends` (.base)"),
    (".a: {extends: .b}\n.b: {extends: .a}\ntest: {extends: .a, script: x}\n",
     ".a: circular dependency detected in `extends`"),
    ("include: ci/missing.yml\ntest: {script: x}\n", "Local file `ci/missing.yml` does not exist!"),
    ("include: .gitlab-ci.yml\ntest: {script: x}\n", "Include `.gitlab-ci.yml` was already included!"),
    (".hidden: {script: x}\n", "jobs config should contain at least one visible job"),
    ("stages: build\ntest: {script: x}\n", "stages config should be an array of strings"),
    ("- just\n- a list\n", "Invalid configuration format"),
    ("test: {script: !reference [.nope, script]}\n", '!reference [".nope", "script"] could not be found'),
    ("a: !reference [b]\nb: !reference [a]\ntest: {script: x}\n", '!reference ["b"] is part of a circular chain'),
    ("test: {script: x, trigger: other/project}\n",
     "jobs:test trigger is not supported by the labkit simulator"),
    ("include: {remote: 'https://example.com/ci.yml'}\ntest: {script: x}\n",
     "`include: remote` is not supported by the labkit simulator; use `include: local`"),
])
def test_broken_files_fail_with_lints_message(repo: WorkRepo, ci: str, message: str) -> None:
    p = run(repo, ci)
    assert message in p.errors and not p.jobs and not p.workflow_blocked
    report = lint(repo, repo.project, sha=repo.git("rev-parse", "HEAD"), ref="main", content=ci)
    assert report["valid"] is False and message in report["errors"]


def test_errors_carry_the_line(repo: WorkRepo) -> None:
    from labkit.gitlab.ci.plan import load
    ci = "build:\n  script: make\n\ntest:\n  stage: tests\n  script: pytest\n"
    sha = repo.commit({".gitlab-ci.yml": ci})
    config = load(repo, repo.project_path, sha)
    assert config is not None and config.errors[0].location == ".gitlab-ci.yml:5"
    config = load(repo, repo.project_path, sha, "a:\n  b: [c\n")
    assert config is not None and config.errors[0].location == ".gitlab-ci.yml:2"


def test_missing_file(repo: WorkRepo) -> None:
    sha = repo.commit({"README.md": "x"})
    assert plan(repo, repo.request(sha)).workflow_blocked
    assert plan(repo, repo.request(sha, source="api")).errors == ["Missing CI config file"]


# --- lint's answer ----------------------------------------------------------------------------------------

def test_lint_static_and_dry_run(repo: WorkRepo) -> None:
    ci = """
build: {stage: build, script: make, tags: [docker]}
deploy:
  stage: deploy
  script: deploy
  environment: production
  needs: [build]
  rules: [{if: $CI_COMMIT_TAG}]
"""
    sha = repo.commit({".gitlab-ci.yml": ci})
    static = lint(repo, repo.project, sha=sha, ref="main", include_jobs=True)
    assert static["valid"] and static["errors"] == [] and static["merged_yaml"].startswith("---\n")
    assert [j["name"] for j in static["jobs"]] == ["build", "deploy"]
    build = static["jobs"][0]
    assert build["only"] == {"refs": ["branches", "tags"]} and build["tag_list"] == ["docker"]
    assert static["jobs"][1]["environment"] == "production" and static["jobs"][1]["needs"] == [{"name": "build"}]
    dry = lint(repo, repo.project, sha=sha, ref="main", dry_run=True, include_jobs=True)
    assert [j["name"] for j in dry["jobs"]] == ["build"]
    bad = lint(repo, repo.project, sha=sha, ref="main", content="")
    assert bad == {"valid": False, "errors": ["Please provide content of .gitlab-ci.yml"], "warnings": [],
                   "merged_yaml": None, "includes": []}


@pytest.mark.parametrize(("ci", "message"), [
    ("test: {script: x, services: [postgres]}\n", "jobs:test services is not supported by the labkit simulator"),
    ("default: {services: [redis]}\ntest: {script: x}\n", "default services is not supported by the labkit simulator"),
    ("include: [{local: a.yml, rules: [{if: $X}]}]\ntest: {script: x}\n",
     "`include: local` with `rules` is not supported by the labkit simulator"),
    ("test: {script: x, rules: [{changes: {paths: [a], compare_to: main}}]}\n",
     "jobs:test:rules:rule:changes compare_to is not supported by the labkit simulator"),
    ("test: {script: x, when: delayed, start_in: 2 weeks}\n", "jobs:test start in should not exceed the limit"),
    ("test: {script: x, when: delayed, start_in: later}\n", "jobs:test start in should be a duration"),
    ("test: {script: x, timeout: forever}\n", "jobs:test:timeout config should be a duration"),
    ("test: {script: x, inherit: {defaults: false}}\n", "jobs:test:inherit config contains unknown keys: defaults"),
    ("test: {script: x, tags: docker}\n", "jobs:test:tags config should be an array of strings"),
    ("test: {script: x, retry: always}\n", "jobs:test:retry config has to be either an integer or a hash"),
    ("default: {before_script: 5}\ntest: {script: x}\n",
     "default:before_script config should be a string or a nested array of strings up to 10 levels deep"),
])
def test_unsupported_and_invalid_keywords_are_refused(repo: WorkRepo, ci: str, message: str) -> None:
    p = run(repo, ci)
    assert message in p.errors and not p.jobs


def test_lint_api_for_the_server(repo: WorkRepo) -> None:
    from labkit.gitlab.ci import lint_api

    sha = repo.commit({".gitlab-ci.yml": "build: {stage: build, script: make}\n"})
    project = {"id": 7, "path_with_namespace": repo.project_path, "default_branch": "main",
               "web_url": "http://gitlab.example.com/shop/catalog"}
    answer = lint_api(read=repo.read_file, list_files=repo.list_files, project=project, content=None, ref="main",
                      sha=sha, dry_run=True)
    assert answer["valid"] and [j["name"] for j in answer["jobs"]] == ["build"]
    answer = lint_api(read=repo.read_file, list_files=repo.list_files, project=project, ref="main", sha=sha,
                      content="build: {script: make, when: later}\n")
    assert answer["errors"] == ["jobs:build when should be one of: on_success, on_failure, always, manual, delayed"]


# --- through the lab's GitLab, with python-gitlab -----------------------------------------------------------

BROKEN = "include: ci/jobs.yml\n\ntest:\n  stage: tests\n  script: [pytest]\n"


def test_ci_lint_and_yaml_errors_through_python_gitlab(gitlab_server: RunningGitLab, tmp_path: Path) -> None:
    project = gitlab_server.client().projects.get("shop/shop")
    project.commits.create({"branch": "lint-demo", "start_branch": project.default_branch,
                            "commit_message": "a CI file with an include", "actions": [
                                {"action": "create", "file_path": "ci/jobs.yml",
                                 "content": ".py: {image: 'python:3.12-slim'}\nlint: {extends: .py, script: [ruff]}\n"},
                                {"action": "update", "file_path": ".gitlab-ci.yml",
                                 "content": "include: ci/jobs.yml\ntest: {extends: .py, script: [pytest], "
                                            "rules: [{if: $CI_COMMIT_TAG}]}\n"}]})
    static = project.ci_lint.create({"content": project.files.get(".gitlab-ci.yml", ref="lint-demo").decode()
                                     .decode(), "ref": "lint-demo", "include_jobs": True})
    assert static.valid and [j["name"] for j in static.jobs] == ["lint", "test"]
    assert [i["location"] for i in static.includes] == ["ci/jobs.yml"] and "python:3.12-slim" in static.merged_yaml
    dry = project.ci_lint.create({"content": "include: ci/jobs.yml\ntest: {extends: .py, script: [pytest], "
                                             "rules: [{if: $CI_COMMIT_TAG}]}\n",
                                  "ref": "lint-demo", "dry_run": True, "include_jobs": True})
    assert dry.valid and [j["name"] for j in dry.jobs] == ["lint"]  # a push to a branch: no tag, no test job

    lint_answer = project.ci_lint.create({"content": BROKEN, "ref": "lint-demo"})
    message = ("test job: chosen stage tests does not exist; available stages are .pre, build, test, deploy, "
               ".post")
    assert not lint_answer.valid and lint_answer.errors == [message]
    work = WorkRepo.clone(gitlab_server.clone_url("shop/shop"), tmp_path / "shop", branch="lint-demo")
    work.commit({".gitlab-ci.yml": BROKEN}, "a typo in a stage")
    work.git("push", "-q", "origin", "lint-demo")
    pushed = project.pipelines.list(ref="lint-demo", sha=work.git("rev-parse", "HEAD"), get_all=False)[0]
    pushed = project.pipelines.get(pushed.id)
    assert (pushed.status, pushed.yaml_errors) == ("failed", message)
    at_ref = project.ci_lint.get(content_ref="lint-demo")  # GET: the file the branch has
    assert not at_ref.valid and at_ref.errors == [message]
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as refused:  # the API answers 400 with the errors
        project.pipelines.create({"ref": "lint-demo"})
    assert refused.value.response_code == 400 and message in str(refused.value.error_message)


def test_diagnose_points_at_the_line(repo: WorkRepo) -> None:
    from labkit.gitlab.ci import diagnose

    sha = repo.commit({".gitlab-ci.yml": "include: ci/more.yml\nbuild:\n  script: make\n",
                       "ci/more.yml": "test:\n  script: pytest\n  whn: manual\n"})
    assert diagnose(repo, repo.project_path, sha) == [{
        "message": "jobs:test config contains unknown keys: whn", "path": "ci/more.yml", "line": 3,
        "text": "  whn: manual"}]
    broken = "build:\n  script: make\n deploy: now\n"
    [found] = diagnose(repo, repo.project_path, sha, broken)
    assert found["message"] == ("(<unknown>): did not find expected key while parsing a block mapping at line 1 "
                                "column 1")  # Psych names the mapping; the line is where the problem is
    assert found["line"] == 3 and found["text"] == " deploy: now"


def test_anchors_and_merge_keys(repo: WorkRepo) -> None:
    ci = """
.defaults: &defaults
  image: python:3.12-slim
  variables: {A: "1"}
.scripts: &setup [pip install ., echo ready]
test:
  <<: *defaults
  script: [*setup, pytest]
  rules:
    - !reference [.rules, rules]
.rules:
  rules: [{if: $CI_COMMIT_BRANCH}]
"""
    p = run(repo, ci)
    t = job(p, "test")
    assert t.image == "python:3.12-slim" and t.variables == {"A": "1"}
    assert t.script == ["pip install .", "echo ready", "pytest"]


def test_lint_warns_of_rules_when_without_workflow_rules(repo: WorkRepo) -> None:
    ci = "build:\n  script: make\n  rules:\n    - if: $CI_COMMIT_TAG\n    - when: always\n"
    sha = repo.commit({".gitlab-ci.yml": ci})
    answer = lint(repo, repo.project, sha=sha, ref="main")
    assert answer["valid"] and answer["warnings"] == [
        "jobs:build may allow multiple pipelines to run for a single action due to `rules:when` clause with no "
        "`workflow:rules` - read more: https://docs.gitlab.com/ee/ci/troubleshooting.html#pipeline-warnings"]
    quiet = "workflow: {rules: [{when: always}]}\n" + ci
    assert lint(repo, repo.project, sha=sha, ref="main", content=quiet)["warnings"] == []


def test_lint_dry_run_says_why_no_pipeline_would_run(repo: WorkRepo) -> None:
    sha = repo.commit({".gitlab-ci.yml": "workflow: {rules: [{if: $CI_COMMIT_TAG}]}\nbuild: {script: make}\n"})
    answer = lint(repo, repo.project, sha=sha, ref="main", dry_run=True, include_jobs=True)
    assert (answer["valid"], answer["errors"], answer["jobs"]) == (False, ["Pipeline filtered out by workflow rules."],
                                                                   [])
    assert lint(repo, repo.project, sha=sha, ref="main")["valid"]  # statically, the file is fine


def test_only_except_variables_and_changes(repo: WorkRepo) -> None:
    ci = """
docs: {script: x, only: {refs: [branches], changes: ["docs/**/*"]}}
not_when_skip: {script: x, except: {variables: [$SKIP_TESTS]}}
this_project: {script: x, only: ["main@shop/catalog"]}
other_project: {script: x, only: ["main@other/project"]}
"""
    first = repo.commit({".gitlab-ci.yml": ci, "docs/index.md": "a", "app.py": "a"}, "first")
    code = repo.commit({"app.py": "b"}, "code")
    assert names(plan(repo, repo.request(code, before=first))) == ["not_when_skip", "this_project"]
    docs = repo.commit({"docs/index.md": "b"}, "docs")
    skipping = plan(repo, repo.request(docs, before=code, variables={"SKIP_TESTS": "1"}))
    assert names(skipping) == ["docs", "this_project"]


@pytest.mark.parametrize("content", ["# parts come later\n", "a: [b\n"])
def test_an_empty_or_broken_include_is_invalid(repo: WorkRepo, content: str) -> None:
    p = run(repo, "include: ci/part.yml\ntest: {script: x}\n", {"ci/part.yml": content})
    assert p.errors == ["Included file `ci/part.yml` does not have valid YAML syntax!"]


ODD_VALUES = ["x", 5, True, None, [], {}, ["a"], [5], [[1]], {"a": 1}, {"name": 5}, {"paths": 5}, {"when": 5},
              {"max": "x"}, {"exit_codes": "x"}, {"key": {"files": "x"}}, {"reports": {"junit": 5}},
              {"matrix": [{"A": {"b": 1}}]}, [{"if": 5}], [{"job": 5}], [{"changes": 5}], [{"exists": 5}],
              [{"variables": {"A": [1]}}], {"rules": [{"if": 5}]}, {"rules": "x"}, [{"local": 5}]]
ODD_KEYS = ["tags", "retry", "cache", "artifacts", "image", "environment", "timeout", "interruptible",
            "resource_group", "needs", "dependencies", "parallel", "variables", "allow_failure", "when", "start_in",
            "before_script", "after_script", "rules", "only", "except", "extends", "inherit", "stage", "script",
            "workflow", "stages", "include"]


def test_odd_values_give_errors_never_exceptions(repo: WorkRepo) -> None:
    """Whatever an attendee writes, the planner answers (an error, or jobs) — the API never fails with a 500."""
    import yaml

    sha = repo.commit({"README.md": "x"})
    req = repo.request(sha)
    for key in ODD_KEYS:
        for value in ODD_VALUES:
            for data in ({"test": {"script": "x", key: value}}, {"default": {key: value}, "test": {"script": "x"}},
                         {key: value, "test": {"script": "x"}}):
                content = yaml.safe_dump(data)
                p = plan(repo, req, content=content)
                assert p.errors or p.jobs or p.workflow_blocked, content
                answer = lint(repo, repo.project, sha=sha, ref="main", content=content, include_jobs=True)
                assert answer["valid"] is not bool(answer["errors"]), content


# --- YAML syntax errors against Ruby's Psych (what GitLab parses with) ----------------------------------------

BROKEN_YAML = ["a: b: c", "build:\n  script: [make\n", "build:\n  stage: build\n   script: make\n",
               "a:\n  - b\n c: d\n", 'x: "\tfoo\n', "a: @x", "build:\n  script: make\n deploy: now\n",
               "a: {b: c\n", "- a\nb: c\n", "a: 'x\n", "a:\n\t- b\n", "key: value\nkey2 value\nkey3: v\n",
               "a: [b, c]]\n", "a: |\n b\n c: d\n  e\n", "test:\n  script:\n    - echo \"unterminated\n",
               "stages: [build\ntest:\n  script: x\n", "test:\n  script: >\n  x\n  - y\n"]


@pytest.mark.skipif(shutil.which("ruby") is None,
                    reason="ruby is not installed (scripts/test.sh installs Debian's where it can)")
def test_yaml_syntax_errors_are_psychs() -> None:
    """Every message is the one Ruby's Psych raises for the same text (GitLab shows Psych's message)."""
    from labkit.gitlab.ci.yamlfile import YamlSyntaxError, load

    script = ('require "json"; require "psych"; JSON.parse(STDIN.read).each { |t| begin; Psych.safe_load(t); '
              'puts "valid"; rescue Psych::SyntaxError => e; puts e.message; end }')
    done = subprocess.run(["ruby", "-e", script], input=json.dumps(BROKEN_YAML), capture_output=True, text=True,
                          check=True, timeout=60)
    psych = done.stdout.splitlines()
    ours = []
    for text in BROKEN_YAML:
        try:
            load(text)
            ours.append("valid")
        except YamlSyntaxError as err:
            ours.append(str(err))
    assert ours == psych
    assert ours.count("valid") == 2  # a literal block and a sequence entry that only look broken
