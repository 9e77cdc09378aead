"""istiod's ``ValidateGateway``, ``ValidateServiceEntry`` and ``ValidatePeerAuthentication``."""

from __future__ import annotations

from .fields import PROTOCOLS, Err, Obj, dns1123_label, export_to, fqdn, ip_subnet, is_ip, labels, port, wildcard_domain
from .goerrors import join


def _gateway_hostname(hostname: str) -> Err:
    """``validateSidecarOrGatewayHostnamePart`` for a gateway: an FQDN (or ``*``, or an IP), no partial wildcard."""
    errs: Err = None
    if hostname != "*" and "." not in hostname:
        errs = join(errs, "short names (non FQDN) are not allowed")
    err = wildcard_domain(hostname)
    if err is not None and not is_ip(hostname):
        errs = join(errs, err)
    if "*" in hostname and len(hostname) != 1 and not hostname.startswith("*."):
        errs = join(errs, f'partial wildcard "{hostname}" not allowed')
    return errs


def gateway_host(host: str) -> Err:
    """``ValidateNamespaceSlashWildcardHostname`` for a gateway server's host (``ns/name`` or the old ``name``)."""
    ns, slash, name = host.partition("/")
    if not slash:
        return _gateway_hostname(host)
    errs: Err = None
    if not ns or not name:
        errs = join(errs, "config namespace and dnsName in host entry cannot be empty")
    if ns not in ("*", ".") and not dns1123_label(ns):
        errs = join(errs, f'invalid namespace value "{ns}" in gateway')
    return join(errs, _gateway_hostname(name))


def gateway(name: str, spec: Obj) -> Err:
    errs: Err = None
    if not dns1123_label(name):
        errs = join(errs, f'invalid gateway name: "{name}"')
    servers = spec.get("servers") or []
    if not servers:
        errs = join(errs, "gateway must have at least one server")
    port_names: set[str] = set()
    for s in servers:
        if s is None:
            errs = join(errs, "server may not be null")
            continue
        if not s.get("hosts"):
            errs = join(errs, "server config must contain at least one host")
        for h in s.get("hosts") or []:
            errs = join(errs, gateway_host(h))
        p = s.get("port")
        if p is None:
            errs = join(errs, "port is required")
            continue
        proto = str(p.get("protocol", "")).lower()
        if proto not in PROTOCOLS:
            errs = join(errs, f'invalid protocol "{p.get("protocol", "")}", supported protocols are HTTP, HTTP2, '
                              "GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP")
        errs = join(errs, port(p.get("number", 0)))
        if p.get("targetPort"):
            errs = join(errs, "targetPort has no impact on Gateways")
        if not p.get("name"):
            errs = join(errs, f"port name must be set: {_go_port(p)}")
        if proto in ("https", "tls") and s.get("tls") is None:
            errs = join(errs, "server must have TLS settings for HTTPS/TLS protocols")
        if p.get("name") in port_names:
            errs = join(errs, f"port names in servers must be unique: duplicate name {p.get('name')}")
        port_names.add(p.get("name", ""))
    return errs


def _go_port(p: Obj) -> str:
    """A Port message as Go's ``%v`` prints a proto: ``number:80 protocol:"HTTP"``."""
    fields = [f"number:{p['number']}" if p.get("number") else "", f'protocol:"{p["protocol"]}"' if p.get("protocol")
              else "", f'name:"{p["name"]}"' if p.get("name") else ""]
    return " ".join(f for f in fields if f)


def service_entry(spec: Obj, namespace: str) -> Err:
    errs: Err = None
    if spec.get("workloadSelector") is not None and spec.get("endpoints") is not None:
        errs = join(errs, "only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    hosts = spec.get("hosts") or []
    if not hosts:
        errs = join(errs, "service entry must have at least one host")
    for h in hosts:
        errs = join(errs, f"invalid host {h}" if h == "*" else wildcard_domain(h))
    for address in spec.get("addresses") or []:
        errs = join(errs, ip_subnet(address))
    names: set[str] = set()
    numbers: set[int] = set()
    for p in spec.get("ports") or []:
        if p.get("name") in names:
            errs = join(errs, f'service entry port name "{p.get("name")}" already defined')
        if p.get("number") in numbers:
            errs = join(errs, f"service entry port {p.get('number')} already defined")
        names.add(p.get("name", ""))
        numbers.add(p.get("number", 0))
        if p.get("targetPort"):
            errs = join(errs, port(p["targetPort"]))
        errs = join(errs, None if dns1123_label(p.get("name", "")) else f"invalid port name: {p.get('name', '')}")
        proto = p.get("protocol", "")
        errs = join(errs, f"unsupported protocol: {proto}" if proto and proto.lower() not in PROTOCOLS else None)
        errs = join(errs, port(p.get("number", 0)))
    resolution = spec.get("resolution", "NONE")
    endpoints = spec.get("endpoints") or []
    if resolution == "NONE" and endpoints:
        errs = join(errs, "no endpoints should be provided for resolution type none")
    elif resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints:
        for h in hosts:
            if fqdn(h) is not None:
                errs = join(errs, f"hosts must be FQDN if no endpoints are provided for resolution mode {resolution}")
    elif resolution not in ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"):
        errs = join(errs, f"unsupported resolution type {resolution}")
    return join(errs, export_to(spec.get("exportTo"), namespace, service_entry=True))


def peer_authentication(spec: Obj) -> Err:
    errs: Err = None
    selector = spec.get("selector")
    port_level = spec.get("portLevelMtls")
    if (not selector or not selector.get("matchLabels")) and port_level:
        errs = join(errs, "mesh/namespace peer authentication cannot have port level mTLS")
    if port_level is not None and len(port_level) == 0:
        errs = join(errs, "port level mTLS, if defined, must have at least one element")
    for key in port_level or {}:
        if not str(key).isdigit() or not 0 < int(key) <= 65535:
            errs = join(errs, "port must be in range 1..65535")
    return join(errs, labels((selector or {}).get("matchLabels")))
