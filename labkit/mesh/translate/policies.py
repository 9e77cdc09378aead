"""A VirtualService HTTP route's policies in Envoy's terms, as istiod translates them: the fault filter's per-route
config, the retry policy (Istio's default when none is given), the timeout, and the request match."""

from __future__ import annotations

from typing import Any

from .naming import proto_duration

FAULT_FILTER = "envoy.filters.http.fault"
FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
PREVIOUS_HOSTS = {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}
HTTP_STATUS_CODES = range(100, 600)


def fractional_percent(percentage: dict[str, Any] | None, legacy: Any = None) -> dict[str, Any] | None:
    """Istio's ``percentage.value`` (a float, 0-100) as a FractionalPercent per million; the deprecated integer
    ``percent`` the same way."""
    if percentage is not None:
        return {"numerator": int(float(percentage.get("value", 0)) * 10000), "denominator": "MILLION"}
    if legacy is not None:
        return {"numerator": int(legacy) * 10000, "denominator": "MILLION"}
    return None


def fault(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """``envoy.filters.http.fault``'s per-route HTTPFault (istiod's ``TranslateFault``)."""
    if not spec:
        return None
    out: dict[str, Any] = {"@type": FAULT_TYPE}
    delay = spec.get("delay")
    if delay and delay.get("fixedDelay"):
        out["delay"] = {"fixed_delay": proto_duration(delay["fixedDelay"])}
        pct = fractional_percent(delay.get("percentage"), delay.get("percent"))
        if pct:
            out["delay"]["percentage"] = pct
    abort = spec.get("abort")
    if abort and (abort.get("httpStatus") is not None):
        out["abort"] = {"http_status": int(abort["httpStatus"])}
        pct = fractional_percent(abort.get("percentage"))
        if pct:
            out["abort"]["percentage"] = pct
    return out if len(out) > 1 else None


def default_retry_policy() -> dict[str, Any]:
    """istiod's default: 2 retries on connect failures, refused streams, unavailable, cancelled and 503, to
    another host when there is one."""
    return {"retry_on": RETRY_ON, "num_retries": 2, "retriable_status_codes": [503],
            "retry_host_predicate": [PREVIOUS_HOSTS], "host_selection_retry_max_attempts": 5}


def retry_policy(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """istiod's ``ConvertPolicy``: the default without ``retries``; none when ``attempts`` is 0; otherwise the
    default with ``attempts``, ``retryOn`` (numbers in it are retriable status codes) and ``perTryTimeout``."""
    out = default_retry_policy()
    if spec is None:
        return out
    attempts = int(spec.get("attempts") or 0)
    if attempts <= 0:
        return None
    out["num_retries"] = attempts
    if spec.get("retryOn"):
        parts = [p.strip() for p in str(spec["retryOn"]).split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit() and int(p) in HTTP_STATUS_CODES]
        out["retry_on"] = ",".join(p for p in parts if not (p.isdigit() and int(p) in HTTP_STATUS_CODES))
        out["retriable_status_codes"] = codes
        if codes and "retriable-status-codes" not in out["retry_on"]:
            out["retry_on"] += ",retriable-status-codes"
        if not codes:
            del out["retriable_status_codes"]
    if spec.get("perTryTimeout"):
        out["per_try_timeout"] = proto_duration(spec["perTryTimeout"])
    if spec.get("retryIgnorePreviousHosts") is False:
        del out["retry_host_predicate"]
    return out


def timeout(spec: str | None) -> str:
    """The route timeout: a VirtualService's ``timeout``, or ``0s`` (none) as istiod sets by default."""
    return proto_duration(spec) if spec else "0s"


def string_match(spec: dict[str, Any], ignore_case: bool = False) -> dict[str, Any]:
    """Istio's StringMatch (``exact``/``prefix``/``regex``) as Envoy's StringMatcher (regex: RE2)."""
    if "exact" in spec:
        out: dict[str, Any] = {"exact": spec["exact"]}
    elif "prefix" in spec:
        out = {"prefix": spec["prefix"]}
    elif "regex" in spec:
        return {"safe_regex": {"regex": spec["regex"]}}
    else:
        raise ValueError(f"unsupported string match {spec}")
    if ignore_case:
        out["ignore_case"] = True
    return out


def route_match(match: dict[str, Any] | None) -> dict[str, Any]:
    """An HTTPMatchRequest as Envoy's RouteMatch: ``uri`` as path/prefix/safe_regex, ``headers`` (and
    ``withoutHeaders`` inverted), ``method``, ``authority`` (``:authority``), ``queryParams``."""
    match = match or {}
    out: dict[str, Any] = {}
    uri = match.get("uri")
    ignore = bool(match.get("ignoreUriCase"))
    if not uri:
        out["prefix"] = "/"
    elif "exact" in uri:
        out["path"] = uri["exact"]
    elif "prefix" in uri:
        out["prefix"] = uri["prefix"]
    elif "regex" in uri:
        out["safe_regex"] = {"regex": uri["regex"]}
    if ignore and "safe_regex" not in out:
        out["case_sensitive"] = False
    headers = []
    for name, spec in (match.get("headers") or {}).items():
        headers.append(_header(name, spec, invert=False))
    for name, spec in (match.get("withoutHeaders") or {}).items():
        headers.append(_header(name, spec, invert=True))
    for pseudo, key in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        if match.get(key):
            headers.append(_header(pseudo, match[key], invert=False))
    if headers:
        out["headers"] = headers
    params = [{"name": name, "string_match": string_match(spec)} if spec else {"name": name, "present_match": True}
              for name, spec in (match.get("queryParams") or {}).items()]
    if params:
        out["query_parameters"] = params
    return out


def _header(name: str, spec: dict[str, Any], invert: bool) -> dict[str, Any]:
    if not spec:  # istiod: an empty match means "present"
        return {"name": name, "present_match": True, "invert_match": invert}
    return {"name": name, "string_match": string_match(spec), "invert_match": invert}
