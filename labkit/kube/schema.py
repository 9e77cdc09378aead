"""Validation and defaulting of objects written to the emulated API server.

``validate`` does what the real API server does to a write, in its order:
decoding against the schema (type errors, unknown fields dropped or reported
for ``fieldValidation=Strict``), then the hand-written validation of the
built-in kinds (names, labels, selectors, pod templates, services …) with
the real messages, or the CRD's structural schema for custom resources.
``apply_defaults`` fills in the defaults real clients rely on and kubectl
prints. Messages follow k8s.io/apimachinery's ``field.Error`` formatting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import ApiError
from . import openapi

Cause = dict[str, str]

# ------------------------------------------------------------------------------------ field errors


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _cause(reason: str, field: str, body: str, detail: str = "") -> Cause:
    return {"reason": reason, "message": f"{body}: {detail}" if detail else body, "field": field}


def required(field: str, detail: str = "") -> Cause:
    return _cause("FieldValueRequired", field, "Required value", detail)


def invalid(field: str, value: Any, detail: str = "") -> Cause:
    return _cause("FieldValueInvalid", field, f"Invalid value: {_fmt_value(value)}", detail)


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause("FieldValueTypeInvalid", field, f"Invalid value: {_fmt_value(value)}", detail)


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    values = ", ".join(json.dumps(s) for s in supported)
    return _cause("FieldValueNotSupported", field, f"Unsupported value: {_fmt_value(value)}",
                  f"supported values: {values}" if values else "")


def duplicate(field: str, value: Any) -> Cause:
    return _cause("FieldValueDuplicate", field, f"Duplicate value: {_fmt_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return _cause("FieldValueForbidden", field, "Forbidden", detail)


def not_found(field: str, value: Any) -> Cause:
    return _cause("FieldValueNotFound", field, f"Not found: {_fmt_value(value)}")


# ------------------------------------------------------------------------------------ name formats

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """k8s.io/apimachinery validation.RegexError, spacing included."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        out += (" or " if i else "") + f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def _full(fmt: str, value: str) -> bool:
    return re.fullmatch(fmt, value) is not None


def dns1123_label(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _full(_LABEL_FMT, value):
        errs.append("must not contain dots" if _full(_SUBDOMAIN_FMT, value) else _regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character", _LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not _full(_SUBDOMAIN_FMT, value):
        errs.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character", _SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _full(_DNS1035_FMT, value):
        errs.append(_regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character",
            _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def qualified_name(value: str) -> list[str]:
    """Label and annotation keys: an optional DNS subdomain prefix, '/', a name."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["a valid label key " + _regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        errs += ["prefix part must be non-empty"] if not prefix else [
            "prefix part " + m for m in dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _full(_QNAME_FMT, name):
        errs.append("name part " + _regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not _full(_LABEL_VALUE_FMT, value):
        errs.append(_regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character", _LABEL_VALUE_FMT,
            "MyValue", "my_value", "12345"))
    return errs


def config_key(value: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not _full(_CONFIG_KEY_FMT, value):
        msg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
        errs.append(_regex_error(msg, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs


def port_name(value: str) -> list[str]:
    errs = ["must be no more than 15 characters"] if len(value) > 15 else []
    if not _full("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value[:1] == "-" or value[-1:] == "-":
        errs.append("must not begin or end with a hyphen")
    return errs


def _each(field: str, value: Any, msgs: list[str]) -> list[Cause]:
    return [invalid(field, value, m) for m in msgs]


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
    rest = {**schema, "properties": {k: v for k, v in (schema.get("properties") or {}).items()
                                     if k not in ("apiVersion", "kind", "metadata")}}
    dec.custom_value(body, rest, "")
    for key in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
        if key not in body:
            del obj[key]
    meta_schema = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    dec.builtin(obj.get("metadata"), meta_schema, "metadata", "metadata", "ObjectMeta")


# ------------------------------------------------------------------------------------ public API


def validate(obj: dict[str, Any], crds: list[dict[str, Any]], strict: bool) -> tuple[list[Cause], list[str]]:
    """Validate a written object: (Status causes, unknown field paths).

    Unknown fields are removed from ``obj`` in place, as the real decoder drops
    them (and prunes custom resources); the caller rejects them when
    ``fieldValidation=Strict`` (``strict`` is accepted for symmetry: the paths
    are returned either way, for Warn). A value of the wrong type in a built-in
    kind raises ``ApiError(400, "BadRequest")`` like the real decoder does.
    """
    del strict
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    schema = crd_schema(api_version, kind, crds)
    dec = _Decoder(custom=schema is not None)
    version = api_version.rpartition("/")[2]
    try:
        if schema is not None:
            _validate_custom(obj, schema, dec)
        else:
            name = openapi.definition_name(api_version, kind)
            if name is None:
                return [], []
            dec.builtin(obj, {"$ref": "#/$defs/" + name}, "", "", kind)
    except _DecodeError as e:
        raise ApiError(400, "BadRequest",
                       f'{kind} in version "{version}" cannot be handled as a {kind}: {e}') from None
    causes = _meta_causes(obj, kind, custom=schema is not None) + dec.causes
    if schema is None:
        causes += _KIND_CHECKS.get(kind, lambda o: [])(obj)
    return causes, dec.unknown


# ------------------------------------------------------------------------------------ built-in checks

_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}


def _meta_causes(obj: dict[str, Any], kind: str, custom: bool) -> list[Cause]:
    meta = obj.get("metadata") or {}
    out: list[Cause] = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        out.append(required("metadata.name", "name or generateName is required"))
    elif name:
        check = dns1123_label if kind in _LABEL_NAMED else dns1035_label if kind in _DNS1035_NAMED \
            else dns1123_subdomain
        out += _each("metadata.name", name, check(name))
    out += _label_causes(meta.get("labels"), "metadata.labels")
    for key in meta.get("annotations") or {}:
        out += _each("metadata.annotations", key, qualified_name(key.lower()))
    del custom
    return out


def _label_causes(labels: dict[str, Any] | None, field: str) -> list[Cause]:
    out: list[Cause] = []
    for key, value in (labels or {}).items():
        out += _each(field, key, qualified_name(key))
        out += _each(field, value, label_value(value if isinstance(value, str) else str(value)))
    return out


def _selector_causes(selector: Any, field: str) -> list[Cause]:
    out = _label_causes((selector or {}).get("matchLabels"), f"{field}.matchLabels")
    ops = ("In", "NotIn", "Exists", "DoesNotExist")
    for i, expr in enumerate((selector or {}).get("matchExpressions") or []):
        f = f"{field}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in ops:
            out.append(invalid(f"{f}.operator", op, "not a valid selector operator"))
        elif op in ("In", "NotIn") and not values:
            out.append(required(f"{f}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            out.append(forbidden(f"{f}.values", "may not be specified when `operator` is 'Exists' or "
                                                "'DoesNotExist'"))
        out += _each(f"{f}.key", expr.get("key"), qualified_name(expr.get("key") or ""))
    return out


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any] | None) -> bool:
    """Whether a LabelSelector matches a label set (a null selector matches nothing)."""
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
              "Exists": present, "DoesNotExist": not present}.get(op, False)
        if not ok:
            return False
    return True


def _non_negative(value: Any, field: str) -> list[Cause]:
    if isinstance(value, int) and value < 0:
        return [invalid(field, value, "must be greater than or equal to 0")]
    return []


def _workload_causes(obj: dict[str, Any], what: str, restart: tuple[str, ...] = ("Always",)) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    out += _non_negative(spec.get("replicas"), "spec.replicas")
    out += _non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    out += _non_negative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        out.append(required("spec.selector"))
    else:
        out += _selector_causes(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            out.append(invalid("spec.selector", selector, f"empty selector is invalid for {what}"))
    if template is None:
        out.append(required("spec.template"))
        return out
    labels = (template.get("metadata") or {}).get("labels")
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_matches(selector, labels):
        out.append(invalid("spec.template.metadata.labels", labels or {},
                           "`selector` does not match template `labels`"))
    out += _template_causes(template, "spec.template", restart)
    return out


def _template_causes(template: dict[str, Any], field: str, restart: tuple[str, ...]) -> list[Cause]:
    out = _label_causes((template.get("metadata") or {}).get("labels"), f"{field}.metadata.labels")
    pod_spec = template.get("spec") or {}
    out += pod_spec_causes(pod_spec, f"{field}.spec")
    policy = pod_spec.get("restartPolicy")
    if policy in _RESTART_POLICIES and policy not in restart:
        if restart == ("Always",):
            out.append(not_supported(f"{field}.spec.restartPolicy", policy, restart))
        else:
            out.append(required(f"{field}.spec.restartPolicy",
                                "valid values: " + ", ".join(json.dumps(r) for r in restart)))
    return out


_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_ENV_NAME_ERROR = ("a valid environment variable name must consist only of printable ASCII characters "
                   "other than '='")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def pod_spec_causes(spec: dict[str, Any], field: str) -> list[Cause]:
    """The checks of ValidatePodSpec the lab's manifests can trip over."""
    out: list[Cause] = []
    volumes = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        f = f"{field}.volumes[{i}].name"
        name = vol.get("name") or ""
        if not name:
            out.append(required(f))
        elif name in volumes:
            out.append(duplicate(f, name))
        else:
            out += _each(f, name, dns1123_label(name))
        volumes.add(name)
    containers = spec.get("containers") or []
    if not containers:
        out.append(required(f"{field}.containers"))
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            out += _container_causes(c, f"{field}.{group}[{i}]", names, volumes)
    if spec.get("restartPolicy") is not None and spec["restartPolicy"] not in _RESTART_POLICIES:
        out.append(not_supported(f"{field}.restartPolicy", spec["restartPolicy"], _RESTART_POLICIES))
    if spec.get("dnsPolicy") is not None and spec["dnsPolicy"] not in _DNS_POLICIES:
        out.append(not_supported(f"{field}.dnsPolicy", spec["dnsPolicy"], _DNS_POLICIES))
    out += _non_negative(spec.get("terminationGracePeriodSeconds"), f"{field}.terminationGracePeriodSeconds")
    return out


def _container_causes(c: dict[str, Any], field: str, names: set[str], volumes: set[str]) -> list[Cause]:
    out: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        out.append(required(f"{field}.name"))
    elif name in names:
        out.append(duplicate(f"{field}.name", name))
    else:
        out += _each(f"{field}.name", name, dns1123_label(name))
    names.add(name)
    if not c.get("image"):
        out.append(required(f"{field}.image"))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in _PULL_POLICIES:
        out.append(not_supported(f"{field}.imagePullPolicy", policy, _PULL_POLICIES))
    port_names: set[str] = set()
    for j, port in enumerate(c.get("ports") or []):
        out += _port_causes(port, f"{field}.ports[{j}]", "containerPort", port_names)
    for j, env in enumerate(c.get("env") or []):
        env_name = env.get("name") or ""
        if not env_name:
            out.append(required(f"{field}.env[{j}].name"))
        elif "=" in env_name or not env_name.isprintable() or not env_name.isascii():
            out.append(invalid(f"{field}.env[{j}].name", env_name, _ENV_NAME_ERROR))
    for j, mount in enumerate(c.get("volumeMounts") or []):
        f = f"{field}.volumeMounts[{j}]"
        if not mount.get("name"):
            out.append(required(f"{f}.name"))
        elif mount["name"] not in volumes:
            out.append(not_found(f"{f}.name", mount["name"]))
        if not mount.get("mountPath"):
            out.append(required(f"{f}.mountPath"))
    return out


def _port_causes(port: dict[str, Any], field: str, number_key: str, seen: set[str]) -> list[Cause]:
    out: list[Cause] = []
    number = port.get(number_key)
    if number is None:
        out.append(required(f"{field}.{number_key}"))
    elif not 1 <= number <= 65535:
        out.append(invalid(f"{field}.{number_key}", number, "must be between 1 and 65535, inclusive"))
    name = port.get("name")
    if name:
        out += _each(f"{field}.name", name, port_name(name) if number_key == "containerPort"
                     else dns1123_label(name))
        if name in seen:
            out.append(duplicate(f"{field}.name", name))
        seen.add(name)
    protocol = port.get("protocol")
    if protocol is not None and protocol not in _PROTOCOLS:
        out.append(not_supported(f"{field}.protocol", protocol, _PROTOCOLS))
    return out


def _deployment_causes(obj: dict[str, Any]) -> list[Cause]:
    out = _workload_causes(obj, "deployment")
    spec = obj.get("spec") or {}
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind is not None and kind not in ("Recreate", "RollingUpdate"):
        out.append(not_supported("spec.strategy.type", kind, ("Recreate", "RollingUpdate")))
    if kind == "Recreate" and strategy.get("rollingUpdate") is not None:
        out.append(forbidden("spec.strategy.rollingUpdate",
                             "may not be specified when strategy `type` is 'Recreate'"))
    rolling = strategy.get("rollingUpdate") or {}
    if kind == "RollingUpdate" and _is_zero(rolling.get("maxSurge")) \
            and _is_zero(rolling.get("maxUnavailable")):
        out.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable"),
                           "may not be 0 when `maxSurge` is 0"))
    out += _non_negative(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds")
    return out


def _is_zero(value: Any) -> bool:
    return value in (0, "0%", "0")


def _job_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        out += _non_negative(spec.get(key), f"spec.{key}")
    template = spec.get("template")
    if template is None:
        return [*out, required("spec.template")]
    selector = spec.get("selector")
    labels = (template.get("metadata") or {}).get("labels")
    if selector and not selector_matches(selector, labels):
        out.append(invalid("spec.template.metadata.labels", labels or {},
                           "`selector` does not match template `labels`"))
    return out + _template_causes(template, "spec.template", ("OnFailure", "Never"))


def _service_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    kind = spec.get("type", "ClusterIP")
    if kind not in types:
        out.append(not_supported("spec.type", kind, types))
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in ("ClientIP", "None"):
        out.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    ports = spec.get("ports") or []
    if kind == "ExternalName":
        if not spec.get("externalName"):
            out.append(required("spec.externalName"))
    elif not ports and spec.get("clusterIP") != "None":
        out.append(required("spec.ports"))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        f = f"spec.ports[{i}]"
        if len(ports) > 1 and not port.get("name"):
            out.append(required(f"{f}.name"))
        out += _port_causes(port, f, "port", seen)
        target = port.get("targetPort")
        if isinstance(target, int) and not 1 <= target <= 65535:
            out.append(invalid(f"{f}.targetPort", target, "must be between 1 and 65535, inclusive"))
        elif isinstance(target, str):
            out += _each(f"{f}.targetPort", target, port_name(target))
        node_port = port.get("nodePort")
        if node_port and kind not in ("NodePort", "LoadBalancer"):
            out.append(forbidden(f"{f}.nodePort", "may not be used when `type` is 'ClusterIP'"))
    out += _label_causes(spec.get("selector"), "spec.selector")
    return out


def _data_key_causes(obj: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    seen: set[str] = set()
    for field in ("data", "binaryData", "stringData"):
        for key in obj.get(field) or {}:
            out += _each(f"{field}[{key}]", key, config_key(key))
            if field == "binaryData" and key in seen:
                out.append(invalid(f"{field}[{key}]", key, "duplicate of key present in data"))
            seen.add(key)
    return out


_KIND_CHECKS: dict[str, Callable[[dict[str, Any]], list[Cause]]] = {
    "Deployment": _deployment_causes,
    "ReplicaSet": lambda o: _workload_causes(o, "replicaset"),
    "StatefulSet": lambda o: _workload_causes(o, "statefulset"),
    "DaemonSet": lambda o: _workload_causes(o, "daemonset"),
    "Job": _job_causes,
    "Pod": lambda o: pod_spec_causes(o.get("spec") or {}, "spec"),
    "Service": _service_causes,
    "ConfigMap": _data_key_causes,
    "Secret": _data_key_causes,
}

# ------------------------------------------------------------------------------------ defaulting


def apply_defaults(obj: dict[str, Any]) -> None:
    """Fill in, in place, the defaults the real API server sets on the built-in kinds."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind in _SPEC_DEFAULTS:
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        _SPEC_DEFAULTS[kind](spec)
    elif kind in _OBJECT_DEFAULTS:
        _OBJECT_DEFAULTS[kind](obj)


def _set(d: dict[str, Any], key: str, value: Any) -> Any:
    if d.get(key) is None:
        d[key] = value
    return d[key]


def default_pod_spec(spec: dict[str, Any]) -> None:
    """PodSpec defaults (SetDefaults_PodSpec, _Container, _ContainerPort, _Volume …)."""
    _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "securityContext", {})
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict):
                _default_container(c)
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        for source, mode_key in (("configMap", "defaultMode"), ("secret", "defaultMode"),
                                 ("projected", "defaultMode"), ("downwardAPI", "defaultMode")):
            if isinstance(vol.get(source), dict):
                _set(vol[source], mode_key, 420)
        if not any(k != "name" for k in vol):
            vol["emptyDir"] = {}


def _default_container(c: dict[str, Any]) -> None:
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    _set(c, "resources", {})
    image = c.get("image") or ""
    if c.get("imagePullPolicy") is None and image:
        c["imagePullPolicy"] = "Always" if _image_tag(image) in ("", "latest") else "IfNotPresent"
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_key)
        if isinstance(probe, dict):
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                               ("failureThreshold", 3)):
                _set(probe, key, value)
            if isinstance(probe.get("httpGet"), dict):
                _set(probe["httpGet"], "scheme", "HTTP")
                _set(probe["httpGet"], "path", "/")
    for env in c.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")


def _image_tag(image: str) -> str:
    """The tag of an image reference ('' when there is none; digests count as pinned)."""
    if "@" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec = template.get("spec")
        if isinstance(pod_spec, dict):
            default_pod_spec(pod_spec)


def _default_selector_from_template(spec: dict[str, Any]) -> None:
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if spec.get("selector") is None and labels:
        spec["selector"] = {"matchLabels": dict(labels)}


def _default_deployment(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    strategy = _set(spec, "strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _set(strategy, "rollingUpdate", {})
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _default_template(spec)


def _default_replicaset(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _default_template(spec)


def _default_statefulset(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    _set(spec, "revisionHistoryLimit", 10)
    strategy = _set(spec, "updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_set(strategy, "rollingUpdate", {}), "partition", 0)
    policy = _set(spec, "persistentVolumeClaimRetentionPolicy", {})
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    _default_template(spec)


def _default_daemonset(spec: dict[str, Any]) -> None:
    _set(spec, "revisionHistoryLimit", 10)
    strategy = _set(spec, "updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _set(strategy, "rollingUpdate", {})
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _default_template(spec)


def _default_job(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _default_template(spec)


def _default_service(spec: dict[str, Any]) -> None:
    kind = _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if kind != "ExternalName":
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if port.get("targetPort") is None and port.get("port") is not None:
                port["targetPort"] = port["port"]


def _default_namespace(obj: dict[str, Any]) -> None:
    spec = _set(obj, "spec", {})
    _set(spec, "finalizers", ["kubernetes"])
    status = _set(obj, "status", {})
    _set(status, "phase", "Active")
    labels = _set(_set(obj, "metadata", {}), "labels", {})
    name = obj["metadata"].get("name")
    if name:
        labels.setdefault("kubernetes.io/metadata.name", name)


def _default_secret(obj: dict[str, Any]) -> None:
    _set(obj, "type", "Opaque")


# The API server's --default-{not-ready,unreachable}-toleration-seconds (300 in a stock cluster):
# the lab shortens it so that a stopped node's pods move within a lesson.
DEFAULT_TOLERATION_SECONDS = 20


def _default_pod(obj: dict[str, Any]) -> None:
    spec = _set(obj, "spec", {})
    default_pod_spec(spec)
    _set(spec, "enableServiceLinks", True)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    _set(spec, "priority", 0)
    # the DefaultTolerationSeconds admission plugin
    tolerations = _set(spec, "tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(isinstance(t, dict) and t.get("key") == key for t in tolerations):
            tolerations.append({"effect": "NoExecute", "key": key, "operator": "Exists",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    status = _set(obj, "status", {})
    _set(status, "phase", "Pending")
    _set(status, "qosClass", _qos_class(spec))


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get("cpu") and (r.get("limits") or {}).get("memory")
        and all((r.get("requests") or {}).get(k, (r.get("limits") or {})[k]) == (r.get("limits") or {})[k]
                for k in ("cpu", "memory"))
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def _default_endpoint_slice(obj: dict[str, Any]) -> None:
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")


def _default_endpoints(obj: dict[str, Any]) -> None:
    for subset in obj.get("subsets") or []:
        for port in (subset or {}).get("ports") or []:
            if isinstance(port, dict):
                _set(port, "protocol", "TCP")


_SPEC_DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "StatefulSet": _default_statefulset,
    "DaemonSet": _default_daemonset,
    "Job": _default_job,
    "Service": _default_service,
}
_OBJECT_DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Pod": _default_pod,
    "Namespace": _default_namespace,
    "Secret": _default_secret,
    "EndpointSlice": _default_endpoint_slice,
    "Endpoints": _default_endpoints,
}
