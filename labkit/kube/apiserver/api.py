"""The HTTP surface of the API server: paths, verbs, content negotiation, lists, tables and watch."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import yaml
from aiohttp import web
from multidict import CIMultiDict

from ...core.errors import ApiError
from ...core.http import json_response
from ..controllers.disruption import check_eviction
from . import csr, discovery, negotiation, openapi, patch, protobuf, reviews
from .access import CALLER, Access
from .metrics import RequestMetrics
from .objects import Objects, WriteOptions
from .rbac import request_attributes
from .resources import REVIEWS, Registry, ResourceType
from .scale import scale_of
from .selectors import field_matcher, label_matcher
from .status import bad_request, gone, method_not_allowed, not_found
from .store import Event, Store, Watcher
from .tables import to_table
from .tokenrequest import token_request

Obj = dict[str, Any]
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
HEALTH_CHECKS = ("ping", "log", "etcd", "informer-sync", "poststarthook/start-apiextensions-controllers",
                 "poststarthook/crd-informer-synced", "shutdown")
BOOKMARK_EVERY = 5.0  # seconds between watch bookmarks when the client allows them


@dataclass
class Target:
    rt: ResourceType
    namespace: str
    name: str
    sub: str
    watch: bool = False  # a /watch/ path


def _not_served(path: str) -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}
                    if path else {})


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


class KubeApi:
    """Routes every request of one cluster; three listeners share one instance."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = Registry()
        self.objects = Objects(store, self.registry)
        self.log_reader: Any = None  # set by the kubelet: async (pod, container, query) -> str
        self.streams: Any = None  # set by the kube component: streaming.PodStreams (exec, attach, portforward)
        self.metrics: Any = None  # set by the kubelet: (plural, namespace) -> list of metrics objects
        self.access = Access(store)  # who a request acts as, and RBAC on every request
        self.request_metrics = RequestMetrics()  # /metrics: apiserver_request_total, ..._duration_seconds

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.request_metrics.middleware)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)

    # -- routing ------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)
        path = request.path.rstrip("/") or "/"
        if path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return self._health(request, path)
        if path == "/metrics" and request.method == "GET":
            return self.request_metrics.response()
        if path.startswith("/openapi"):
            return await self._openapi(request, path)
        streaming = _bool(request, "watch") or "/watch/" in path
        fmt = negotiation.response_format(request, streaming)
        response = await self._route(request, path)
        return negotiation.as_yaml(response) if fmt == negotiation.YAML else response

    def _authorize(self, request: web.Request) -> None:
        """Who the request acts as (impersonation included), and RBAC on what it asks, before anything else."""
        user = request[CALLER] = self.access.caller(request)
        a = request_attributes(user, request.method, request.path, request.query)
        self.access.require(a)
        if a.resource == "pods" and a.subresource in ("exec", "attach", "portforward") and a.verb == "get":
            self.access.require(replace(a, verb="create"))  # a WebSocket upgrade also needs create, as 1.31+

    async def _route(self, request: web.Request, path: str) -> web.StreamResponse:
        if path == "/api":
            return json_response(discovery.api_versions(request.host))
        if path == "/apis":
            return json_response(discovery.api_group_list(self.registry.group_versions()))
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                versions = self.registry.group_versions().get(parts[1])
                if not versions:
                    raise _not_served(path)
                return json_response(discovery.api_group(parts[1], versions))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_served(path)
        if not rest:
            resources = [r for r in self.registry.all() if r.group == group and r.version == version]
            if not resources:
                raise _not_served(path)
            gv = f"{group}/{version}" if group else version
            return json_response(discovery.resource_list(gv, resources))
        return await self._resource(request, group, version, rest)

    def _health(self, request: web.Request, path: str) -> web.Response:
        """/version, and /healthz /livez /readyz with their named checks and ``?verbose``."""
        if path == "/version":
            return json_response(discovery.SERVER_VERSION)
        endpoint, _, check = path.strip("/").partition("/")
        if check and check not in HEALTH_CHECKS:
            raise _not_served(path)
        if "verbose" not in request.query or check:
            return web.Response(text="ok")
        lines = [f"[+]{c} ok" for c in HEALTH_CHECKS] + [f"{endpoint} check passed"]
        return web.Response(text="\n".join(lines) + "\n")

    async def _openapi(self, request: web.Request, path: str) -> web.Response:
        if path.startswith("/openapi/v3"):
            crds = self.registry.crds()
            sub = path.removeprefix("/openapi/v3").strip("/")
            if not sub:
                return json_response(openapi.v3_index(crds))
            body = openapi.v3_document_json(sub, crds)
            if body is not None:
                return web.Response(body=body, content_type="application/json")
        raise _not_served(path)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        ns, watch = "", rest[0] == "watch"  # the deprecated /watch/ paths
        if watch:
            rest = rest[1:]
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _not_served("/".join(rest))
        rt = self.registry.find(group, version, rest[0])
        if rt is None:
            raise _not_served("/".join(rest))
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in rt.subresources:
            raise _not_served(sub)
        if (rt.namespaced and name and not ns) or (ns and not rt.namespaced) or (watch and sub):
            raise _not_served(name)
        return Target(rt, ns, name, sub, watch)

    async def _resource(self, request: web.Request, group: str, version: str,
                        rest: list[str]) -> web.StreamResponse:
        t = self._target(group, version, rest)
        m = request.method
        if t.rt.group == "metrics.k8s.io":
            return self._metrics(request, t)
        if t.rt in REVIEWS:
            return await self._review(request, t)
        if t.watch or (not t.name and m == "GET" and _bool(request, "watch")):
            if m != "GET":
                raise method_not_allowed()
            return await self._watch(request, t)
        if not t.name:
            if m == "GET":
                return await self._list(request, t)
            if t.rt.namespaced and not t.namespace:  # all-namespaces paths only list and watch
                raise method_not_allowed()
            if m == "POST":
                return await self._create(request, t)
            if m == "DELETE":
                return await self._delete_collection(request, t)
            raise method_not_allowed()
        if t.sub == "log":
            return await self._log(request, t)
        if t.sub in ("exec", "attach", "portforward"):
            if self.streams is None:
                raise ApiError(503, "ServiceUnavailable", f"pods/{t.sub} needs the kubelets, which are not running")
            return await self.streams.serve(request, self.objects.get(t.rt, t.namespace, t.name), t.sub)
        if t.sub == "scale":
            return await self._scale(request, t)
        if t.sub == "token":
            if m != "POST":
                raise method_not_allowed()
            body = await self._body(request)
            return json_response(token_request(self.objects, t.rt, t.namespace, t.name, body), 201)
        if t.sub == "approval" and m in ("PUT", "PATCH"):
            return await self._approval(request, t)
        if t.sub in ("binding", "eviction"):
            return await self._pod_action(request, t)
        if m == "GET":
            obj = self.objects.get(t.rt, t.namespace, t.name)
            return self._object(request, t.rt, obj)
        if m == "PUT":
            body = await self._body(request)
            self._admit(request, t, body)
            with _decoding(t.rt, body):
                obj, warnings = self.objects.update(t.rt, t.namespace, t.name, body, self._opts(request), t.sub)
            return self._object(request, t.rt, obj, warnings=warnings)
        if m == "PATCH":
            return await self._patch(request, t)
        if m == "DELETE":
            options, dry = await self._delete_options(request)
            obj = self.objects.delete(t.rt, t.namespace, t.name, options, dry)
            if obj["metadata"].get("deletionTimestamp") or t.rt.key == "/pods":
                return self._object(request, t.rt, obj)  # still there (finalizers, grace), or pods
            details = {"name": t.name, "kind": t.rt.plural, "uid": obj["metadata"].get("uid", "")}
            if t.rt.group:
                details["group"] = t.rt.group
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": details})
        raise method_not_allowed()

    async def _delete_options(self, request: web.Request) -> tuple[Obj, bool]:
        """DeleteOptions from the body and the query; dryRun may come in either."""
        options = await self._body(request, optional=True) or {}
        if not isinstance(options, dict):
            raise bad_request("the body of the request was not a DeleteOptions object")
        for name in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
            if name in request.query:
                value = request.query[name]
                options[name] = int(value) if name == "gracePeriodSeconds" else (
                    value.lower() in ("1", "true") if name == "orphanDependents" else value)
        if options.get("orphanDependents") is not None and "propagationPolicy" not in options:
            options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                           f'Unsupported value: "{policy}": supported values: "Foreground", '
                                           '"Background", "Orphan", "nil"')
        body_dry = options.get("dryRun") or []
        for v in body_dry:
            if v != "All":
                raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return options, self._dry_run(request) or bool(body_dry)

    # -- helpers ------------------------------------------------------------
    async def _body(self, request: web.Request, optional: bool = False) -> Any:
        raw = await request.read()
        if not raw:
            if optional:
                return None
            raise bad_request("the body of the request was empty")
        if request.content_type == protobuf.CONTENT_TYPE:
            return protobuf.decode(raw)
        try:
            if "yaml" in request.content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc

    def _dry_run(self, request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(values)

    def _opts(self, request: web.Request) -> WriteOptions:
        validation = request.query.get("fieldValidation", "Strict" if "fieldValidation" in request.query
                                       else "Warn")
        if validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f"fieldValidation: Unsupported value: {validation!r}: supported values: "
                              '"Ignore", "Warn", "Strict"')
        return WriteOptions(self._dry_run(request), _manager(request), validation)

    def _object(self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        headers = CIMultiDict(("Warning", _warning(w)) for w in warnings) if warnings else None
        if wants_table(request):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(to_table(rt, [obj], meta, request.query.get("includeObject", "Metadata")),
                                 status, headers)
        return json_response(obj, status, headers)

    # -- verbs --------------------------------------------------------------
    def _matching(self, request: web.Request, t: Target) -> list[Obj]:
        labels = label_matcher(request.query.get("labelSelector"))
        fields = field_matcher(request.query.get("fieldSelector"), t.rt.plural)
        return [self.objects.view(t.rt, o) for o in self.store.items(t.rt.key, t.namespace)
                if labels(o) and fields(o) and (not t.name or o["metadata"]["name"] == t.name)]

    async def _list(self, request: web.Request, t: Target) -> web.Response:
        items = self._matching(request, t)
        rv = self.store.rv
        meta: Obj = {"resourceVersion": str(rv)}
        token = request.query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
            except ValueError as exc:
                raise bad_request(f"continue key is not valid: {exc}") from exc
            start = state["start"]
            items = [o for o in items if _sort_key(o) > tuple(start)]
            meta["resourceVersion"] = str(state["rv"])
        limit = int(request.query.get("limit", "0") or 0)
        if limit and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"rv": int(meta["resourceVersion"]), "start": list(_sort_key(items[-1]))}).encode()).decode()
            meta["remainingItemCount"] = rest
        if wants_table(request):
            return json_response(to_table(t.rt, items, meta, request.query.get("includeObject", "Metadata")))
        return json_response({"kind": f"{t.rt.kind}List", "apiVersion": t.rt.group_version,
                              "metadata": meta, "items": items})

    def _admit(self, request: web.Request, t: Target, obj: Any, creating: bool = False) -> None:
        """What the registries check about the caller on a write: RBAC escalation, a CSR's requester."""
        user = request[CALLER]
        self.access.check_rbac_write(user, t.rt, t.namespace, obj, t.name)
        if creating and t.rt.key == csr.KEY:
            csr.on_create(t.rt, obj, user)
        elif t.sub == "status" and t.rt.key == csr.KEY:
            csr.check_signing(t.rt, self.objects.get(t.rt, "", t.name), obj, user, self.access.authorizer)

    async def _approval(self, request: web.Request, t: Target) -> web.Response:
        """PUT (or PATCH) certificatesigningrequests/<name>/approval: only the conditions change."""
        old = self.objects.get(t.rt, "", t.name)
        body = await self._body(request)
        if request.method == "PATCH":
            body = patch.json_patch(old, body) if request.content_type == patch.JSON_PATCH else \
                patch.merge_patch(old, body)
        new = csr.approval_update(t.rt, old, body, request[CALLER], self.access.authorizer)
        obj, warnings = self.objects.update(t.rt, "", t.name, new, self._opts(request), "status")
        return self._object(request, t.rt, obj, warnings=warnings)

    async def _create(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        self._admit(request, t, body, creating=True)
        with _decoding(t.rt, body):
            obj, warnings = self.objects.create(t.rt, t.namespace, body, self._opts(request))
        return self._object(request, t.rt, obj, 201, warnings)

    async def _patch(self, request: web.Request, t: Target) -> web.Response:
        ctype = request.content_type
        if ctype not in patch.PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types "
                           f"include: {', '.join(patch.PATCH_TYPES)}")
        body = await self._body(request)
        opts = self._opts(request)
        rt = t.rt
        current = self.store.get(rt.key, t.namespace, t.name)
        if current is not None:
            current = self.objects.view(rt, current)  # a patch applies to the object in the request's version
        if ctype == patch.APPLY:
            if not request.query.get("fieldManager"):
                raise bad_request("PATCH requests with the apply content type require a fieldManager")
            new = patch.apply(current, body, opts.field_manager, _bool(request, "force"), rt.group_version,
                              rt.kind, self.registry.crds())
            opts = replace(opts, field_manager="")  # the apply recorded its own (Apply) managedFields
            if current is None:
                self._admit(request, t, new, creating=True)
                obj, warnings = self.objects.create(rt, t.namespace, new, opts)
                return self._object(request, rt, obj, 201, warnings)
        else:
            if current is None:
                raise not_found(rt, t.name)
            if ctype == patch.JSON_PATCH:
                new = patch.json_patch(current, body)
            elif ctype == patch.MERGE_PATCH:
                new = patch.merge_patch(current, body)
            else:
                new = patch.strategic(current, body, rt.group_version, rt.kind, self.registry.crds(),
                                      custom=rt.crd is not None)
        if not (isinstance(body, dict) and body.get("metadata", {}).get("resourceVersion")):
            new.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        self._admit(request, t, new)
        obj, warnings = self.objects.update(rt, t.namespace, t.name, new, opts, t.sub)
        return self._object(request, rt, obj, warnings=warnings)

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        options, dry = await self._delete_options(request)
        items = self._matching(request, t)
        for o in items:
            self.objects.delete(t.rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], options, dry)
        return json_response({"kind": f"{t.rt.kind}List", "apiVersion": t.rt.group_version,
                              "metadata": {"resourceVersion": str(self.store.rv)}, "items": items})

    async def _scale(self, request: web.Request, t: Target) -> web.Response:
        obj = self.objects.get(t.rt, t.namespace, t.name)
        if request.method in ("PUT", "PATCH"):
            body = await self._body(request)
            scale = scale_of(obj)
            if request.method == "PUT":
                scale = body
            elif request.content_type == patch.JSON_PATCH:
                scale = patch.json_patch(scale, body)
            else:  # merge and strategic patches of a Scale are the same
                scale = patch.merge_patch(scale, body)
            want = (scale.get("spec") or {}).get("replicas")
            if not isinstance(want, int) or want < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: '
                                               f"Invalid value: {want}: must be greater than or equal to 0")
            new = {**obj, "spec": {**obj.get("spec", {}), "replicas": want}}
            obj, _ = self.objects.update(t.rt, t.namespace, t.name, new, self._opts(request), "scale")
        return json_response(scale_of(obj))

    async def _log(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self.objects.get(t.rt, t.namespace, t.name)
        if self.log_reader is None:
            container = request.query.get("container") or pod["spec"]["containers"][0]["name"]
            raise bad_request(f'container "{container}" in pod "{t.name}" is waiting to start: '
                              "ContainerCreating")
        return await self.log_reader(request, pod)

    async def _pod_action(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        pod = self.objects.get(t.rt, t.namespace, t.name)
        if t.sub == "binding":
            if pod["spec"].get("nodeName"):
                raise ApiError(409, "Conflict", f'pod {t.name} is already assigned to node '
                                                f'"{pod["spec"]["nodeName"]}"')
            new = {**pod, "spec": {**pod["spec"], "nodeName": body["target"]["name"]}}
            self.objects.update(t.rt, t.namespace, t.name, new, WriteOptions())
        else:  # eviction: the pod's PodDisruptionBudget must allow it
            options = body.get("deleteOptions") or {}
            dry_run = self._dry_run(request) or bool(options.get("dryRun"))
            check_eviction(self.objects, pod, dry_run)
            self.objects.delete(t.rt, t.namespace, t.name, options, dry_run)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)

    def _metrics(self, request: web.Request, t: Target) -> web.Response:
        """metrics.k8s.io (what metrics-server serves): usage measured by the kubelets."""
        if request.method != "GET" or _bool(request, "watch"):
            raise method_not_allowed()
        items = self.metrics(t.rt.plural, t.namespace) if self.metrics else []
        labels = label_matcher(request.query.get("labelSelector"))
        items = [i for i in items if labels(i)]
        if t.name:
            found = next((i for i in items if i["metadata"]["name"] == t.name), None)
            if found is None:
                raise not_found(t.rt, t.name)
            return json_response(found)
        return json_response({"kind": f"{t.rt.kind}List", "apiVersion": t.rt.group_version,
                              "metadata": {}, "items": items})

    async def _review(self, request: web.Request, t: Target) -> web.Response:
        """Access reviews and whoami, answered from the authorizer for the caller (reviews.py)."""
        if request.method != "POST" or t.name:
            raise method_not_allowed()
        body = await self._body(request)
        answer = reviews.review(t.rt, body, request[CALLER], self.access.authorizer, t.namespace)
        return json_response(answer, 201)

    # -- watch --------------------------------------------------------------
    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        labels = label_matcher(request.query.get("labelSelector"))
        fields = field_matcher(request.query.get("fieldSelector"), t.rt.plural)
        rv_param = request.query.get("resourceVersion", "")
        initial = _bool(request, "sendInitialEvents")
        bookmarks = _bool(request, "allowWatchBookmarks")
        if initial and request.query.get("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", "resourceVersionMatch: Forbidden: sendInitialEvents requires "
                                           "setting resourceVersionMatch to NotOlderThan")
        timeout = float(request.query.get("timeoutSeconds", "1800") or 1800)
        table = wants_table(request)
        watcher = Watcher(t.rt.key, t.namespace, lambda o: labels(o) and fields(o)
                          and (not t.name or o["metadata"]["name"] == t.name))
        self.store.subscribe(watcher)  # before reading history, so nothing falls between
        resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Transfer-Encoding": "chunked"})
        await resp.prepare(request)

        async def send(kind: str, obj: Obj) -> None:
            if table and kind != "BOOKMARK" and kind != "ERROR":
                obj = to_table(t.rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                               request.query.get("includeObject", "Metadata"))
            line = json.dumps({"type": kind, "object": obj}, separators=(",", ":"))
            await resp.write(line.encode() + b"\n")

        try:
            sent_rv = self.store.rv
            if rv_param in ("", "0") or initial:
                for o in self._matching(request, t):
                    await send("ADDED", o)
                if initial:
                    await send("BOOKMARK", self._bookmark(t.rt, sent_rv, initial_end=True))
            else:
                try:
                    start = int(rv_param)
                except ValueError as exc:
                    raise bad_request(f"invalid resource version: {rv_param!r}") from exc
                if start < self.store.oldest_watchable:
                    err = gone(f"too old resource version: {start} ({self.store.oldest_watchable})")
                    await send("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                         "status": "Failure", "message": err.message, "reason": err.reason,
                                         "code": 410})
                    return resp
                sent_rv = start
                for ev in self.store.since(t.rt.key, start):
                    if self._visible(ev, watcher):
                        await send(ev.type, self.objects.view(t.rt, ev.obj))
                    sent_rv = ev.rv
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), min(left, BOOKMARK_EVERY))
                except TimeoutError:
                    if bookmarks:
                        await send("BOOKMARK", self._bookmark(t.rt, self.store.rv))
                    continue
                if ev is None:
                    break
                if ev.rv <= sent_rv or not self._visible(ev, watcher):
                    continue
                sent_rv = ev.rv
                await send(ev.type, self.objects.view(t.rt, ev.obj))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        return resp

    def _visible(self, ev: Event, watcher: Watcher) -> bool:
        return watcher.wants(ev) and watcher.match(ev.obj)

    def _bookmark(self, rt: ResourceType, rv: int, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.group_version, "metadata": meta}


def _warning(text: str) -> str:
    """A Warning header value as the API server writes it: code, agent, quoted text."""
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def _decoding(rt: ResourceType, body: Any) -> Iterator[None]:
    """Strict decoding errors of a POST or PUT body, worded as the API server's decoder words them."""
    try:
        yield
    except ApiError as err:
        if err.status == 400 and err.message.startswith("strict decoding error") and isinstance(body, dict):
            kind = body.get("kind") or rt.kind
            version = str(body.get("apiVersion") or rt.group_version).rpartition("/")[2]
            err.message = f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {err.message}'
        raise


def _sort_key(o: Obj) -> tuple[str, str]:
    return o["metadata"].get("namespace", ""), o["metadata"]["name"]


def _manager(request: web.Request) -> str:
    """The request's field manager: ``fieldManager``, else its User-Agent up to the first ``/`` (``kubectl``), as
    the API server's ``managerOrUserAgent``."""
    return (request.query.get("fieldManager") or request.headers.get("User-Agent", "").split("/")[0])[:128]
