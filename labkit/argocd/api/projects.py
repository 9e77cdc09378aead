"""``/api/v1/projects``: Argo CD's ProjectService over the AppProject custom resources."""

from __future__ import annotations

from aiohttp import web

from .context import ApiContext, answer, body, kube_error
from .errors import grpc_error
from .kubeapi import GROUP, VERSION, KubeError, apps_path, projects_path

PREFIX = "/api/v1/projects"


class Projects:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get(PREFIX, self.list)
        r.add_post(PREFIX, self.create)
        r.add_get(PREFIX + "/{name}", self.get)
        r.add_delete(PREFIX + "/{name}", self.delete)

    async def list(self, request: web.Request) -> web.Response:
        listed = await self.ctx.kube.get(projects_path(self.ctx.namespace))
        items = sorted(listed.get("items", []), key=lambda p: p["metadata"]["name"])
        return answer({"metadata": listed.get("metadata", {}), "items": items})

    async def get(self, request: web.Request) -> web.Response:
        try:
            return answer(await self.ctx.kube.get(projects_path(self.ctx.namespace, request.match_info["name"])))
        except KubeError as err:
            raise kube_error(err) from None

    async def create(self, request: web.Request) -> web.Response:
        req = await body(request)
        project = req.get("project") or {}
        if not (project.get("metadata") or {}).get("name"):
            raise grpc_error("InvalidArgument", "project name is required")
        project.update(apiVersion=f"{GROUP}/{VERSION}", kind="AppProject")
        project["metadata"]["namespace"] = self.ctx.namespace
        try:
            return answer(await self.ctx.kube.request("POST", projects_path(self.ctx.namespace), project))
        except KubeError as err:
            if err.status != 409:
                raise kube_error(err) from None
        existing = await self.ctx.kube.get(projects_path(self.ctx.namespace, project["metadata"]["name"]))
        if existing.get("spec") == project.get("spec"):
            return answer(existing)
        if not req.get("upsert"):
            raise grpc_error("InvalidArgument", "existing project spec is different, use upsert flag to force update")
        existing["spec"] = project.get("spec")
        return answer(await self.ctx.kube.request(
            "PUT", projects_path(self.ctx.namespace, project["metadata"]["name"]), existing))

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        apps = (await self.ctx.kube.get(apps_path(self.ctx.namespace))).get("items", [])
        using = [a for a in apps if (a.get("spec", {}).get("project") or "default") == name]
        if using:
            raise grpc_error("InvalidArgument", f"project is referenced by {len(using)} applications")
        try:
            await self.ctx.kube.request("DELETE", projects_path(self.ctx.namespace, name))
        except KubeError as err:
            raise kube_error(err) from None
        return answer({})
