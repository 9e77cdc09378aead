"""istiod's ``ValidateVirtualService`` and ``validateHTTPRoute``: hosts, gateways, HTTP/TCP/TLS routes, matches,
faults, retries, destinations and weights."""

from __future__ import annotations

import json

from .fields import (
    GRPC_STATUS,
    HTTP_STATUS,
    RETRY_ON,
    Err,
    Obj,
    dns1123_label,
    duration,
    export_to,
    fqdn,
    header_name,
    headers,
    is_ip,
    labels,
    percentage,
    port,
    string_match,
    subset_name,
    wildcard_domain,
)
from .goerrors import collect, join


def destination(dest: Obj | None) -> Err:
    if dest is None:
        return None
    host = dest.get("host", "")
    errs = join(None, f"invalid destination host {host}" if host == "*" else wildcard_domain(host))
    if "subset" in dest and dest["subset"] != "":
        errs = join(errs, subset_name(dest["subset"]))
    if dest.get("port") is not None:
        errs = join(errs, port((dest["port"] or {}).get("number", 0)))
    return errs


def route_destinations(routes: list[Obj | None]) -> Err:
    """``validateHTTPRouteDestinations``: each destination present and valid, no negative weight, and several
    destinations may not all weigh 0."""
    errs: Err = None
    total = 0
    for r in routes:
        if r is None:
            errs = collect(errs, "weight may not be nil")
            continue
        if r.get("destination") is None:
            errs = collect(errs, "destination is required")
        errs = join(errs, headers(r.get("headers")))
        errs = join(errs, destination(r.get("destination")))
        weight = int(r.get("weight") or 0)
        errs = join(errs, f"weight {weight} < 0" if weight < 0 else None)
        total += weight
    if len(routes) > 1 and total == 0:
        errs = join(errs, "total destination weight = 0")
    return errs


def fault(f: Obj | None, warnings: list[str]) -> Err:
    if f is None:
        return None
    errs: Err = None
    if f.get("abort") is None and f.get("delay") is None:
        errs = collect(errs, "HTTP fault injection must have an abort and/or a delay")
    abort = f.get("abort")
    if abort is not None:
        errs = join(errs, percentage(abort.get("percentage")))
        if "grpcStatus" in abort:
            if abort["grpcStatus"] not in GRPC_STATUS:
                errs = join(errs, f'gRPC status "{abort["grpcStatus"]}" is not supported. See '
                                  "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                                  "supported codes, for example 'NOT_FOUND'")
        elif "http2Error" in abort:
            errs = join(errs, "HTTP/2 abort fault injection not supported yet")
        elif "httpStatus" in abort:
            status = int(abort["httpStatus"] or 0)
            if status < 200 or status > 600:
                errs = join(errs, f"HTTP status {status} is not in range 200-599")
        else:
            warnings.append("abort configured, but error type not set")
    delay = f.get("delay")
    if delay is not None:
        errs = join(errs, percentage(delay.get("percentage")))
        if "fixedDelay" in delay:
            errs = join(errs, duration(delay["fixedDelay"]))
        elif "exponentialDelay" in delay:
            errs = collect(join(errs, duration(delay["exponentialDelay"])), "exponentialDelay not supported yet")
    return errs


def retries(r: Obj | None) -> Err:
    if r is None:
        return None
    errs: Err = None
    attempts = int(r.get("attempts") or 0)
    if attempts < 0:
        errs = collect(errs, "attempts cannot be negative")
    if attempts == 0 and (r.get("perTryTimeout") or r.get("retryOn") or r.get("retryRemoteLocalities") is not None):
        errs = join(errs, "http retry policy configured when attempts are set to 0 (disabled)")
    errs = join(errs, duration(r.get("perTryTimeout")))
    for policy in (r.get("retryOn") or "").split(",") if r.get("retryOn") else []:
        code = int(policy) if policy.isdigit() else 0
        if code not in HTTP_STATUS and policy not in RETRY_ON:
            errs = join(errs, f'"{policy}" is not a valid retryOn policy')
    return join(errs, duration(r.get("backoff")))


def _route_conflict(http: Obj, delegate: bool) -> Err:
    errs: Err = None
    if http.get("delegate") is not None and not delegate:
        if http.get("redirect") is not None:
            errs = join(errs, f"root HTTP route {http.get('name', '')} must not specify redirect")
        if http.get("route") is not None:
            errs = join(errs, f"root HTTP route {http.get('name', '')} must not specify route")
        return errs
    if delegate and http.get("delegate") is not None:
        errs = join(errs, "delegate HTTP route cannot contain delegate")
    if http.get("redirect") is not None:
        for key, msg in (("route", "HTTP route cannot contain both route and redirect"),
                         ("fault", "HTTP route cannot contain both fault and redirect"),
                         ("rewrite", "HTTP route rule cannot contain both rewrite and redirect"),
                         ("directResponse", "HTTP route rule cannot contain both direct_response and redirect")):
            if http.get(key):
                errs = join(errs, msg)
    elif http.get("directResponse") is not None:
        for key, msg in (("route", "HTTP route cannot contain both route and direct_response"),
                         ("fault", "HTTP route cannot contain both fault and direct_response"),
                         ("rewrite", "HTTP route rule cannot contain both rewrite and direct_response")):
            if http.get(key):
                errs = join(errs, msg)
    elif not http.get("route"):
        errs = join(errs, "HTTP route, redirect or direct_response is required")
    if http.get("mirror") is not None and http.get("mirrors"):
        errs = join(errs, "HTTP route cannot contain both mirror and mirrors")
    return errs


def _matches(http: Obj) -> Err:
    errs: Err = None
    for m in http.get("match") or []:
        if m is None:
            continue
        for name, header in sorted((m.get("headers") or {}).items()):
            if header is None:
                errs = join(errs, f"header match {name} cannot be null")
            errs = join(errs, header_name(name))
            errs = join(errs, string_match(header, "headers"))
        if m.get("uri") and "regex" in m["uri"]:
            errs = join(errs, string_match(m["uri"], "uri"))
        for where in ("scheme", "method", "authority"):
            errs = join(errs, string_match(m.get(where), where))
        for qp in (m.get("queryParams") or {}).values():
            errs = join(errs, string_match(qp, "queryParams"))
    for m in http.get("match") or []:
        if m is None:
            continue
        if m.get("port"):
            errs = join(errs, port(m["port"]))
        errs = join(errs, labels(m.get("sourceLabels")))
        errs = join(errs, gateway_names(m.get("gateways") or [], []))
        ns = m.get("sourceNamespace")
        if ns and not dns1123_label(ns):
            errs = join(errs, f"sourceNamespace match {ns} is invalid")
    return errs


def http_route(http: Obj, delegate: bool, warnings: list[str]) -> Err:
    """``validateHTTPRoute``."""
    errs = join(_route_conflict(http, delegate), _matches(http), headers(http.get("headers")))
    errs = join(errs, fault(http.get("fault"), warnings))
    if http.get("mirrorPercent") is not None:
        value = int((http["mirrorPercent"] or {}).get("value", http["mirrorPercent"]) if isinstance(
            http["mirrorPercent"], dict) else http["mirrorPercent"] or 0)
        if value > 100:
            errs = join(errs, f"mirror_percent must have a max value of 100 (it has {value})")
        warnings.append('using deprecated setting "mirrorPercent", use "mirrorPercentage" instead')
    if http.get("mirrorPercentage") is not None:
        value = float((http["mirrorPercentage"] or {}).get("value") or 0)
        if value > 100:
            errs = join(errs, f"mirror_percentage must have a max value of 100 (it has {value:f})")
        if value < 0:
            errs = join(errs, f"mirror_percentage must have a min value of 0 (it has {value:f})")
    errs = join(errs, destination(http.get("mirror")))
    redirect = http.get("redirect")
    if redirect is not None and not any(redirect.get(k) for k in ("uri", "authority", "port", "scheme",
                                                                  "derivePort")):
        errs = join(errs, "redirect must specify URI, authority, scheme, or port")
    errs = join(errs, retries(http.get("retries")))
    return join(errs, route_destinations(http.get("route") or []), duration(http.get("timeout")))


def gateway_names(names: list[str], warnings: list[str]) -> Err:
    errs: Err = None
    for name in names:
        ns, slash, gw = name.partition("/")
        if not slash:
            if "." in name:
                parts = name.split(".")
                warnings.append(f'using legacy gatewayName format "{name}"; prefer the <namespace>/<name> format: '
                                f'"{parts[1]}/{parts[0]}"')
            return join(errs, fqdn(name))
        if not ns or not gw:
            errs = join(errs, "config namespace and gateway name cannot be empty")
        if not dns1123_label(ns):
            errs = join(errs, f'invalid value for namespace: "{ns}"')
        if not dns1123_label(gw):
            errs = join(errs, f'invalid value for gateway name: "{gw}"')
    return errs


def _host_matches(a: str, b: str) -> bool:
    """``host.Name.Matches``: equal, or one wildcard covers the other."""
    if a == b:
        return True
    if a.startswith("*") and b.startswith("*"):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    return b.startswith("*") and a.endswith(b[1:])


def virtual_service(spec: Obj, namespace: str, warnings: list[str]) -> Err:
    errs: Err = None
    hosts, gateways = spec.get("hosts") or [], spec.get("gateways") or []
    if not hosts:
        for key, msg in (("gateways", "delegate virtual service must have no gateways specified"),
                         ("tls", "delegate virtual service must have no tls route specified"),
                         ("tcp", "delegate virtual service must have no tcp route specified")):
            if spec.get(key):
                errs = join(errs, msg)
    applies_to_mesh = not gateways or "mesh" in gateways  # isGateway: any "mesh" makes it a mesh VS
    if gateways:
        errs = join(errs, gateway_names(gateways, warnings))
    all_valid = True
    for h in hosts:
        err = wildcard_domain(h)
        if err is not None:
            if not is_ip(h):
                errs = join(errs, err)
                all_valid = False
        elif applies_to_mesh and h == "*":
            errs = join(errs, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
            all_valid = False
    if all_valid:
        for i, a in enumerate(hosts):
            for b in hosts[i + 1:]:
                if _host_matches(a, b):
                    errs = join(errs, f"duplicate hosts in virtual service: {a} & {b}")
    if not spec.get("http") and not spec.get("tcp") and not spec.get("tls"):
        errs = join(errs, "http, tcp or tls must be provided in virtual service")
    for http in spec.get("http") or []:
        errs = join(errs, "http route may not be null" if http is None else http_route(http, not hosts, warnings))
    for tcp in spec.get("tcp") or []:
        for m in tcp.get("match") or []:
            errs = join(errs, port(m["port"]) if m.get("port") else None, labels(m.get("sourceLabels")))
        errs = join(errs, None if tcp.get("route") else "TCP route is required")
        errs = join(errs, route_destinations(tcp.get("route") or []))
    for tls in spec.get("tls") or []:
        if not tls.get("match"):
            errs = join(errs, "TLS route must have at least one match condition")
        errs = join(errs, None if tls.get("route") else "TLS route is required")
        errs = join(errs, route_destinations(tls.get("route") or []))
    errs = join(errs, export_to(spec.get("exportTo"), namespace))
    warnings += unreachable_rules(spec.get("http") or [])
    return errs


def _match_key(match: Obj) -> str:
    return json.dumps({k: v for k, v in match.items() if k != "name"}, sort_keys=True)


def unreachable_rules(routes: list[Obj | None]) -> list[str]:
    """``analyzeUnreachableHTTPRules``: rules after a rule without matches, and matches an earlier rule already
    has (the prefix-overlap analysis is not done by the labkit simulator)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    catch_all = -1

    def name(route: Obj, n: int) -> str:
        return f'"{route["name"]}"' if route.get("name") else f"#{n}"

    for n, route in enumerate(routes):
        if route is None:
            continue
        matches = route.get("match") or []
        if not matches:
            if catch_all >= 0:
                out.append(f"virtualService rule {name(route, n)} not used (only the last rule can have no matches)")
            catch_all = n
            continue
        duplicates = 0
        for m, match in enumerate(matches):
            if catch_all >= 0:
                out.append(f"virtualService rule {name(route, n)} not used (route without matches defined before)")
                continue
            key = _match_key(match or {})
            if key in seen:
                earlier = seen[key]
                which = f'"{match["name"]}"' if (match or {}).get("name") else f"#{m}"
                out.append(f"virtualService rule {name(route, n)} match {which} is not used (duplicate/overlapping "
                           f"match in rule {name(routes[earlier] or {}, earlier)})")
                duplicates += 1
                continue
            seen[key] = n
        if duplicates == len(matches):
            out.append(f"virtualService rule {name(route, n)} not used (all matches used by prior rules)")
    return out
