"""kind's cluster config (``kind.x-k8s.io/v1alpha4``) read as kind v0.32 reads it, refused as kind refuses it.

kind decodes the file strictly (an unknown field or a wrong type is a decode error, with the YAML line),
defaults it, then validates it and reports every problem at once. The structure comes from
``tests/backends/kind/schemas/kind-cluster-v1alpha4.schema.json``; the messages are kind's
(``pkg/internal/apis/config/encoding/load.go`` and ``validate.go``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .flags import Failure
from .schemas import validator

API_VERSION = "kind.x-k8s.io/v1alpha4"
NAME_RE = "^[a-z0-9.-]+$"
DEFAULT_CERTS_DIR = "/etc/containerd/certs.d"  # containerd's config_path in kind >= v0.27 node images
_GO_TYPES = {"integer": "int32", "boolean": "bool", "string": "string", "array": "[]interface {}",
             "object": "map[string]interface {}"}


@dataclass(frozen=True)
class Node:
    """One node of the config: kind's container for it and the Kubernetes node name it registers."""

    index: int
    role: str
    container: str
    name: str
    mounts: tuple[dict[str, Any], ...] = ()
    port_mappings: tuple[dict[str, Any], ...] = ()


@dataclass
class ClusterConfig:
    name: str
    raw: dict[str, Any]
    nodes: list[Node] = field(default_factory=list)

    @property
    def containers(self) -> list[str]:
        """Every container kind creates: the nodes and, with several control planes, kind's load balancer."""
        lb = [f"{self.name}-external-load-balancer"] if sum(n.role == "control-plane" for n in self.nodes) > 1 else []
        return [*(n.container for n in self.nodes), *lb]

    def certs_dir(self) -> str:
        """Where containerd on the nodes reads registry host configuration (``config_path``)."""
        for patch in self.raw.get("containerdConfigPatches") or []:
            match = re.search(r'config_path\s*=\s*"([^"]+)"', patch)
            if match:
                return match.group(1)
        return DEFAULT_CERTS_DIR


class _LineMarks:
    """YAML line numbers of the config's values by JSON path, for kind's decode errors."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self.keys: dict[tuple[Any, ...], int] = {}
        with contextlib.suppress(yaml.YAMLError):
            self._walk(yaml.compose(text), ())

    def _walk(self, node: Any, path: tuple[Any, ...]) -> None:
        if node is None:
            return
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.keys[(*path, key.value)] = key.start_mark.line + 1
                self._walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))


_GO_STRUCTS = {"nodes": "Node", "networking": "Networking", "extraMounts": "Mount", "extraPortMappings": "PortMapping",
               "kubeadmConfigPatchesJSON6902": "PatchJSON6902"}


def _go_type(path: tuple[Any, ...]) -> str:
    """kind's Go type of the object at ``path`` (``v1alpha4.Node`` for ``nodes[0]``)."""
    keys = [p for p in path if isinstance(p, str)]
    return f"v1alpha4.{_GO_STRUCTS.get(keys[-1], 'Cluster') if keys else 'Cluster'}"


def _decode_errors(data: Any, text: str) -> list[str]:
    """Strict decoding: unknown fields and wrong types, as yaml.v3 words them (``line N: ...``)."""
    marks = _LineMarks(text)
    problems: list[tuple[int, str]] = []
    for err in validator("kind-cluster-v1alpha4.schema.json").iter_errors(data):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties":
            known = set(err.schema.get("properties", {}))
            for key in sorted(set(err.instance) - known):
                problems.append((marks.keys.get((*path, key), 0),
                                 f"field {key} not found in type {_go_type(path)}"))
        elif err.validator == "type":
            tag = {str: "!!str", bool: "!!bool", int: "!!int", float: "!!float", list: "!!seq", dict: "!!map",
                   type(None): "!!null"}.get(type(err.instance), "!!str")
            value = err.instance if not isinstance(err.instance, list | dict) else ""
            shown = f" `{value}`" if value != "" else ""
            problems.append((marks.lines.get(path, 0),
                             f"cannot unmarshal {tag}{shown} into {_GO_TYPES.get(str(err.validator_value), 'string')}"))
    return [f"line {line}: {msg}" for line, msg in sorted(problems)]


def _port_errors(mapping: dict[str, Any]) -> list[str]:
    out = []
    for key in ("hostPort", "containerPort"):
        port = mapping.get(key, 0)
        if port < -1 or port > 65535:
            out.append(f"invalid {key}: invalid port number: {port}")
    return out


def _duplicate_mapping(mappings: list[dict[str, Any]]) -> str | None:
    seen: dict[str, set[str]] = {}
    for m in mappings:
        if m.get("hostPort", 0) in (0, -1):
            continue
        listen = m.get("listenAddress") or "0.0.0.0"
        try:
            addr = str(ipaddress.ip_address(listen))
        except ValueError:
            return f"invalid listen address: {listen}"
        key = f"{m['hostPort']}/{m.get('protocol') or 'TCP'}"
        addr = "0.0.0.0" if addr == "::" else addr
        taken = seen.setdefault(key, set())
        if (addr == "0.0.0.0" and taken) or addr in taken or "0.0.0.0" in taken:
            return ("port mapping with same listen address, port and protocol already configured: "
                    f"{addr}:{key}")
        taken.add(addr)
    return None


def _subnet_error(value: str, family: str) -> str | None:
    nets = []
    for text in value.split(","):
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError as err:
            return f'failed to parse cidr value:"{text}" with error: {err}'
    versions = {n.version for n in nets}
    if family == "dual":
        if len(nets) > 2 or versions != {4, 6}:
            return "expected one (IPv4 or IPv6) CIDR or two CIDRs from each family for dual-stack networking"
    elif len(nets) > 1:
        return "only one CIDR allowed for single-stack networking"
    elif family == "ipv4" and versions != {4}:
        return "expected IPv4 CIDR for IPv4 family"
    elif family == "ipv6" and versions != {6}:
        return "expected IPv6 CIDR for IPv6 family"
    return None


def _aggregate(errors: list[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def validate(config: dict[str, Any], name: str) -> str | None:
    """kind's ``Cluster.Validate`` after defaulting: every problem, aggregated as kind prints them."""
    errors = []
    if not re.fullmatch(NAME_RE, name):
        errors.append(f"'{name}' is not a valid cluster name, cluster names must match `{NAME_RE}`")
    net = config.get("networking") or {}
    port = net.get("apiServerPort", 0)
    if port and (port < -1 or port > 65535):
        errors.append(f"invalid apiServerPort: invalid port number: {port}")
    family = net.get("ipFamily") or "ipv4"
    if family not in ("ipv4", "ipv6", "dual"):
        errors.append(f"invalid ipFamily: {family}")
    defaults = {"ipv4": ("10.244.0.0/16", "10.96.0.0/16"), "ipv6": ("fd00:10:244::/56", "fd00:10:96::/112"),
                "dual": ("10.244.0.0/16,fd00:10:244::/56", "10.96.0.0/16,fd00:10:96::/112")}.get(family, ("", ""))
    for key, label, default in (("podSubnet", "pod", defaults[0]), ("serviceSubnet", "service", defaults[1])):
        problem = _subnet_error(net.get(key) or default, family) if family in ("ipv4", "ipv6", "dual") else None
        if problem:
            errors.append(f"invalid {label} subnet {problem}")
    mode = net.get("kubeProxyMode") or "iptables"
    if mode not in ("iptables", "ipvs", "nftables", "none"):
        errors.append(f"invalid kubeProxyMode: {mode}")
    nodes = config.get("nodes") or [{"role": "control-plane"}]
    for i, node in enumerate(nodes):
        problems = []
        role = node.get("role") or "control-plane"
        if role not in ("control-plane", "worker"):
            problems.append(f'"{role}" is not a valid node role')
        mappings = node.get("extraPortMappings") or []
        for m in mappings:
            problems.extend(_port_errors(m))
        dup = _duplicate_mapping(mappings)
        if dup:
            problems.append(f"invalid portMapping: {dup}")
        if problems:
            errors.append(f"invalid configuration for node {i}: {_aggregate(problems)}")
    if not any((n.get("role") or "control-plane") == "control-plane" for n in nodes):
        errors.append("must have at least one control-plane node")
    return _aggregate(errors) if errors else None


def _registered_name(node: dict[str, Any], first: bool, container: str) -> str:
    """The node name kubeadm registers: a ``nodeRegistration.name`` patch, else the container's hostname."""
    wanted = "InitConfiguration" if first else "JoinConfiguration"
    for patch in node.get("kubeadmConfigPatches") or []:
        try:
            doc = yaml.safe_load(patch) or {}
        except yaml.YAMLError as err:
            raise Failure(f"failed to create cluster: failed to generate kubeadm config content: {err}") from None
        if isinstance(doc, dict) and doc.get("kind") == wanted:
            registered = (doc.get("nodeRegistration") or {}).get("name")
            if registered:
                return str(registered)
    return container


def load(path: str, name_override: str = "") -> ClusterConfig:
    """Read, decode, default and name the config as ``kind create cluster --config`` does.

    Raises :class:`Failure` with kind's message for a file it cannot read or decode; validation is
    separate (:func:`validate`), because kind checks for an existing cluster in between."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise Failure(f"failed to create cluster: error reading file: open {path}: "
                      f"{(err.strerror or str(err)).lower()}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise Failure(f"failed to create cluster: could not determine kind / apiVersion for config: yaml: {err}") \
            from None
    data = data if isinstance(data, dict) else {}
    if data.get("apiVersion") != API_VERSION:
        raise Failure(f"failed to create cluster: unknown apiVersion: {data.get('apiVersion') or ''}")
    if data.get("kind") != "Cluster":
        raise Failure(f"failed to create cluster: unknown kind {data.get('kind') or ''} for apiVersion: {API_VERSION}")
    problems = _decode_errors(data, text)
    if problems:
        raise Failure("failed to create cluster: unable to decode config: yaml: unmarshal errors:\n  "
                      + "\n  ".join(problems))
    name = name_override or data.get("name") or "kind"
    config = ClusterConfig(name, data)
    counts = {"control-plane": 0, "worker": 0}
    nodes = data.get("nodes") or [{"role": "control-plane"}]
    for i, node in enumerate(nodes):
        role = node.get("role") or "control-plane"
        counts[role] = counts.get(role, 0) + 1
        container = f"{name}-{role}{counts[role] if counts[role] > 1 else ''}"
        config.nodes.append(Node(i, role, container, _registered_name(node, i == 0, container),
                                 tuple(node.get("extraMounts") or ()), tuple(node.get("extraPortMappings") or ())))
    return config
