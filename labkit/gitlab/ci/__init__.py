"""The CI planner: ``.gitlab-ci.yml`` (with ``include: local``, ``extends``, ``default``, ``!reference``) to the
jobs GitLab creates for a pipeline (``plan``), and CI lint's answer (``lint``).

* ``plan(repos, req) -> PipelinePlan`` — ``workflow:rules``, ``rules``/``only``/``except``, ``when`` defaults,
  ``needs``, ``stages``, ``parallel`` (``matrix``); errors as GitLab's ``yaml_errors``.
* ``lint(repos, project, sha=, ref=, content=, dry_run=, include_jobs=) -> dict`` — the CI lint API's JSON.
* ``lint_api(read=, list_files=, project=, content=, ref=, sha=, dry_run=)`` — the same for the API layer.
* ``diagnose(repos, project, sha)`` — each lint error with its file, line and that line's text.
* ``pipeline_variables(req)`` — the predefined variables a pipeline's rules see.
"""

from .config import CiConfig, ConfigError, load_config
from .durations import duration
from .expressions import ExpressionError, evaluate
from .lint import diagnose, lint, lint_api
from .plan import plan, plan_config
from .variables import pipeline_variables, skip_ci, slug

__all__ = ["CiConfig", "ConfigError", "ExpressionError", "diagnose", "duration", "evaluate", "lint", "lint_api",
           "load_config", "pipeline_variables", "plan", "plan_config", "skip_ci", "slug"]
