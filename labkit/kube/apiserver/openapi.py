"""OpenAPI v3 for the emulated API server: ``/openapi/v3`` and one document per group-version.

The schemas come from the ``kubernetes-validate`` package, which bundles the
Kubernetes 1.37 definitions as JSON Schema (descriptions, formats and the
``x-kubernetes-*`` patch and list extensions included). They are converted on
first use to the shape the real API server publishes (``#/components/schemas``
references wrapped in ``allOf``, single ``type`` strings) and cached; nothing is
loaded at import. Custom resources get their document from the CRD's
``openAPIV3Schema``, like the real apiextensions server builds it.

kubectl reads these documents for ``kubectl explain``, to build the strategic
merge patch of client-side ``kubectl apply`` (patch merge keys and strategies),
and to find out that the server validates fields itself: the PATCH operation of
a resource path carries ``x-kubernetes-group-version-kind`` and a
``fieldValidation`` query parameter.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .resources import BUILTINS, ResourceType

SCHEMA_VERSION = "v1.37.0-local"
_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Bump when the documents this module renders change shape, so clients drop cached copies.
_RENDER_REVISION = "1"

# Types kubernetes-validate rewrites as JSON Schema ``oneOf``; the real documents publish them as strings.
_CUSTOM_TYPES: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
                       "marshalling and unmarshalling, it produces or consumes the inner type.  This allows "
                       "you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string", "type": "string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number. It provides convenient "
                       "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
                       "accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
                       "<signedNumber><suffix>\n```",
        "type": "string"},
}

# Group-versions published beside the served resources (kinds referenced by subresources).
_EXTRA_GROUP_VERSIONS = {"autoscaling/v1": ("io.k8s.api.autoscaling.v1.Scale",)}

# ---------------------------------------------------------------------------------------------- source


def _schema_dir() -> Path:
    # find_spec locates the package without importing it (its import pulls in jsonschema: ~1 s).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is required for the Kubernetes schemas")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema" / SCHEMA_VERSION


@lru_cache(maxsize=1)
def definitions() -> dict[str, dict[str, Any]]:
    """The raw kubernetes-validate definitions (JSON Schema flavour, ``#/$defs/`` references)."""
    with open(_schema_dir() / "_definitions.json", encoding="utf-8") as f:
        return json.load(f)["$defs"]


@lru_cache(maxsize=1)
def kind_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) → definition name, from ``x-kubernetes-group-version-kind``."""
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        gvks = d.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1:  # meta kinds like DeleteOptions are registered in every group
            continue
        g = gvks[0]
        out[(g["group"], g["version"], g["kind"])] = name
    return out


def definition_name(api_version: str, kind: str) -> str | None:
    """The definition name of a built-in kind, e.g. ``io.k8s.api.apps.v1.Deployment``."""
    group, _, version = api_version.rpartition("/")
    return kind_index().get((group, version, kind))


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` in a raw definition schema (one level; definitions never chain refs)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    return definitions().get(ref.rsplit("/", 1)[-1], {})


# ------------------------------------------------------------------------------------ conversion


def _single_type(t: Any) -> str | None:
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if rest else None
    return t


def _convert(schema: dict[str, Any], top: bool = False) -> dict[str, Any]:
    """One raw JSON Schema node → the OpenAPI v3 shape the API server publishes."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            t = _single_type(value)
            if t:
                out["type"] = t
        elif key == "$ref":
            continue
        elif key == "properties":
            out["properties"] = {k: _convert(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value)
        elif key == "enum" and top is False and schema.get("type") in (["string", "null"], "string"):
            # kubernetes-validate pins apiVersion/kind with enums; the real documents do not.
            continue
        elif key == "required" and top and "x-kubernetes-group-version-kind" in schema:
            continue  # kubernetes-validate marks spec required on kinds; the API server does not
        else:
            out[key] = value
    ref = schema.get("$ref")
    if ref:
        target = _REF + ref.rsplit("/", 1)[-1]
        if len(out) == 0:
            return {"$ref": target}
        out["allOf"] = [{"$ref": target}]
    return out


@cache
def component(name: str) -> dict[str, Any]:
    """One converted definition (cached; treat as read-only)."""
    if name in _CUSTOM_TYPES:
        return _CUSTOM_TYPES[name]
    return _convert(definitions()[name], top=True)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF):]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def closure(roots: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The converted definitions reachable from ``roots``, sorted by name."""
    seen: dict[str, dict[str, Any]] = {}
    todo = [r for r in roots if r in definitions()]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = component(name)
        todo.extend(r for r in _refs(seen[name]) if r not in seen and r in definitions())
    return dict(sorted(seen.items()))


# ----------------------------------------------------------------------------------- operations

def _param(name: str, where: str, description: str, type_: str = "string", required: bool = False
           ) -> dict[str, Any]:
    p: dict[str, Any] = {"description": description, "in": where, "name": name,
                         "schema": {"type": type_, "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


@lru_cache(maxsize=1)
def _texts() -> dict[str, Any]:
    """Parameter and type-meta descriptions as the real documents word them (data/openapi_parameters.json)."""
    with open(Path(__file__).parent / "data" / "openapi_parameters.json", encoding="utf-8") as f:
        return json.load(f)


def _p(name: str) -> dict[str, Any]:
    spec = _texts()["parameters"][name]
    return _param(name, spec["in"], spec["description"], spec["type"], spec.get("required", False))


_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_BUILTIN_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                        "application/merge-patch+json", "application/strategic-merge-patch+json")
_CUSTOM_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json")


def _content(ref: str, types: Iterable[str]) -> dict[str, Any]:
    return {t: {"schema": {"$ref": _REF + ref}} for t in types}


def _responses(ref: str, *codes: str) -> dict[str, Any]:
    text = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {c: {"content": _content(ref, _RESPONSE_TYPES), "description": text[c]}
                           for c in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _op(action: str, verb_text: str, op_id: str, tag: str, gvk: dict[str, str], response: str,
        codes: tuple[str, ...], params: tuple[str, ...] = (), body: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"description": verb_text, "operationId": op_id}
    if params:
        op["parameters"] = [_p(p) for p in params]
    if body is not None:
        op["requestBody"] = {"content": body, "required": True}
    op["responses"] = _responses(response, *codes)
    op["tags"] = [tag]
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = gvk
    return op


class _Res:
    """What a path needs to know about one resource type."""

    def __init__(self, group: str, version: str, kind: str, plural: str, namespaced: bool, schema: str,
                 subresources: Iterable[str], custom: bool) -> None:
        self.group, self.version, self.kind, self.plural = group, version, kind, plural
        self.namespaced, self.schema, self.custom = namespaced, schema, custom
        self.subresources = tuple(subresources)

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def gvk(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "version": self.version}

    @property
    def op_suffix(self) -> tuple[str, str]:
        """(operation-id group part, tag) like ``AppsV1`` / ``apps_v1``."""
        gparts = self.group.replace(".k8s.io", "").replace("-", ".").split(".") if self.group else ["core"]
        camel = "".join(p[:1].upper() + p[1:] for p in gparts) + self.version[:1].upper() + self.version[1:]
        tag = "_".join(gparts) + "_" + self.version if self.group else "core_" + self.version
        return camel, tag


def _collection_path(r: _Res) -> tuple[str, dict[str, Any]]:
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    camel, tag = r.op_suffix
    scope = "Namespaced" if r.namespaced else ""
    item: dict[str, Any] = {
        "delete": _op("deletecollection", f"delete collection of {r.kind}",
                      f"deletecollection{camel}{scope}{r.kind}", tag, r.gvk, _META + "Status", ("200",),
                      ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector", "limit",
                       "propagationPolicy", "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                       "timeoutSeconds"),
                      _content(_META + "DeleteOptions", ("*/*",))),
        "get": _op("list", f"list or watch objects of kind {r.kind}", f"list{camel}{scope}{r.kind}", tag,
                   r.gvk, r.schema + "List", ("200",), _LIST_PARAMS),
        "parameters": [*([_p("namespace")] if r.namespaced else []), _p("pretty")],
        "post": _op("post", f"create a {r.kind}", f"create{camel}{scope}{r.kind}", tag, r.gvk, r.schema,
                    ("200", "201", "202"), _WRITE_PARAMS, _content(r.schema, ("*/*",))),
    }
    return f"{r.prefix}{ns}/{r.plural}", item


def _named_path(r: _Res, sub: str = "") -> tuple[str, dict[str, Any]]:
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    camel, tag = r.op_suffix
    scope = "Namespaced" if r.namespaced else ""
    title = {"": "", "status": "Status", "scale": "Scale"}[sub]
    of = {"": "the specified", "status": "status of the specified", "scale": "scale of the specified"}[sub]
    schema, gvk = r.schema, r.gvk
    if sub == "scale":
        schema = "io.k8s.api.autoscaling.v1.Scale"
        gvk = {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    patch_types = _CUSTOM_PATCH_TYPES if r.custom else _BUILTIN_PATCH_TYPES
    item: dict[str, Any] = {
        "get": _op("get", f"read {of} {r.kind}", f"read{camel}{scope}{r.kind}{title}", tag, gvk, schema,
                   ("200",)),
        "parameters": [
            _param("name", "path", f"name of the {r.kind if not sub else title}", required=True),
            *([_p("namespace")] if r.namespaced else []), _p("pretty")],
        "patch": _op("patch", f"partially update {of} {r.kind}", f"patch{camel}{scope}{r.kind}{title}", tag,
                     gvk, schema, ("200", "201"), (*_WRITE_PARAMS, "force"),
                     _content(_META + "Patch", patch_types)),
        "put": _op("put", f"replace {of} {r.kind}", f"replace{camel}{scope}{r.kind}{title}", tag, gvk, schema,
                   ("200", "201"), _WRITE_PARAMS, _content(schema, ("*/*",))),
    }
    if not sub:
        item["delete"] = _op("delete", f"delete a {r.kind}", f"delete{camel}{scope}{r.kind}", tag, gvk,
                             _META + "Status", ("200", "202"),
                             ("dryRun", "gracePeriodSeconds", "propagationPolicy"),
                             _content(_META + "DeleteOptions", ("*/*",)))
    suffix = f"/{sub}" if sub else ""
    return f"{r.prefix}{ns}/{r.plural}/{{name}}{suffix}", item


def _paths(resources: list[_Res]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in resources:
        for path, item in (_collection_path(r), _named_path(r),
                           *(_named_path(r, s) for s in r.subresources if s in ("status", "scale"))):
            paths[path] = item
    return dict(sorted(paths.items()))


def _document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "components": {"schemas": schemas,
                       "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication",
                                                           "in": "header", "name": "authorization",
                                                           "type": "apiKey"}}},
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{"BearerToken": []}],
    }


_META_ROOTS = (_META + "Status", _META + "DeleteOptions", _META + "Patch", _META + "WatchEvent")

# ------------------------------------------------------------------------------------ built-ins


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _builtin_resources() -> dict[str, list[ResourceType]]:
    out: dict[str, list[ResourceType]] = {}
    for rt in BUILTINS:
        out.setdefault(_gv_path(rt.group, rt.version), []).append(rt)
    return out


def _builtin_gv_paths() -> list[str]:
    extra = [_gv_path(*gv.split("/")) for gv in _EXTRA_GROUP_VERSIONS]
    return [*_builtin_resources(), *(p for p in extra if p not in _builtin_resources())]


@cache
def _builtin_document_json(path: str) -> bytes | None:
    rts = _builtin_resources().get(path, [])
    extra = next((v for k, v in _EXTRA_GROUP_VERSIONS.items() if _gv_path(*k.split("/")) == path), ())
    if not rts and not extra:
        return None
    resources = []
    for rt in rts:
        name = kind_index().get((rt.group, rt.version, rt.kind))
        if name:
            resources.append(_Res(rt.group, rt.version, rt.kind, rt.plural, rt.namespaced, name,
                                  rt.subresources, False))
    roots = [*(r.schema for r in resources), *(r.schema + "List" for r in resources), *extra, *_META_ROOTS]
    if any("scale" in r.subresources for r in resources):
        roots.append("io.k8s.api.autoscaling.v1.Scale")
    doc = _document(_paths(resources), closure(roots))
    return json.dumps(doc, separators=(",", ":")).encode()


@lru_cache(maxsize=1)
def _builtin_fingerprint() -> str:
    try:
        version = metadata.version("kubernetes-validate")
    except metadata.PackageNotFoundError:  # pragma: no cover - the package is a dependency
        version = "unknown"
    kinds = ",".join(f"{r.group_version}/{r.kind}/{r.subresources}" for r in BUILTINS)
    return f"{SCHEMA_VERSION}|{version}|{_RENDER_REVISION}|{kinds}"


def _hash(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest().upper()


# ------------------------------------------------------------------------------------ custom resources


def _reverse_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def _served_versions(crd: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(group, version, version entry) for every served version of a CRD."""
    spec = crd.get("spec", {})
    for v in spec.get("versions", []):
        if v.get("served", True):
            yield spec.get("group", ""), v.get("name", ""), v


def _crds_for(path: str, crds: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for crd in crds:
        for group, version, entry in _served_versions(crd):
            if _gv_path(group, version) == path:
                out.append((crd, entry))
    return sorted(out, key=lambda ce: ce[0].get("spec", {}).get("names", {}).get("kind", ""))


def custom_schema_name(group: str, version: str, kind: str) -> str:
    """``io.argoproj.v1alpha1.Application`` for argoproj.io/v1alpha1 Application."""
    return f"{_reverse_group(group)}.{version}.{kind}"


def _custom_schemas(group: str, version: str, kind: str, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name = custom_schema_name(group, version, kind)
    schema = copy.deepcopy(raw) if raw else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = schema.setdefault("properties", {})
    props.update(copy.deepcopy(_texts()["typeMeta"]))
    props["metadata"] = {"allOf": [{"$ref": _REF + _META + "ObjectMeta"}],
                         "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
                                        "contributors/devel/sig-architecture/api-conventions.md#metadata"}
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    listing = {
        "description": f"{kind}List is a list of {kind}",
        "properties": {**copy.deepcopy(_texts()["typeMeta"]),
                       "items": {"description": f"List of {kind.lower()}s. More info: "
                                                "https://git.k8s.io/community/contributors/devel/sig-architecture/"
                                                "api-conventions.md",
                                 "items": {"$ref": _REF + name}, "type": "array"},
                       "metadata": {"allOf": [{"$ref": _REF + _META + "ListMeta"}],
                                    "description": "Standard list metadata."}},
        "required": ["items"], "type": "object",
        "x-kubernetes-group-version-kind": [{"group": group, "kind": kind + "List", "version": version}],
    }
    return {name: schema, name + "List": listing}


def _custom_document(path: str, crds: list[dict[str, Any]]) -> dict[str, Any] | None:
    entries = _crds_for(path, crds)
    if not entries:
        return None
    resources, schemas = [], {}
    for crd, entry in entries:
        spec = crd["spec"]
        group, names, version = spec["group"], spec["names"], entry["name"]
        raw = (entry.get("schema") or {}).get("openAPIV3Schema") or {}
        schemas.update(_custom_schemas(group, version, names["kind"], raw))
        namespaced = spec.get("scope") == "Namespaced"
        resources.append(_Res(group, version, names["kind"], names["plural"], namespaced,
                              custom_schema_name(group, version, names["kind"]),
                              (entry.get("subresources") or {}).keys(), True))
    roots = [*_META_ROOTS, _META + "ObjectMeta", _META + "ListMeta"]
    if any("scale" in r.subresources for r in resources):
        roots.append("io.k8s.api.autoscaling.v1.Scale")
    schemas.update(closure(roots))
    return _document(_paths(resources), dict(sorted(schemas.items())))


def _custom_hash(path: str, crds: list[dict[str, Any]]) -> str:
    parts = [{"names": c.get("spec", {}).get("names"), "scope": c.get("spec", {}).get("scope"), "version": e}
             for c, e in _crds_for(path, crds)]
    return _hash(_RENDER_REVISION + json.dumps(parts, sort_keys=True, default=str))


# ------------------------------------------------------------------------------------ public API


def _normalize(path: str) -> str:
    path = path.split("?", 1)[0].strip("/")
    return path.removeprefix("openapi/v3/")


def v3_index(crds: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``/openapi/v3`` discovery body: one ``serverRelativeURL`` (with content hash) per group-version."""
    paths: dict[str, dict[str, str]] = {}
    for path in _builtin_gv_paths():
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(_builtin_fingerprint() + path)}"}
    custom = sorted({_gv_path(g, v) for crd in crds for g, v, _ in _served_versions(crd)})
    for path in custom:
        digest = _custom_hash(path, crds)
        if path in paths:  # a CRD in a built-in group-version: both parts change the hash
            digest = _hash(paths[path]["serverRelativeURL"] + digest)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": dict(sorted(paths.items()))}


def v3_document_json(path: str, crds: list[dict[str, Any]]) -> bytes | None:
    """The document of one group-version as compact JSON bytes (cached for built-ins), or None."""
    path = _normalize(path)
    builtin = _builtin_document_json(path)
    if not any(_crds_for(path, crds)):
        return builtin
    doc = v3_document(path, crds)
    return None if doc is None else json.dumps(doc, separators=(",", ":")).encode()


def v3_document(path: str, crds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The OpenAPI v3 document of ``api/v1``, ``apis/<group>/<version>`` (built-in or CRD), or None."""
    path = _normalize(path)
    builtin = _builtin_document_json(path)
    custom = _custom_document(path, crds)
    if builtin is None:
        return custom
    doc = json.loads(builtin)
    if custom is not None:
        doc["paths"] = dict(sorted({**doc["paths"], **custom["paths"]}.items()))
        doc["components"]["schemas"] = dict(sorted({**doc["components"]["schemas"],
                                                    **custom["components"]["schemas"]}.items()))
    return doc
