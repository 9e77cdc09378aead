"""What every route of the API server shares: the Kubernetes API, Argo CD's namespace, the controller (for what
only its cache knows) and how an Application is read and written, as Argo CD's API server does it."""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import USER, json_response
from .errors import grpc_error, permission_denied
from .kubeapi import GROUP, VERSION, KubeApi, KubeError, apps_path, core_path

REFRESH = "argocd.argoproj.io/refresh"
REFRESH_TIMESTAMP = "argocd.argoproj.io/refresh-timestamp"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def automated(app: dict[str, Any]) -> bool:
    """Automated sync is on: ``syncPolicy.automated`` set and its ``enabled`` not false (unset means on)."""
    auto = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return auto is not None and auto.get("enabled", True) is not False


def sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app.get("spec") or {}
    return list(spec.get("sources") or ([spec["source"]] if spec.get("source") else []))


@dataclass
class ApiContext:
    kube: KubeApi
    namespace: str  # Argo CD's own namespace: its Applications, AppProjects, Secrets and ConfigMaps
    controller: Any = None  # the Application controller (resource_tree/managed_resources from its cache)
    refresh_timeout: float = 30.0

    def app_namespace(self, request: web.Request) -> str:
        """``appNamespace`` (only Argo CD's own namespace is enabled, as by default) or Argo CD's namespace."""
        ns = request.query.get("appNamespace") or self.namespace
        if ns != self.namespace:
            raise permission_denied()  # "app is not allowed in namespace": Argo CD answers as for a missing app
        return ns

    async def get_app(self, request: web.Request, name: str | None = None) -> dict[str, Any]:
        """The Application ``name`` (the route's), or 403 "permission denied" when it does not exist, as Argo CD
        answers (not to tell which applications exist); 404 when a ``project`` was given and it is not in it."""
        name = name or request.match_info["name"]
        project = request.query.get("project", "")
        try:
            app = await self.kube.get(apps_path(self.app_namespace(request), name))
        except KubeError as err:
            if err.status == 404:
                if project:
                    raise grpc_error("NotFound", f'applications.{GROUP} "{name}" not found') from None
                raise permission_denied() from None
            raise kube_error(err) from None
        if project and (app.get("spec", {}).get("project") or "default") != project:
            raise grpc_error("NotFound", f'applications.{GROUP} "{name}" not found')
        return typed(app)

    async def refresh(self, app: dict[str, Any], hard: bool) -> dict[str, Any]:
        """Ask the controller for a refresh (the ``argocd.argoproj.io/refresh`` annotation) and wait until it has
        taken it (the annotation gone), as ``argo.RefreshApp`` and the API server's wait do."""
        meta = app["metadata"]
        path = apps_path(meta["namespace"], meta["name"])
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await self.kube.merge_patch(path, {"metadata": {"annotations": {
            REFRESH: "hard" if hard else "normal", REFRESH_TIMESTAMP: stamp}}})
        deadline = asyncio.get_running_loop().time() + self.refresh_timeout
        while asyncio.get_running_loop().time() < deadline:
            current = await self.kube.get(path)
            if REFRESH not in (current["metadata"].get("annotations") or {}):
                return typed(current)
            await asyncio.sleep(0.1)
        return typed(await self.kube.get(path))

    async def set_operation(self, app: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
        """Write ``operation`` on the Application for the controller (``argo.SetAppOperation``): refused while
        another operation is there; the resourceVersion guards against a race with the controller."""
        meta = app["metadata"]
        path = apps_path(meta["namespace"], meta["name"])
        for _ in range(10):
            if app.get("operation"):
                raise grpc_error("FailedPrecondition",
                                 "error setting app operation: another operation is already in progress")
            try:
                return typed(await self.kube.merge_patch(path, {
                    "metadata": {"resourceVersion": app["metadata"]["resourceVersion"]}, "operation": operation}))
            except KubeError as err:
                if err.status != 409:
                    raise kube_error(err) from None
            app = await self.kube.get(path)
        raise grpc_error("Internal", "Failed to set application operation. Too many conflicts")

    async def event(self, app: dict[str, Any], reason: str, message: str, user: str = "") -> None:
        """A Kubernetes Event on the Application, as the API server logs one (``logAppEvent``)."""
        meta = app["metadata"]
        stamp = now()
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid", ""),
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": f"{user} {message}".strip(), "type": "Normal",
            "source": {"component": "argocd-server"}, "reportingComponent": "argocd-server",
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        await self.kube.request("POST", core_path(meta["namespace"], "events"), event)

    async def from_controller(self, method: str, app: dict[str, Any]) -> Any:
        """What the controller's cache answers for ``app`` (``resource_tree``, ``managed_resources``)."""
        call = getattr(self.controller, method, None)
        if call is None:
            return None
        if inspect.iscoroutinefunction(call):
            return await call(app)
        return await asyncio.to_thread(call, app)


def user_of(request: web.Request) -> str:
    return str(request.get(USER) or "")


def typed(app: dict[str, Any]) -> dict[str, Any]:
    """An Application with its ``apiVersion``/``kind`` (list items come without them)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application", **app}


def kube_error(err: KubeError) -> ApiError:
    """A Kubernetes API refusal as Argo CD passes it on (its gRPC code from the HTTP status)."""
    code = {400: "InvalidArgument", 404: "NotFound", 409: "AlreadyExists", 422: "InvalidArgument",
            403: "PermissionDenied"}.get(err.status, "Unknown")
    return grpc_error(code, str(err))


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (InvalidArgument otherwise)."""
    if not request.can_read_body:
        return {}
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError as err:
        raise grpc_error("InvalidArgument", f"invalid character in request body: {err}") from None
    if not isinstance(data, dict):
        raise grpc_error("InvalidArgument", "request body must be a JSON object")
    return data


def answer(data: Any) -> web.Response:
    return json_response(data)
