"""GitLab's predefined CI/CD variables beyond the planner's (``ci.variables``): the server's and registry's,
known when the pipeline is created, and the job's (``CI_JOB_*``, ``CI_JOB_TOKEN``, ...), known when a runner
picks the job up."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .ci.variables import slug
from .model import Project

SERVER_VERSION = "17.5.0"


def server_variables(server_url: str, registry: str, project: Project, pipeline_id: int,
                     created_at: str) -> dict[str, str]:
    """What a pipeline's variables add to the planner's (``ci.variables.pipeline_variables``): the server,
    the registry, the pipeline's URL."""
    url = urlsplit(server_url)
    env = {
        "CI_SERVER_NAME": "GitLab", "CI_SERVER_VERSION": SERVER_VERSION, "CI_SERVER_URL": server_url.rstrip("/"),
        "CI_SERVER_HOST": url.hostname or "", "CI_SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
        "CI_SERVER_PROTOCOL": url.scheme, "CI_API_V4_URL": f"{server_url.rstrip('/')}/api/v4",
        "CI_PIPELINE_URL": f"{project.web_url}/-/pipelines/{pipeline_id}", "CI_PIPELINE_CREATED_AT": created_at,
        "CI_CONFIG_PATH": ".gitlab-ci.yml", "CI_PROJECT_VISIBILITY": "private",
        "CI_PROJECT_ROOT_NAMESPACE": project.path_with_namespace.split("/")[0],
    }
    if registry:
        env["CI_REGISTRY"] = registry
        env["CI_REGISTRY_IMAGE"] = f"{registry}/{project.path_with_namespace.lower()}"
    return env


def job_variables(job: dict[str, Any], web_url: str, project_dir: str, builds_dir: str, token: str,
                  concurrent_id: int, image: str | None, timeout: int) -> dict[str, str]:
    """The predefined variables a runner adds for one job."""
    name = job["name"]
    env = {
        "CI_JOB_ID": str(job["id"]), "CI_JOB_NAME": name, "CI_JOB_NAME_SLUG": slug(name),
        "CI_JOB_STAGE": job["stage"], "CI_JOB_STATUS": "running", "CI_JOB_TOKEN": token,
        "CI_JOB_URL": f"{web_url}/-/jobs/{job['id']}", "CI_JOB_STARTED_AT": job.get("started_at") or "",
        "CI_JOB_MANUAL": "true" if job.get("_plan", {}).get("when") == "manual" else "",
        "CI_JOB_TIMEOUT": str(timeout), "CI_PROJECT_DIR": project_dir, "CI_BUILDS_DIR": builds_dir,
        "CI_CONCURRENT_ID": str(concurrent_id), "CI_CONCURRENT_PROJECT_ID": str(concurrent_id),
        "CI_RUNNER_ID": "1", "CI_RUNNER_DESCRIPTION": "labkit-runner", "CI_RUNNER_TAGS": "[]",
        "CI_RUNNER_VERSION": "17.5.0", "CI_RUNNER_EXECUTABLE_ARCH": "linux/amd64",
        "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": token,
        "CI_DEPENDENCY_PROXY_USER": "gitlab-ci-token", "CI_DEPENDENCY_PROXY_PASSWORD": token,
    }
    if image:
        env["CI_JOB_IMAGE"] = image
    if not env["CI_JOB_MANUAL"]:
        del env["CI_JOB_MANUAL"]
    m = re.search(r" (\d+)/(\d+)$", name)
    if m:
        env["CI_NODE_INDEX"], env["CI_NODE_TOTAL"] = m.group(1), m.group(2)
    return env
