"""The checks every Istio kind shares, as istiod words them: DNS names and wildcard hosts, ports, percentages,
durations, labels, RE2 regexes, string matches, header names, ``exportTo``."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from . import celrules
from .goerrors import Multi, collect, join

Obj = dict[str, Any]
Err = str | Multi | None
GROUPS = ("networking.istio.io", "security.istio.io")
WEBHOOK = "validation.istio.io"
DRY_RUN = "istio.io/dry-run"

_DNS1123_LABEL = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$")
_QUALIFIED = "(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS_PREFIX = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/"
_TAG_KEY = re.compile(f"^({_DNS_PREFIX})?({_QUALIFIED})$")
_LABEL_VALUE = re.compile(f"^({_QUALIFIED})?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")
RETRY_ON = {"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
            "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
            "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
            "unavailable"}
PSEUDO_HEADERS = (":method", ":scheme", ":authority", ":path", ":status")
PROTOCOLS = {"tcp", "udp", "grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tls", "mongo", "redis",
             "mysql"}
HTTP_STATUS = {100, 101, 102, 103, *range(200, 209), 226, *range(300, 306), 307, 308, *range(400, 419),
               *range(421, 427), 428, 429, 431, 451, *range(500, 509), 510, 511}  # Go's http.StatusText
GRPC_STATUS = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
               "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
               "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}


def _gof(value: float) -> str:
    """A float as Go's ``%v`` prints it."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e21 else repr(float(value))


def dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def _dns_labels(domain: str) -> Err:
    parts = domain.split(".")
    if parts[-1].isdigit():
        return f'domain name "{domain}" invalid (top level domain "{parts[-1]}" cannot be all-numeric)'
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if not dns1123_label(label):
            return f'domain name "{domain}" invalid (label "{label}" invalid)'
    return None


def _preconditions(name: str) -> Err:
    if len(name) > 255:
        return f'domain name "{name}" too long (max 255)'
    return "empty domain name not allowed" if not name else None


def fqdn(name: str) -> Err:
    return _preconditions(name) or _dns_labels(name)


def wildcard_domain(domain: str) -> Err:
    """``ValidateWildcardDomain``: a wildcard is allowed in the first label only."""
    if err := _preconditions(domain):
        return err
    first, _, rest = domain.partition(".")
    if not _WILDCARD_LABEL.match(first) or len(first) > 64:
        return f'domain name "{domain}" invalid (label "{first}" invalid)'
    return _dns_labels(rest) if "." in domain else None


def port(number: Any) -> Err:
    n = number if isinstance(number, int) else 0
    return None if 1 <= n <= 65535 else f"port number {n} must be in the range 1..65535"


def percent(value: Any) -> Err:
    v = value or 0
    return None if 0 <= v <= 100 else f"percentage {v} is not in range 0..100"


def duration(value: Any) -> Err:
    """``agent.ValidateDuration``: at least 1ms, whole milliseconds (unparsable text is the CEL rule's to refuse)."""
    if value is None:
        return None
    seconds = celrules.go_duration(str(value))
    if seconds is None:
        return None
    nanos = round(seconds * 1e9)
    if nanos < 1_000_000:
        return "duration must be greater than 1ms"
    return None if nanos % 1_000_000 == 0 else "only durations to ms precision are supported"


def percentage(pct: Obj | None) -> Err:
    if pct is None:
        return None
    v = float(pct.get("value") or 0)
    if v < 0 or v > 100 or 0 < v < 0.0001:
        return f"percentage {_gof(v)} is neither 0.0, nor in range [0.0001, 100.0]"
    return None


def labels(instance: dict[str, str] | None) -> Err:
    """``labels.Instance.Validate``."""
    errs: Err = None
    for k, v in sorted((instance or {}).items()):
        m = _TAG_KEY.match(k)
        if m is None:
            errs = collect(errs, f'invalid tag key: "{k}"')
        elif m.group(1) and len(m.group(1)) - 1 > 253:
            errs = collect(errs, f'invalid tag key: "{k}" (DNS prefix is too long)')
        elif len(m.group(2)) > 63:
            errs = collect(errs, f'invalid tag key: "{k}" (name is too long)')
        if not _LABEL_VALUE.match(v or ""):
            errs = collect(errs, f'invalid tag value: "{v}"')
    return errs


_RE2_CODES = (("missing ), unterminated subpattern", "missing closing )"), ("unbalanced parenthesis", "unexpected )"),
              ("nothing to repeat", "missing argument to repetition operator"),
              ("multiple repeat", "invalid nested repetition operator"),
              ("unterminated character set", "missing closing ]"),
              ("bad character range", "invalid character class range"),
              ("bad escape (end of pattern)", "trailing backslash at end of expression"),
              ("bad escape", "invalid escape sequence"))
_PERL_ONLY = re.compile(r"\(\?(?:=|!|<=|<!)|\\[1-9]")  # lookarounds and backreferences: not RE2


def re2_error(expr: str) -> str | None:
    """Go's ``regexp.Compile`` error for ``expr`` (``error parsing regexp: <code>: `<expr>```), or None."""
    perl = _PERL_ONLY.search(expr)
    if perl is not None:
        return f"error parsing regexp: invalid or unsupported Perl syntax: `{perl.group(0)}`"
    try:
        re.compile(expr)
    except re.error as err:
        code = next((go for py, go in _RE2_CODES if str(err.msg).startswith(py)), str(err.msg))
        return f"error parsing regexp: {code}: `{expr}`"
    return None


def _regexp(re_text: str, where: str) -> Err:
    if len(re_text) > 1024:
        return f'"{where}": regex is too large, max length allowed is 1024'
    err = re2_error(re_text)
    return None if err is None else f'"{where}": {err}; Istio uses RE2 style regex-based match ' \
                                    "(https://github.com/google/re2/wiki/Syntax)"


def string_match(sm: Obj | None, where: str, allow_empty_prefix: bool = False) -> Err:
    if not sm:
        return None
    if "prefix" in sm and not sm["prefix"] and not allow_empty_prefix:
        return f'"{where}": prefix string match should not be empty'
    if "regex" in sm:
        return f'"{where}": regex string match should not be empty' if not sm["regex"] else _regexp(sm["regex"], where)
    return None


def export_to(exports: list[str] | None, namespace: str, service_entry: bool = False) -> Err:
    """``validateExportTo``: no duplicates (``.`` is the namespace itself), ``*`` alone, ``~`` only alone on a
    ServiceEntry, the rest DNS labels."""
    errs: Err = None
    seen: set[str] = set()
    for e in exports or []:
        key = namespace if e == "." else e
        if key in seen:
            errs = join(errs, f"duplicate entries in exportTo: . and current namespace {namespace}" if key != e
                        else f"duplicate entries in exportTo for entry {e}")
        elif service_entry and e == "~":
            seen.add(key)
        elif e == "~":
            errs = join(errs, "exportTo ~ (none) is not allowed for Istio configuration objects")
        elif e not in (".", "*") and not dns1123_label(e):
            errs = join(errs, "only .,*, or a valid DNS 1123 label is allowed as exportTo entry")
        else:
            seen.add(key)
    if "*" in seen and len(exports or []) > 1:
        errs = join(errs, "cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(exports or []) > 1:
        errs = join(errs, "cannot export service entry to no one (~) and someone")
    return errs


def header_name(name: str) -> Err:
    """``ValidateHTTPHeaderNameOrJwtClaimRoute``: a token, a pseudo header or a JWT claim."""
    if not name:
        return "header name cannot be empty"
    if name.startswith("@request.auth.claims.") or name in PSEUDO_HEADERS or _HEADER_NAME.match(name):
        return None
    return f"header name {name} is not a valid header name"


def header_operation(name: str, authority_ok: bool) -> Err:
    """``ValidateHTTPHeaderWithAuthorityOperationName`` (add/set on requests) or ``ValidateHTTPHeaderOperationName``."""
    if not name:
        return "header name cannot be empty"
    authority = name.lower() in (":authority", "host")
    if not authority_ok and name.lower() == "host":
        return f'invalid header "{name}": cannot set Host header'
    if (name.startswith(":") or name.lower() == "host") and not (authority_ok and authority):
        return f'invalid header "{name}": header cannot have ":" prefix'
    return None


def headers(h: Obj | None) -> Err:
    """Header manipulation of a route or a destination."""
    errs: Err = None
    for side in ("request", "response"):
        ops = (h or {}).get(side) or {}
        for op in ("add", "set"):
            for name in sorted(ops.get(op) or {}):
                errs = join(errs, header_operation(name, side == "request"))
        for name in ops.get("remove") or []:
            errs = join(errs, header_operation(name, False))
    return errs


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ip_subnet(subnet: str) -> Err:
    """``ValidateIPSubnet``: CIDR notation or a plain address."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return f"{subnet} is not a valid CIDR block"
        return None
    return None if is_ip(subnet) else f"{subnet} is not a valid IP"


def subset_name(name: str) -> Err:
    if not name:
        return "subset name cannot be empty"
    return None if dns1123_label(name) else f"subset name is invalid: {name}"
