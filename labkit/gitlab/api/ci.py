"""Pipelines, jobs and CI lint: routed, authorized, filtered and paginated here; run by the ``Pipelines``
service and checked by the CI planner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ..accounts import Caller
from ..errors import bad_request, gl_error, not_found, param_error
from ..model import PipelineError, PipelineRequest
from .common import caller, flag, ok, paginate, params, required
from .context import Services
from .projects import ProjectRoutes

SCOPES = {"running": ("running", "pending"), "pending": ("pending",), "finished": ("success", "failed", "canceled"),
          "branches": None, "tags": None}
JOB_SCOPES = ("created", "pending", "running", "failed", "success", "canceled", "skipped", "waiting_for_resource",
              "manual", "scheduled", "preparing")


def _refusal(err: PipelineError) -> ApiError:
    return ApiError(err.status, "Refused", str(err), {"body": err.body})


def refusing(fn: Callable[..., Awaitable[web.StreamResponse]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Answers a PipelineError from the service in GitLab's shape, as the service worded it."""
    async def wrapped(self: CiRoutes, request: web.Request) -> web.StreamResponse:
        try:
            return await fn(self, request)
        except PipelineError as err:
            raise _refusal(err) from None
    return wrapped


class CiRoutes:
    def __init__(self, s: Services, projects: ProjectRoutes) -> None:
        self.s = s
        self.p = projects

    def install(self, app: web.Application) -> None:
        r, P = app.router, "/api/v4/projects/{id}"
        r.add_get("/api/v4/job", self.own_job)
        r.add_get(P + "/pipelines", self.pipelines)
        r.add_get(P + "/pipelines/latest", self.latest)
        r.add_get(P + "/pipelines/{pid:\\d+}", self.pipeline)
        r.add_post(P + "/pipeline", self.create)
        r.add_post(P + "/pipelines/{pid:\\d+}/cancel", self.cancel)
        r.add_post(P + "/pipelines/{pid:\\d+}/retry", self.retry)
        r.add_get(P + "/pipelines/{pid:\\d+}/jobs", self.pipeline_jobs)
        r.add_get(P + "/jobs", self.jobs)
        r.add_get(P + "/jobs/{jid:\\d+}", self.job)
        r.add_get(P + "/jobs/{jid:\\d+}/trace", self.trace)
        r.add_post(P + "/jobs/{jid:\\d+}/play", self.play)
        r.add_post(P + "/jobs/{jid:\\d+}/retry", self.retry_job)
        r.add_post(P + "/jobs/{jid:\\d+}/cancel", self.cancel_job)
        r.add_get(P + "/jobs/{jid:\\d+}/artifacts", self.artifacts)
        r.add_post(P + "/ci/lint", self.lint)
        r.add_get(P + "/ci/lint", self.lint_ref)

    # helpers -----------------------------------------------------------------------------------------------
    def _project(self, request: web.Request, write: bool = False) -> tuple[dict[str, Any], Caller]:
        if write:
            return self.p.writable(request)
        project, who = self.p.project(request)
        if who.user is None and project["visibility"] != "public":
            raise not_found("Project")
        return project, who

    def _pipeline(self, project: dict[str, Any], request: web.Request) -> dict[str, Any]:
        found = self.s.need_pipelines().get(project["id"], int(request.match_info["pid"]))
        if found is None:
            raise not_found("")
        return found

    def _job(self, project: dict[str, Any], request: web.Request) -> dict[str, Any]:
        found = self.s.need_pipelines().job(project["id"], int(request.match_info["jid"]))
        if found is None:
            raise not_found("")
        return found

    # pipelines ---------------------------------------------------------------------------------------------
    async def pipelines(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        p = await params(request)
        found = self.s.need_pipelines().list(project["id"])
        scope = p.get("scope")
        if scope is not None:
            if scope not in SCOPES:
                raise param_error("scope does not have a valid value")
            if scope == "tags":
                found = [x for x in found if x.get("tag")]
            elif scope == "branches":
                found = [x for x in found if not x.get("tag")]
            else:
                found = [x for x in found if x["status"] in SCOPES[scope]]
        for key in ("status", "ref", "sha", "source"):
            if p.get(key):
                found = [x for x in found if x.get(key) == p[key]]
        if p.get("username"):
            found = [x for x in found if (x.get("user") or {}).get("username") == p["username"]]
        if p.get("updated_after"):
            found = [x for x in found if (x.get("updated_at") or "") > p["updated_after"]]
        if p.get("updated_before"):
            found = [x for x in found if (x.get("updated_at") or "") < p["updated_before"]]
        if p.get("name"):
            found = [x for x in found if x.get("name") == p["name"]]
        order = p.get("order_by", "id")
        if order not in ("id", "status", "ref", "updated_at", "user_id"):
            raise param_error("order_by does not have a valid value")
        if p.get("sort", "desc") not in ("asc", "desc"):
            raise param_error("sort does not have a valid value")

        def key(x: dict[str, Any]) -> Any:
            value = (x.get("user") or {}).get("id") if order == "user_id" else x.get(order)
            return (value if value is not None else "", x["id"])

        found = sorted(found, key=key, reverse=p.get("sort", "desc") == "desc")
        return paginate(request, [_basic_pipeline(x) for x in found])

    async def pipeline(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        return ok(self._pipeline(project, request))

    async def latest(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        p = await params(request)
        ref = p.get("ref") or project["default_branch"]
        found = [x for x in self.s.need_pipelines().list(project["id"]) if x.get("ref") == ref]
        if not found:
            raise not_found("")
        return ok(self.s.need_pipelines().get(project["id"], max(found, key=lambda x: x["id"])["id"]))

    @refusing
    async def create(self, request: web.Request) -> web.Response:
        project, who = self._project(request, write=True)
        p = await params(request)
        required(p, "ref")
        variables = p.get("variables") or []
        if not isinstance(variables, list) or not all(isinstance(v, dict) and "key" in v for v in variables):
            raise param_error("variables is invalid")
        if any(v.get("variable_type", "env_var") != "env_var" for v in variables):
            from ..errors import unsupported

            raise unsupported("file-type pipeline variables (variable_type: file)")
        ref = str(p["ref"])
        pwn = project["path_with_namespace"]
        branches, tags = self.s.repos.branches(pwn), self.s.repos.tags(pwn)
        sha = branches.get(ref) or tags.get(ref)
        if sha is None:
            raise bad_request({"base": ["Reference not found"]})
        commit = self.s.repos.commit(pwn, sha)
        req = PipelineRequest(self.s.projects.model(project), ref, sha, "api", self.s.accounts.public(who.user),
                              {str(v["key"]): str(v.get("value", "")) for v in variables},
                              tag=ref not in branches, commit_message=commit.message.decode(errors="replace")
                              if commit else "")
        created = self.s.need_pipelines().create(req)
        if created is None:
            raise bad_request({"base": ["Pipeline filtered out by workflow rules."]})
        return ok(created, 201)

    @refusing
    async def cancel(self, request: web.Request) -> web.Response:
        project, _ = self._project(request, write=True)
        return ok(self.s.need_pipelines().cancel(project["id"], self._pipeline(project, request)["id"]))

    @refusing
    async def retry(self, request: web.Request) -> web.Response:
        project, _ = self._project(request, write=True)
        return ok(self.s.need_pipelines().retry(project["id"], self._pipeline(project, request)["id"]), 201)

    # jobs --------------------------------------------------------------------------------------------------
    def _scoped(self, jobs: list[dict[str, Any]], p: dict[str, Any]) -> list[dict[str, Any]]:
        scope = p.get("scope")
        if scope:
            scopes = scope if isinstance(scope, list) else [scope]
            if any(s not in JOB_SCOPES for s in scopes):
                raise param_error("scope does not have a valid value")
            jobs = [j for j in jobs if j["status"] in scopes]
        return jobs

    async def pipeline_jobs(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        pipeline = self._pipeline(project, request)
        p = await params(request)
        jobs = self.s.need_pipelines().jobs(project["id"], pipeline["id"])
        if not flag(p.get("include_retried")):
            jobs = [j for j in jobs if not j.get("retried")]
        return paginate(request, self._scoped(jobs, p))

    async def jobs(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        p = await params(request)
        jobs = sorted(self.s.need_pipelines().jobs(project["id"]), key=lambda j: j["id"], reverse=True)
        return paginate(request, self._scoped(jobs, p))

    async def own_job(self, request: web.Request) -> web.Response:
        """``GET /job``: the job whose ``CI_JOB_TOKEN`` authenticates the request."""
        who = caller(request)
        if who.job is None:
            raise gl_error(401)
        return ok(who.job)

    async def job(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        return ok(self._job(project, request))

    async def trace(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        job = self._job(project, request)
        return web.Response(text=self.s.need_pipelines().trace(project["id"], job["id"]), content_type="text/plain")

    @refusing
    async def play(self, request: web.Request) -> web.Response:
        project, _ = self._project(request, write=True)
        p = await params(request)
        if p.get("job_variables_attributes"):
            from ..errors import unsupported

            raise unsupported("job_variables_attributes when playing a manual job")
        return ok(self.s.need_pipelines().play(project["id"], self._job(project, request)["id"]))

    @refusing
    async def retry_job(self, request: web.Request) -> web.Response:
        project, _ = self._project(request, write=True)
        return ok(self.s.need_pipelines().retry_job(project["id"], self._job(project, request)["id"]), 201)

    @refusing
    async def cancel_job(self, request: web.Request) -> web.Response:
        project, _ = self._project(request, write=True)
        return ok(self.s.need_pipelines().cancel_job(project["id"], self._job(project, request)["id"]), 201)

    async def artifacts(self, request: web.Request) -> web.StreamResponse:
        project, _ = self._project(request)
        job = self._job(project, request)
        path = self.s.need_pipelines().artifacts(project["id"], job["id"])
        if path is None or not path.is_file():
            raise gl_error(404, "404 Not Found")
        return web.FileResponse(path, headers={"Content-Type": "application/zip", "Content-Disposition":
                                               f'attachment; filename="{path.name}"'})

    # lint --------------------------------------------------------------------------------------------------
    async def lint(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        p = await params(request)
        required(p, "content")
        return ok(self._lint(project, str(p["content"]), p))

    async def lint_ref(self, request: web.Request) -> web.Response:
        project, _ = self._project(request)
        p = await params(request)
        ref = p.get("content_ref") or p.get("sha") or p.get("ref") or project["default_branch"]
        sha = self.p.sha(project, ref)
        if sha is None:
            raise not_found("Commit")
        content = self.s.repos.read_file(project["path_with_namespace"], sha, ".gitlab-ci.yml")
        if content is None:
            return ok({"valid": False, "errors": ["Please provide content of .gitlab-ci.yml"], "warnings": [],
                       "merged_yaml": None, "includes": []})
        return ok(self._lint(project, content.decode(errors="replace"), p | {"ref": ref}))

    def _lint(self, project: dict[str, Any], content: str, p: dict[str, Any]) -> dict[str, Any]:
        if self.s.lint is None:
            from ..errors import unsupported

            raise unsupported("CI lint (the CI planner is not installed)")
        ref = p.get("ref") or project["default_branch"]
        sha = self.p.sha(project, ref) or ""
        result = self.s.lint(project=project, content=content, ref=ref, sha=sha, dry_run=flag(p.get("dry_run")))
        if not flag(p.get("include_jobs")):
            result.pop("jobs", None)
        return result


def _basic_pipeline(x: dict[str, Any]) -> dict[str, Any]:
    """A pipeline as lists show it (GitLab's basic entity)."""
    keep = ("id", "iid", "project_id", "sha", "ref", "status", "source", "created_at", "updated_at", "web_url",
            "name")
    return {k: x.get(k) for k in keep}
