"""The predefined CI/CD variables a pipeline has before any job runs (what ``rules:if`` and ``workflow:rules``
see), and ``$VAR`` expansion as GitLab applies it to variable values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..model import PipelineRequest

_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def slug(ref: str) -> str:
    """``CI_COMMIT_REF_SLUG``: lowercased, non-alphanumerics as ``-``, at most 63 characters, no edge ``-``."""
    return re.sub(r"[^a-z0-9]", "-", ref.lower())[:63].strip("-")


def pipeline_variables(req: PipelineRequest, *, pipeline_id: int | None = None, iid: int | None = None,
                       extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pipeline-level predefined variables GitLab derives from the request (jobs add their own)."""
    project = req.project
    parts = urlsplit(project.web_url)
    server = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    namespace, _, name = project.path_with_namespace.rpartition("/")
    title = req.commit_message.split("\n", 1)[0]
    out = {
        "CI": "true", "GITLAB_CI": "true", "CI_SERVER": "yes",
        "CI_PIPELINE_SOURCE": req.source,
        "CI_COMMIT_SHA": req.sha, "CI_COMMIT_SHORT_SHA": req.sha[:8],
        "CI_COMMIT_REF_NAME": req.ref, "CI_COMMIT_REF_SLUG": slug(req.ref),
        "CI_COMMIT_BEFORE_SHA": req.before_sha or "0" * 40,
        "CI_COMMIT_MESSAGE": req.commit_message, "CI_COMMIT_TITLE": title,
        "CI_DEFAULT_BRANCH": project.default_branch,
        "CI_PROJECT_ID": str(project.id), "CI_PROJECT_PATH": project.path_with_namespace,
        "CI_PROJECT_PATH_SLUG": slug(project.path_with_namespace), "CI_PROJECT_NAME": name,
        "CI_PROJECT_NAMESPACE": namespace, "CI_PROJECT_URL": project.web_url,
        "CI_SERVER_URL": server, "CI_API_V4_URL": f"{server}/api/v4" if server else "",
        "GITLAB_USER_LOGIN": str(req.user.get("username", "")), "GITLAB_USER_ID": str(req.user.get("id", "")),
        "GITLAB_USER_NAME": str(req.user.get("name", "")),
    }
    if req.tag:
        out["CI_COMMIT_TAG"] = req.ref
    else:
        out["CI_COMMIT_BRANCH"] = req.ref
    if pipeline_id is not None:
        out["CI_PIPELINE_ID"] = str(pipeline_id)
    if iid is not None:
        out["CI_PIPELINE_IID"] = str(iid)
    out.update(extra or {})
    return out


def push_option_variables(options: list[str]) -> dict[str, str]:
    """``git push -o ci.variable="K=V"`` as variables."""
    out: dict[str, str] = {}
    for option in options:
        if option.startswith(("ci.variable=", "ci.var=")):
            key, _, value = option.split("=", 1)[1].partition("=")
            if key:
                out[key] = value
    return out


def skip_ci(req: PipelineRequest) -> bool:
    """``[skip ci]``/``[ci skip]`` in a pushed commit's message, or ``git push -o ci.skip``."""
    if req.source == "push" and re.search(r"\[(ci[ _-]skip|skip[ _-]ci)\]", req.commit_message, re.I):
        return True
    return any(o in ("ci.skip", "skip-ci") for o in req.push_options)


def expand(value: str, variables: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced by their values (unknown ones by nothing), as GitLab expands them."""
    return _REF.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def expand_all(own: Mapping[str, str], context: Mapping[str, str]) -> dict[str, str]:
    """Each of ``own`` expanded against ``context`` and the ones before it."""
    out = dict(context)
    for key, value in own.items():
        out[key] = expand(value, out)
    return out
