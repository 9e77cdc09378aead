"""The harness's few contacts with labkit's sim backend: the lab that stands behind a "kind cluster".

A kind cluster of the harness is a sim lab in a home of the harness's own, started and stopped with the
``labkit`` command; its nodes are stopped and started through ``labkit.control.action``; where its API
servers listen is read from its ``endpoints.json``, its nodes' addresses from the Node objects (with the
real kubectl), its admin credentials from its own kubeconfig; its nodes are ``SERVERS`` and ``AGENTS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from labkit.core.addresses import AGENTS, SERVERS
from labkit.core.files import read_json, write_json

from .flags import Failure

LABKIT = Path(sys.executable).parent / "labkit"
KUBERNETES = "kubernetes"  # the product whose actions stop and start nodes and API servers
__all__ = ["AGENTS", "SERVERS", "api_servers", "kubeconfig", "node_action", "node_addresses", "start", "stop"]
# labkit settings that must not leak from the kind lab's caller into the sim lab behind it
_OWN_ENV = ("LABKIT_BACKEND", "LABKIT_KUBECTL", "LABKIT_KIND_PROFILE", "KUBECONFIG")


def _labkit(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV and not k.startswith("STANDIN_")}
    env["LABKIT_HOME"] = str(home)
    return subprocess.run([str(LABKIT), *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start(home: Path, settings: dict[str, Any]) -> None:
    """Start a sim lab in ``home`` with these ``settings.json`` values (``skip``, ``registry_mirrors``)."""
    home.mkdir(parents=True, exist_ok=True)
    write_json(home / "settings.json", settings)
    res = _labkit(home, "up", "--backend", "sim")
    if res.returncode != 0:
        raise Failure(f"the harness could not start the sim lab behind the cluster:\n{res.stderr.strip()}")


def stop(home: Path) -> None:
    """Stop the sim lab in ``home`` and everything it started."""
    res = _labkit(home, "down", timeout=120)
    if res.returncode != 0:
        raise Failure(f"the harness could not stop the sim lab in {home}:\n{res.stderr.strip()}")


def kubeconfig(home: Path) -> dict[str, Any]:
    """The sim lab's admin kubeconfig (its CA, its token)."""
    return yaml.safe_load((home / "kubeconfig").read_text())


def _kubernetes(home: Path) -> dict[str, Any]:
    data = read_json(home / "endpoints.json") or {}
    product = (data.get("products") or {}).get(KUBERNETES)
    if not product:
        raise Failure(f"the sim lab in {home} publishes no {KUBERNETES!r} endpoint")
    return product


def api_servers(home: Path) -> list[tuple[str, int]]:
    """(host, port) of each API server, in server order (server-1 first)."""
    return [_host_port(url) for url in _kubernetes(home)["servers"]]


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def node_addresses(home: Path, kubectl: str) -> dict[str, str]:
    """Node name → its InternalIP, from the Node objects."""
    res = subprocess.run([kubectl, "--kubeconfig", str(home / "kubeconfig"), "get", "nodes", "-o", "json"],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise Failure(f"the harness could not list the sim lab's nodes: {res.stderr.strip()}")
    out = {}
    for node in json.loads(res.stdout)["items"]:
        ips = [a["address"] for a in node["status"].get("addresses", []) if a["type"] == "InternalIP"]
        if ips:
            out[node["metadata"]["name"]] = ips[0]
    return out


def node_action(home: Path, node: str, start: bool, server: bool) -> None:
    """Stop or start a node (its kubelet, NodePorts) and, for a control-plane node, its API server."""
    from labkit import control
    from labkit.core.paths import LabPaths

    paths = LabPaths.resolve(home)
    verb = "start" if start else "stop"
    try:
        if server and start:
            control.action(paths, KUBERNETES, "server-start", server=node)
        control.action(paths, KUBERNETES, f"node-{verb}", name=node)
        if server and not start:
            control.action(paths, KUBERNETES, "server-stop", server=node)
    except Exception as err:  # the lab's own words, whatever its type
        raise Failure(f"the harness could not {verb} node {node}: {err}") from None
