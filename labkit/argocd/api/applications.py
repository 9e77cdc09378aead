"""``/api/v1/applications``: Argo CD's ApplicationService over the Application custom resources. Like Argo CD's
API server it only reads and writes the resources: a sync or a rollback is an ``operation`` written on the
Application, a refresh is the ``argocd.argoproj.io/refresh`` annotation; the controller does the work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .context import ApiContext, answer, automated, body, kube_error, sources, typed, user_of
from .errors import grpc_error, not_supported
from .kubeapi import GROUP, KubeError, apps_path, core_path, projects_path
from .urls import same_repo

PREFIX = "/api/v1/applications"
FINALIZER = "resources-finalizer.argocd.argoproj.io"


class Applications:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get(PREFIX, self.list)
        r.add_post(PREFIX, self.create)
        r.add_get(PREFIX + "/{name}", self.get)
        r.add_put(PREFIX + "/{name}", self.update)
        r.add_put(PREFIX + "/{name}/spec", self.update_spec)
        r.add_delete(PREFIX + "/{name}", self.delete)
        r.add_post(PREFIX + "/{name}/sync", self.sync)
        r.add_post(PREFIX + "/{name}/rollback", self.rollback)
        r.add_get(PREFIX + "/{name}/resource-tree", self.resource_tree)
        r.add_get(PREFIX + "/{name}/managed-resources", self.managed_resources)
        r.add_delete(PREFIX + "/{name}/operation", self.terminate_operation)
        r.add_get(PREFIX + "/{name}/events", self.events)

    async def list(self, request: web.Request) -> web.Response:
        q = request.query
        params = {"labelSelector": q["selector"]} if q.get("selector") else {}
        try:
            listed = await self.ctx.kube.get(apps_path(self.ctx.app_namespace(request)), **params)
        except KubeError as err:
            raise grpc_error("Unknown", f"error parsing the selector: {err}") from None
        items = [typed(a) for a in listed.get("items", [])]
        if "name" in q:
            items = [a for a in items if a["metadata"]["name"] == q["name"]][:1]
        projects = q.getall("projects", []) + q.getall("project", [])
        if projects:
            items = [a for a in items if (a.get("spec", {}).get("project") or "default") in projects]
        if q.get("repo"):
            items = [a for a in items if any(same_repo(s.get("repoURL", ""), q["repo"]) for s in sources(a))]
        items.sort(key=lambda a: a["metadata"]["name"])
        return answer({"metadata": {"resourceVersion": listed.get("metadata", {}).get("resourceVersion", "")},
                       "items": items})

    async def get(self, request: web.Request) -> web.Response:
        app = await self.ctx.get_app(request)
        refresh = request.query.get("refresh")
        if refresh:
            if refresh not in ("normal", "hard"):
                raise grpc_error("InvalidArgument", f"unknown refresh type {refresh!r}: normal or hard")
            app = await self.ctx.refresh(app, refresh == "hard")
        return answer(app)

    async def _check_project(self, app: dict[str, Any]) -> None:
        project = (app.get("spec") or {}).get("project") or ""
        vague = grpc_error("InvalidArgument",
                           f'app is not allowed in project "{project}", or the project does not exist')
        if not project:
            raise grpc_error("InvalidArgument", "application spec for "
                             f"{app.get('metadata', {}).get('name', '')} is invalid: InvalidSpecError: "
                             "spec.project is required")
        try:
            await self.ctx.kube.get(projects_path(self.ctx.namespace, project))
        except KubeError as err:
            if err.status == 404:
                raise vague from None
            raise kube_error(err) from None
        if self.ctx.controller is not None:  # the project's rules, as the controller checks them
            from ..compare import validate

            problem = await validate(self.ctx.controller, app)
            if problem:
                name = (app.get("metadata") or {}).get("name", "")
                raise grpc_error("InvalidArgument", f"application spec for {name} is invalid: InvalidSpecError: "
                                 f"{problem}")

    async def create(self, request: web.Request) -> web.Response:
        app = await body(request)
        meta = app.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise grpc_error("InvalidArgument", "application name is required")
        ns = meta.setdefault("namespace", self.ctx.namespace)
        if ns != self.ctx.namespace:
            raise grpc_error("InvalidArgument", f"namespace '{ns}' is not permitted")
        if app.get("operation"):
            raise grpc_error("InvalidArgument", "application operation is not allowed on create")
        await self._check_project(app)
        app.update(apiVersion=f"{GROUP}/v1alpha1", kind="Application")
        app.pop("status", None)
        upsert = request.query.get("upsert", "false") == "true"
        try:
            created = await self.ctx.kube.request("POST", apps_path(ns), app)
        except KubeError as err:
            if err.status != 409:
                raise kube_error(err) from None
            existing = await self.ctx.kube.get(apps_path(ns, name))
            if existing.get("spec") == app.get("spec") and _labels_match(existing, app):
                return answer(typed(existing))
            if not upsert:
                raise grpc_error("InvalidArgument",
                                 "existing application spec is different, use upsert flag to force update") from None
            created = await self._change(ns, name, lambda current: _take(current, app))
        else:
            await self.ctx.event(created, "ResourceCreated", "created application", user_of(request))
        return answer(typed(created))

    async def _change(self, namespace: str, name: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read the Application, ``mutate`` it, write it back; again on a conflict with the controller's writes,
        as Argo CD's API server retries its updates."""
        path = apps_path(namespace, name)
        for _ in range(10):
            try:
                current = await self.ctx.kube.get(path)
                mutate(current)
                return await self.ctx.kube.request("PUT", path, current)
            except KubeError as err:
                if err.status != 409:
                    raise kube_error(err) from None
        raise grpc_error("Internal", "Failed to update application. Too many conflicts")

    async def update(self, request: web.Request) -> web.Response:
        new = await body(request)
        current = await self.ctx.get_app(request)
        await self._check_project(new)
        meta = current["metadata"]
        updated = await self._change(meta["namespace"], meta["name"], lambda app: _take(app, new))
        await self.ctx.event(updated, "ResourceUpdated", "updated application", user_of(request))
        return answer(typed(updated))

    async def update_spec(self, request: web.Request) -> web.Response:
        spec = await body(request)
        current = await self.ctx.get_app(request)
        current["spec"] = spec
        await self._check_project(current)
        meta = current["metadata"]
        updated = await self._change(meta["namespace"], meta["name"], lambda app: app.update(spec=spec))
        await self.ctx.event(updated, "ResourceUpdated", "updated application spec", user_of(request))
        return answer(updated["spec"])

    async def delete(self, request: web.Request) -> web.Response:
        """Cascading (the default) through the resources finalizer, which the controller honours by deleting the
        application's resources first; ``cascade=false`` leaves them."""
        app = await self.ctx.get_app(request)
        q = request.query
        cascade = q.get("cascade", "true") != "false"
        policy = q.get("propagationPolicy", "")
        if policy and not cascade:
            raise grpc_error("InvalidArgument", "cannot set propagation policy when cascading is disabled")
        if policy not in ("", "foreground", "background"):
            raise grpc_error("InvalidArgument", f"invalid propagation policy: {policy}")
        finalizers = [f for f in app["metadata"].get("finalizers") or [] if not f.startswith(FINALIZER)]
        if cascade:
            finalizers.append(FINALIZER + ("/background" if policy == "background" else ""))
        meta = app["metadata"]
        path = apps_path(meta["namespace"], meta["name"])
        try:
            await self.ctx.kube.merge_patch(path, {"metadata": {"finalizers": finalizers}})
            await self.ctx.kube.request("DELETE", path)
        except KubeError as err:
            raise kube_error(err) from None
        await self.ctx.event(app, "ResourceDeleted", "deleted application", user_of(request))
        return answer({})

    async def sync(self, request: web.Request) -> web.Response:
        req = await body(request)
        app = await self.ctx.get_app(request)
        if app["metadata"].get("deletionTimestamp"):
            raise grpc_error("FailedPrecondition", "application is deleting")
        if req.get("manifests"):
            raise not_supported("sync with local manifests")
        source = sources(app)[0] if sources(app) else {}
        target = source.get("targetRevision") or "HEAD"
        revision = req.get("revision") or ""
        if revision and revision != target and automated(app) and not req.get("dryRun"):
            current = source.get("targetRevision", "")
            raise grpc_error("FailedPrecondition", f"Cannot sync to {revision}: auto-sync currently set to {current}")
        policy = (app.get("spec") or {}).get("syncPolicy") or {}
        options = (req.get("syncOptions") or {}).get("items")
        sync: dict[str, Any] = {
            "revision": revision or target, "prune": bool(req.get("prune")), "dryRun": bool(req.get("dryRun")),
            "syncOptions": options if options is not None else policy.get("syncOptions") or [],
            "resources": [r for r in req.get("resources") or [] if r],
        }
        if len(sources(app)) == 1:
            sync["source"] = source
        if req.get("strategy"):
            sync["syncStrategy"] = req["strategy"]
        operation: dict[str, Any] = {"sync": {k: v for k, v in sync.items() if v not in ([], None)} | {
            "prune": sync["prune"], "dryRun": sync["dryRun"]}, "initiatedBy": {"username": user_of(request)}}
        retry = req.get("retryStrategy") or policy.get("retry")
        if retry:
            operation["retry"] = retry
        if req.get("infos"):
            operation["info"] = req["infos"]
        updated = await self.ctx.set_operation(app, operation)
        partial = "partial " if sync["resources"] else ""
        await self.ctx.event(updated, "OperationStarted", f"initiated {partial}sync to {sync['revision']}",
                             user_of(request))
        return answer(updated)

    async def rollback(self, request: web.Request) -> web.Response:
        req = await body(request)
        app = await self.ctx.get_app(request)
        if app["metadata"].get("deletionTimestamp"):
            raise grpc_error("FailedPrecondition", "application is deleting")
        if automated(app):
            raise grpc_error("FailedPrecondition", "rollback cannot be initiated when auto-sync is enabled")
        wanted = int(req.get("id") or 0)
        entry = next((h for h in (app.get("status") or {}).get("history") or [] if int(h.get("id", -1)) == wanted),
                     None)
        if entry is None:
            raise grpc_error("InvalidArgument", f"application {app['metadata']['namespace']}/"
                             f"{app['metadata']['name']} does not have deployment with id {wanted}")
        if not entry.get("source") and not entry.get("sources"):
            raise grpc_error("FailedPrecondition", "cannot rollback to revision deployed with Argo CD v0.11 or lower. "
                             "sync to revision instead.")
        sync: dict[str, Any] = {"revision": entry.get("revision", ""), "prune": bool(req.get("prune")),
                                "dryRun": bool(req.get("dryRun")), "syncStrategy": {"apply": {}},
                                "syncOptions": ((app.get("spec") or {}).get("syncPolicy") or {}).get("syncOptions")
                                or []}
        for key in ("source", "sources", "revisions"):
            if entry.get(key):
                sync[key] = entry[key]
        updated = await self.ctx.set_operation(app, {"sync": sync, "initiatedBy": {"username": user_of(request)}})
        await self.ctx.event(updated, "OperationStarted", f"initiated rollback to {wanted}", user_of(request))
        return answer(updated)

    async def resource_tree(self, request: web.Request) -> web.Response:
        """The managed resources and what they own, from the controller's cache (Argo CD's ApplicationTree)."""
        app = await self.ctx.get_app(request)
        tree = await self.ctx.from_controller("resource_tree", app)
        if tree is None:
            raise not_supported("resource-tree without the application controller's cache")
        return answer({"nodes": tree.get("nodes") or [], "hosts": tree.get("hosts") or []})

    async def managed_resources(self, request: web.Request) -> web.Response:
        app = await self.ctx.get_app(request)
        found = await self.ctx.from_controller("managed_resources", app)
        if found is None:
            raise not_supported("managed-resources without the application controller's cache")
        items = found.get("items", found) if isinstance(found, dict) else found
        q = request.query
        for key in ("namespace", "name", "version", "group", "kind"):
            if q.get(key):
                items = [i for i in items if i.get(key) == q[key]]
        return answer({"items": items})

    async def terminate_operation(self, request: web.Request) -> web.Response:
        app = await self.ctx.get_app(request)
        meta = app["metadata"]
        path = apps_path(meta["namespace"], meta["name"])
        for _ in range(10):
            if not app.get("operation") or not (app.get("status") or {}).get("operationState"):
                raise grpc_error("InvalidArgument", "Unable to terminate operation. No operation is in progress")
            try:
                await self.ctx.kube.merge_patch(path, {"metadata": {"resourceVersion": meta["resourceVersion"]},
                                                       "status": {"operationState": {"phase": "Terminating"}}})
            except KubeError as err:
                if err.status != 409:
                    raise kube_error(err) from None
                app = await self.ctx.kube.get(path)
                meta = app["metadata"]
                continue
            await self.ctx.event(app, "ResourceUpdated", "terminated running operation", user_of(request))
            return answer({})
        raise grpc_error("Internal", "Failed to terminate app. Too many conflicts")

    async def events(self, request: web.Request) -> web.Response:
        """The Application's events, or (``resourceName``/``resourceNamespace``/``resourceUID``) one of its
        resources' events."""
        app = await self.ctx.get_app(request)
        q = request.query
        if q.get("resourceName"):
            ns = q.get("resourceNamespace") or app["spec"].get("destination", {}).get("namespace") or "default"
            fields = {"involvedObject.name": q["resourceName"], "involvedObject.namespace": ns}
            if q.get("resourceUID"):
                fields["involvedObject.uid"] = q["resourceUID"]
        else:
            ns = app["metadata"]["namespace"]
            fields = {"involvedObject.name": app["metadata"]["name"], "involvedObject.namespace": ns,
                      "involvedObject.uid": app["metadata"].get("uid", "")}
        selector = ",".join(f"{k}={v}" for k, v in fields.items())
        try:
            listed = await self.ctx.kube.get(core_path(ns, "events"), fieldSelector=selector)
        except KubeError as err:
            raise kube_error(err) from None
        wanted = [e for e in listed.get("items", [])
                  if all(_field(e, k) == v for k, v in fields.items())]  # also where a field selector is ignored
        return answer({"metadata": listed.get("metadata", {}), "items": wanted})


def _field(obj: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        obj = (obj or {}).get(part)  # type: ignore[assignment]
    return obj


def _take(app: dict[str, Any], new: dict[str, Any]) -> None:
    """What an update changes: the spec, and labels, annotations and finalizers where the new one has them."""
    app["spec"] = new.get("spec")
    for key in ("labels", "annotations", "finalizers"):
        if key in (new.get("metadata") or {}):
            app["metadata"][key] = new["metadata"][key]


def _labels_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["metadata"].get("labels") or {}) == ((b.get("metadata") or {}).get("labels") or {})
