"""Decoding a written object against its schema, as the API server's decoder does: type errors,
unknown fields (dropped, or reported for ``fieldValidation=Strict``), and CRD structural schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from . import openapi, quantity
from .fielderrors import Cause, _cause, invalid, not_supported, required, type_invalid

# ------------------------------------------------------------------------------------ decoding


class _Decoder:
    """Walks an object against its schema: type errors, unknown fields (pruned in place)."""

    def __init__(self, custom: bool) -> None:
        self.custom = custom
        self.causes: list[Cause] = []
        self.unknown: list[str] = []

    # -- built-in (kubernetes-validate definitions)
    def builtin(self, value: Any, schema: dict[str, Any], path: str, gopath: str, struct: str) -> None:
        ref = schema.get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref else ""
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
            if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
                self._decode_error(value, struct, gopath, "intstr.IntOrString")
            return
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
                self._decode_error(value, struct, gopath, "resource.Quantity")
            if value is not None:
                try:
                    quantity.parse(value)
                except ValueError as err:  # the quantity's own parse error, as the decoder reports it
                    raise _DecodeError(str(err)) from None
            return
        schema = openapi.resolve(schema)
        if value is None:
            return
        kind = openapi._single_type(schema.get("type"))
        if kind == "object" or "properties" in schema:
            self._builtin_object(value, schema, path, gopath, struct, name)
        elif kind == "array":
            if not isinstance(value, list):
                self._decode_error(value, struct, gopath, "[]" + _go_type(schema.get("items", {})))
                return
            for i, item in enumerate(value):
                self.builtin(item, schema.get("items", {}), f"{path}[{i}]", gopath, struct)
        elif kind and not _type_ok(kind, value):
            self._decode_error(value, struct, gopath, _go_type(schema))

    def _builtin_object(self, value: Any, schema: dict[str, Any], path: str, gopath: str, struct: str,
                        name: str) -> None:
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if not isinstance(value, dict):
            self._decode_error(value, struct, gopath, _go_type(schema, name))
            return
        if props is None and not isinstance(extra, dict):
            return  # free-form (RawExtension, FieldsV1, JSON)
        here = name.rsplit(".", 1)[-1] if name else struct
        for key in list(value):
            sub = f"{path}.{key}" if path else key
            gsub = f"{gopath}.{key}" if gopath else key
            if props is not None and key in props:
                self.builtin(value[key], props[key], sub, gsub, here)
            elif isinstance(extra, dict):
                self.builtin(value[key], extra, sub, gsub, here)
            else:
                self.unknown.append(sub)
                del value[key]

    def _decode_error(self, value: Any, struct: str, gopath: str, go_type: str) -> None:
        raise _DecodeError(f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                           f"{struct}.{gopath} of type {go_type}")

    # -- custom resources (structural openAPIV3Schema)
    def custom_value(self, value: Any, schema: dict[str, Any], path: str) -> None:
        if value is None:
            if not schema.get("nullable") and schema.get("type"):
                self.causes.append(type_invalid(path, "null", f"{path} in body must be of type "
                                                              f"{schema['type']}: \"null\""))
            return
        if schema.get("x-kubernetes-int-or-string"):
            if not isinstance(value, str | int) or isinstance(value, bool):
                self.causes.append(type_invalid(path, _json_type(value),
                                                f"{path} in body must be of type integer,string: "
                                                f"\"{_json_type(value)}\""))
            return
        kind = schema.get("type")
        if kind and not _type_ok(kind, value):
            got = _json_type(value)
            self.causes.append(type_invalid(path, got, f"{path} in body must be of type {kind}: \"{got}\""))
            return
        self.causes.extend(_value_checks(value, schema, path))
        if isinstance(value, dict):
            self._custom_object(value, schema, path)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                self.custom_value(item, schema["items"], f"{path}[{i}]")

    def _custom_object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for req in schema.get("required", []):
            if req not in value:
                self.causes.append(required(f"{path}.{req}" if path else req))
        for key in list(value):
            sub = f"{path}.{key}" if path else key
            if key in props:
                self.custom_value(value[key], props[key], sub)
            elif isinstance(extra, dict):
                self.custom_value(value[key], extra, sub)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                continue
            else:
                self.unknown.append(sub)
                del value[key]


class _DecodeError(Exception):
    pass


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _type_ok(kind: str, value: Any) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer()),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    return checks.get(kind, lambda v: True)(value)


def _go_type(schema: dict[str, Any], name: str = "") -> str:
    ref = schema.get("$ref", "")
    name = name or ref.rsplit("/", 1)[-1]
    if name:
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    kind = openapi._single_type(schema.get("type"))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map[string]" + _go_type(schema["additionalProperties"])
    if kind == "array":
        return "[]" + _go_type(schema.get("items") or {"type": "object"})
    scalars = {"integer": schema.get("format") or "int64", "number": "float64", "boolean": "bool",
               "string": "string", "object": "map[string]interface {}"}
    return scalars.get(kind or "", "interface {}")


def _value_checks(value: Any, schema: dict[str, Any], path: str) -> list[Cause]:
    """enum, bounds, lengths and patterns of a structural schema (apiextensions messages)."""
    out: list[Cause] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(not_supported(path, value, [v if isinstance(v, str) else json.dumps(v)
                                               for v in schema["enum"]]))
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and (value < lo or (schema.get("exclusiveMinimum") and value == lo)):
            op = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            out.append(invalid(path, value, f"{path} in body should be {op} {lo}"))
        if hi is not None and (value > hi or (schema.get("exclusiveMaximum") and value == hi)):
            op = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            out.append(invalid(path, value, f"{path} in body should be {op} {hi}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(invalid(path, value,
                               f"{path} in body should be at least {schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(_cause("FieldValueTooLong", path, "Too long",
                              f"may not be more than {schema['maxLength']} bytes"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(invalid(path, value, f"{path} in body should match '{schema['pattern']}'"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(invalid(path, len(value),
                               f"{path} in body should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(_cause("FieldValueTooMany", path, f"Too many: {len(value)}",
                              f"must have at most {schema['maxItems']} items"))
    return out


# ------------------------------------------------------------------------------------ custom resources


def find_crd(api_version: str, kind: str, crds: list[dict[str, Any]]) -> tuple[dict[str, Any], dict] | None:
    """The CRD and version entry serving ``apiVersion``/``kind``, if any."""
    group, _, version = api_version.rpartition("/")
    for crd in crds:
        spec = crd.get("spec", {})
        if spec.get("group") != group or spec.get("names", {}).get("kind") != kind:
            continue
        for entry in spec.get("versions", []):
            if entry.get("name") == version:
                return crd, entry
    return None


def crd_schema(api_version: str, kind: str, crds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``openAPIV3Schema`` of a custom kind (None when the kind is not a CRD's)."""
    found = find_crd(api_version, kind, crds)
    if found is None:
        return None
    return (found[1].get("schema") or {}).get("openAPIV3Schema") or {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _validate_custom(obj: dict[str, Any], schema: dict[str, Any], dec: _Decoder) -> None:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    top = ("apiVersion", "kind", "metadata")  # checked apart (required ones too: Argo CD's CRDs require metadata)
    rest = {**schema, "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k not in top},
            "required": [r for r in schema.get("required") or [] if r not in top or r not in obj]}
    dec.custom_value(body, rest, "")
    for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
        if key not in body:
            del obj[key]
    meta_schema = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    dec.builtin(obj.get("metadata"), meta_schema, "metadata", "metadata", "ObjectMeta")


