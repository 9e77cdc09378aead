"""The Lab facade notebooks use: endpoints, chapters, checks and progress."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from . import control
from .backends import resolve_backend
from .chapters import chapter as _chapter
from .checks import CheckFailed, Progress, interactive, show
from .core.errors import LabError
from .core.files import read_json, write_json
from .core.paths import LabPaths
from .haproxy.lab import HAProxyView
from .kubeclient import is_ready
from .traffic import Traffic


class Lab:
    """A connection to one running lab (sim or kind), found through its home folder."""

    def __init__(self, paths: LabPaths, backend: str, endpoints: dict[str, Any]) -> None:
        self.paths = paths
        self.backend = backend
        self.endpoints = endpoints

    @classmethod
    def connect(cls, backend: str | None = None, home: str | os.PathLike[str] | None = None,
                start: bool = True) -> Lab:
        """Connect to the lab in ``home`` (default ``$LABKIT_HOME``), starting it if needed."""
        paths = LabPaths.resolve(home)
        name = resolve_backend(backend, paths)
        ep = control.endpoints(paths)
        if ep and ep.get("backend") != name:
            raise control.LabError(
                f"this lab home runs the {ep.get('backend')} backend, not {name}: "
                f"`labkit down` first, or use another LABKIT_HOME")
        if not ep:
            if not start:
                raise control.LabError("the lab is not running: start it with `labkit up`")
            ep = control.up(paths, backend=name)
        return cls(paths, name, ep)

    def __repr__(self) -> str:
        return f"<Lab {self.backend} at {self.paths.home}>"

    # -- where things are -------------------------------------------------
    def refresh(self) -> Lab:
        self.endpoints = control.endpoints(self.paths) or self.endpoints
        return self

    @property
    def kubeconfig(self) -> str:
        """Path of the lab's kubeconfig (admin credentials)."""
        return self.endpoints["kubeconfig"]

    def url(self, name: str) -> str:
        """The URL of component ``name`` (e.g. ``"kube-apiserver"``)."""
        comps = self.endpoints.get("components", {})
        if name not in comps:
            raise KeyError(f"no component {name!r} in this lab; there are: {', '.join(sorted(comps))}")
        return comps[name]["url"]

    def status(self) -> pd.DataFrame:
        """Every component with its endpoint and health, as a DataFrame."""
        df = pd.DataFrame(control.status(self.paths), columns=["name", "title", "url", "healthy", "detail"])
        return df.set_index("name")

    # -- chapters and checks ----------------------------------------------
    @property
    def current_chapter(self) -> int:
        return int((read_json(self.paths.home / "chapter.json", {}) or {}).get("chapter", 0))

    def chapter(self, number: int) -> Lab:
        """Bring the lab (idempotently) to chapter ``number``'s starting state."""
        _chapter(number)  # an unknown number is an error before anything changes
        for earlier in range(number + 1):
            _chapter(earlier).prepare(self)
        write_json(self.paths.home / "chapter.json", {"chapter": number})
        return self

    def check(self, name: str, condition: Any, hint: str = "") -> bool:
        """A learner check: shows pass/fail with the hint, records it, raises when not interactive."""
        passed = bool(condition)
        Progress(self.paths).record(self.current_chapter, name, passed, hint)
        show(name, passed, hint)
        if not passed and not interactive():
            raise CheckFailed(f"check failed: {name}" + (f" — hint: {hint}" if hint else ""))
        return passed

    def progress(self) -> pd.DataFrame:
        """The latest result of every recorded check."""
        rows = Progress(self.paths).latest()
        df = pd.DataFrame(rows, columns=["chapter", "name", "passed", "hint", "at", "attempts"])
        df["passed"] = df["passed"].astype(bool)
        df["at"] = pd.to_datetime(df["at"], unit="s")
        return df

    # -- lessons ------------------------------------------------------------
    @property
    def haproxy(self) -> HAProxyView:
        """HAProxy's stats and Runtime API (drain, disable, enable servers; reload)."""
        return HAProxyView(self)

    def traffic(self, rps: float = 20, seconds: float = 10, url: str | None = None) -> Traffic:
        """Send ``rps`` requests a second for ``seconds`` to ``url`` (default: the shop through HAProxy), in the
        background; ``.result()`` gives one row per request (time, status, latency_ms, pod)."""
        return Traffic(url or self.url("haproxy"), rps, seconds)

    def node_stop(self, name: str) -> str:
        """Stop a node (e.g. ``agent-1``): its pods' processes stop and it goes NotReady."""
        return control.action(self.paths, "kube-apiserver", "node-stop", name=name)

    def node_start(self, name: str) -> str:
        return control.action(self.paths, "kube-apiserver", "node-start", name=name)

    def api_server_stop(self, number: int) -> str:
        """Stop API server ``number`` (1-3, as ``server-N``), as if its control-plane node went down."""
        return control.action(self.paths, "kube-apiserver", "server-stop", index=number - 1)

    def api_server_start(self, number: int) -> str:
        return control.action(self.paths, "kube-apiserver", "server-start", index=number - 1)

    def service_url(self, namespace: str, name: str, port: int | str | None = None) -> str:
        """A URL this machine can reach for a Service: a node's address and the NodePort for NodePort
        Services; otherwise one ready endpoint (what ``kubectl port-forward svc/NAME`` would pick)."""
        core = self.core()
        svc = core.read_namespaced_service(name, namespace)
        ports = [p for p in svc.spec.ports if port in (None, p.port, p.name)]
        if not ports:
            raise KeyError(f"service {namespace}/{name} has no port {port!r}")
        if svc.spec.type in ("NodePort", "LoadBalancer") and ports[0].node_port:
            nodes = [n for n in core.list_node().items if not (n.spec.taints or []) and is_ready(n)]
            address = next(a.address for a in nodes[0].status.addresses if a.type == "InternalIP")
            return f"http://{address}:{ports[0].node_port}"
        for subset in core.read_namespaced_endpoints(name, namespace).subsets or []:
            for addr in subset.addresses or []:
                target = next((p.port for p in subset.ports if p.name == ports[0].name), subset.ports[0].port)
                return f"http://{addr.ip}:{target}"
        raise LabError(f"service {namespace}/{name} has no ready endpoint: "
                       f"`kubectl get endpoints -n {namespace} {name}`")

    # -- clients ------------------------------------------------------------
    def kubectl(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the lab's ``kubectl`` with its kubeconfig; ``check`` raises with kubectl's own message."""
        res = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and res.returncode != 0:
            raise LabError(f"kubectl {' '.join(args)}: {res.stderr.strip() or res.stdout.strip()}")
        return res

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the lab (the official Python client)."""
        import kubernetes

        return kubernetes.config.new_client_from_config(self.kubeconfig)

    def core(self) -> Any:
        """``kubernetes.client.CoreV1Api`` for the lab: pods, services, nodes, events."""
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api_client())

    def apps(self) -> Any:
        """``kubernetes.client.AppsV1Api`` for the lab: deployments, replica sets."""
        import kubernetes

        return kubernetes.client.AppsV1Api(self.api_client())

    def env(self) -> dict[str, str]:
        """Environment for tools run from a notebook (kubectl on PATH, KUBECONFIG)."""
        bin_dir = str(Path(sys.executable).parent)
        return {**os.environ, "KUBECONFIG": self.kubeconfig, "LABKIT_HOME": str(self.paths.home),
                "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
