"""An Application's comparison (gitops-engine's CompareAppState): its target manifests at a revision (rendered
once per revision and kept), the live objects it tracks, each resource's sync and health status, and the
Application's sync status, health and conditions."""

from __future__ import annotations

import copy
import fnmatch
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import health as hl
from .diff import COMPARE_OPTIONS, TRACKING, DiffError, annotation_options, diff, owner_app, tracking_id
from .render import render, source_type
from .sources import SourceError

if TYPE_CHECKING:
    from .controller import Controller

IN_CLUSTER = ("https://kubernetes.default.svc", "in-cluster")
HOOK = "argocd.argoproj.io/hook"
WATCHED_KINDS = [("apps", "Deployment"), ("", "Service"), ("", "ConfigMap"), ("", "Secret"), ("apps", "StatefulSet"),
                 ("apps", "DaemonSet"), ("batch", "Job"), ("", "Pod"), ("networking.k8s.io", "Ingress"),
                 ("", "PersistentVolumeClaim"), ("", "ServiceAccount"), ("batch", "CronJob")]


@dataclass
class Comparison:
    revision: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    source_type: str = ""
    targets: list[dict[str, Any]] = field(default_factory=list)  # the resources (hooks apart), tracked
    hooks: list[dict[str, Any]] = field(default_factory=list)
    live: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)  # tracked live objects
    resources: list[dict[str, Any]] = field(default_factory=list)  # status.resources
    sync: str = "Unknown"
    health: dict[str, str] = field(default_factory=lambda: {"status": hl.UNKNOWN})
    conditions: list[dict[str, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return next((c["message"] for c in self.conditions if c["type"].endswith("Error")), "")


def key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (hl.group_of(obj), obj["kind"], meta.get("namespace", ""), meta["name"])


def hook_types(obj: dict[str, Any]) -> set[str]:
    return annotation_options(obj, HOOK)


def _glob(patterns: list[str], value: str) -> bool:
    return any(p == value or fnmatch.fnmatch(value, p) for p in patterns)


async def validate(ctl: Controller, app: dict[str, Any]) -> str:
    """InvalidSpecError's message ('' when the spec is valid for its project)."""
    spec = app.get("spec") or {}
    dest = spec.get("destination") or {}
    if dest.get("server", "") not in ("", IN_CLUSTER[0]) or dest.get("name", "") not in ("", IN_CLUSTER[1]):
        return ("application destination can't have both name and server defined" if dest.get("server")
                and dest.get("name") else "unable to find destination server: there are no clusters with this URL: "
                f"{dest.get('server') or dest.get('name')} (the labkit simulator has only the in-cluster destination)")
    if spec.get("sources"):
        return "multiple sources (spec.sources) are not supported by the labkit simulator; use spec.source"
    project_name = spec.get("project") or "default"
    project = await ctl.project(project_name)
    if project is None:
        return f"Application referencing project {project_name} which does not exist"
    pspec = project.get("spec") or {}
    repo = (spec.get("source") or {}).get("repoURL", "")
    if not _glob(pspec.get("sourceRepos") or [], repo):
        return f"application repo {repo} is not permitted in project '{project_name}'"
    ns = dest.get("namespace", "")
    if not any(_glob([d.get("namespace", "")], ns) and (_glob([d.get("server", "")], IN_CLUSTER[0])
                                                       or _glob([d.get("name", "")], IN_CLUSTER[1]))
               for d in pspec.get("destinations") or []):
        return (f"application destination server '{IN_CLUSTER[0]}' and namespace '{ns}' do not match any of the "
                f"allowed destinations in project '{project_name}'")
    return ""


async def targets(ctl: Controller, app: dict[str, Any], source: dict[str, Any], sha: str,
                  hard: bool = False) -> tuple[list[dict[str, Any]], str]:
    """The manifests of ``source`` at commit ``sha`` (kept per revision; ``hard`` renders again) and its type."""
    cache_key = json.dumps([source.get("repoURL"), sha, source.get("path"), source.get("directory"),
                            source.get("kustomize"), source.get("helm"), source.get("chart"),
                            source.get("plugin")], sort_keys=True)
    if hard:
        ctl.manifests.pop(cache_key, None)
    cached = ctl.manifests.get(cache_key)
    if cached is None:
        workdir = ctl.workdir / sha / str(abs(hash(cache_key)))
        tree = await ctl.git.checkout(source["repoURL"], sha, workdir)
        try:
            objs = await render(source, tree)
            kind = source_type(source, (tree / str(source.get("path") or ".")))
        finally:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        cached = ctl.manifests[cache_key] = (objs, kind)
        while len(ctl.manifests) > 256:
            ctl.manifests.pop(next(iter(ctl.manifests)))
    return copy.deepcopy(cached[0]), cached[1]


async def compare(ctl: Controller, app: dict[str, Any], revision: str | None = None,
                  source: dict[str, Any] | None = None, hard: bool = False, fresh: bool = False) -> Comparison:
    """Compare ``app`` with the cluster at ``revision`` of ``source`` (default: its spec's); ``fresh`` asks the Git
    server for the revision's commit again, ``hard`` also renders the manifests again."""
    name, spec = app["metadata"]["name"], app.get("spec") or {}
    source = source or spec.get("source") or {}
    dest_ns = (spec.get("destination") or {}).get("namespace", "")
    out = Comparison(source=source)
    invalid = await validate(ctl, app)
    if invalid:
        out.conditions.append({"type": "InvalidSpecError", "message": invalid})
        return out
    try:
        out.revision = await ctl.git.resolve(source["repoURL"], revision or source.get("targetRevision", "HEAD"),
                                             fresh=hard or fresh)
        objs, out.source_type = await targets(ctl, app, source, out.revision, hard)
    except SourceError as err:
        out.conditions.append({"type": "ComparisonError", "message": "Failed to load target state: failed to generate "
                               f"manifest for source 1 of 1: rpc error: code = Unknown desc = {err}"})
        return out
    ignore = spec.get("ignoreDifferences") or []
    kinds = set(WATCHED_KINDS) | {(r.get("group", ""), r["kind"]) for r in (app.get("status") or {}).get(
        "resources") or []}
    for obj in objs:
        kinds.add((hl.group_of(obj), obj["kind"]))
        types = hook_types(obj)
        if "Skip" in types:
            continue
        res = await ctl.cluster.resource(hl.group_of(obj), obj["kind"])
        meta = obj.setdefault("metadata", {})
        if res is not None and res.namespaced and not meta.get("namespace"):
            meta["namespace"] = dest_ns
        elif res is not None and not res.namespaced:
            meta.pop("namespace", None)
        if res is None:
            out.conditions.append({"type": "ComparisonError", "message": (
                f"The Kubernetes API could not find {hl.group_of(obj)}/{obj['kind']} for requested resource "
                f"{meta.get('namespace', '')}/{meta.get('name', '')}. Make sure the \"{obj['kind']}\" CRD is "
                "installed on the destination cluster.")})
        (out.hooks if types else out.targets).append(obj)
        if not types:
            meta.setdefault("annotations", {})[TRACKING] = tracking_id(name, obj)
    live_by_key: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for group, kind in kinds:
        res = await ctl.cluster.resource(group, kind)
        if res is None:
            continue
        inf = await ctl.cluster.informer(res)
        for obj in list(inf.objects.values()):
            if owner_app(obj) == name and not obj["metadata"].get("ownerReferences") and \
                    obj["metadata"]["annotations"][TRACKING] == tracking_id(name, obj):
                live_by_key[key(obj)] = obj
        ctl.watch_targets(name, [key(t) for t in out.targets if (hl.group_of(t), t["kind"]) == (group, kind)])
    resource_healths: list[str] = []
    out_of_sync = False
    images: set[str] = set()
    for obj in out.targets:
        k = key(obj)
        res = await ctl.cluster.resource(k[0], k[1])
        live = None
        if res is not None:
            live = (await ctl.cluster.informer(res)).objects.get((k[2], k[3]))
        if live is not None:
            out.live[k] = live
        try:
            changed = diff(obj, live, ignore)
        except DiffError as err:
            out.conditions.append({"type": "ComparisonError", "message": str(err)})
            changed = []
        health = hl.resource_health(live) if live is not None else {"status": hl.MISSING}
        entry = _entry(obj, res.version if res else "", "OutOfSync" if changed else "Synced", health)
        out.resources.append(entry)
        out_of_sync |= bool(changed)
        if health:
            resource_healths.append(health["status"])
        images |= _images(live or obj)
    for k, live in live_by_key.items():
        if k in out.live or any(key(t) == k for t in out.targets):
            continue
        out.live[k] = live
        extraneous_ok = "IgnoreExtraneous" in annotation_options(live, COMPARE_OPTIONS)
        entry = _entry(live, live["apiVersion"].rsplit("/", 1)[-1], "OutOfSync", hl.resource_health(live))
        entry["requiresPruning"] = True
        out.resources.append(entry)
        out_of_sync |= not extraneous_ok
    out.resources.sort(key=lambda r: (r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"]))
    out.images = sorted(images)
    if any(c["type"] == "ComparisonError" for c in out.conditions):
        out.sync = "Unknown"
    else:
        out.sync = "OutOfSync" if out_of_sync else "Synced"
    out.health = {"status": hl.worst(resource_healths)}
    return out


def _entry(obj: dict[str, Any], version: str, status: str, health: dict[str, str] | None) -> dict[str, Any]:
    meta = obj["metadata"]
    entry: dict[str, Any] = {"version": version, "kind": obj["kind"], "name": meta["name"], "status": status}
    if hl.group_of(obj):
        entry["group"] = hl.group_of(obj)
    if meta.get("namespace"):
        entry["namespace"] = meta["namespace"]
    if health:
        entry["health"] = health
    return entry


def _images(obj: dict[str, Any]) -> set[str]:
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or (spec.get("jobTemplate") or {}).get("spec", {}).get(
        "template", {}).get("spec") or (spec if obj.get("kind") == "Pod" else {})
    return {c["image"] for c in (pod.get("containers") or []) + (pod.get("initContainers") or []) if c.get("image")}
