"""``lab.kubernetes``: the lab's cluster from a notebook, the same on every backend.

The official client for the API, ``kubectl`` for what a person would type, nodes and API servers stopped
and started for the lessons, and ``kubectl port-forward`` / ``kubectl exec`` to reach a pod or a Service:
nothing here touches a pod IP or a node address from this machine (a Docker Desktop host cannot reach
them).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from ..core.addresses import NODES, SERVERS
from ..core.errors import LabError
from ..core.procs import terminate
from ..core.view import ProductView
from ..core.waiting import until
from ..endpoints import KubernetesEndpoint
from ..kubeclient import is_ready

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


class KubernetesView(ProductView):
    @property
    def endpoint(self) -> KubernetesEndpoint:
        return self.lab.endpoints.get(KubernetesEndpoint)

    # -- clients --------------------------------------------------------------------------------
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the lab (the official Python client), with the lab's kubeconfig."""
        import kubernetes

        return kubernetes.config.new_client_from_config(self.lab.kubeconfig)

    def core(self) -> Any:
        """``kubernetes.client.CoreV1Api``: pods, services, nodes, events."""
        import kubernetes

        return kubernetes.client.CoreV1Api(self.api_client())

    def apps(self) -> Any:
        """``kubernetes.client.AppsV1Api``: deployments, replica sets."""
        import kubernetes

        return kubernetes.client.AppsV1Api(self.api_client())

    # -- lessons ----------------------------------------------------------------------------------
    def node_stop(self, name: str) -> str:
        """Stop a node (``agent-1``): its pods' processes or containers stop and it goes NotReady."""
        return self.lab.action("kubernetes", "node-stop", name=name)

    def node_start(self, name: str) -> str:
        return self.lab.action("kubernetes", "node-start", name=name)

    def api_server_stop(self, server: str) -> str:
        """Stop the API server of a server node (``server-1``), as if that control-plane node went down."""
        return self.lab.action("kubernetes", "server-stop", server=server)

    def api_server_start(self, server: str) -> str:
        return self.lab.action("kubernetes", "server-start", server=server)

    def repair(self) -> list[str]:
        """Every API server and node started again (idempotent) and uncordoned, every node Ready without the node
        lifecycle's taints; returns what it repaired."""
        done = [msg for server in SERVERS if "already" not in (msg := self.api_server_start(server))]
        done += [msg for node in NODES if "already" not in (msg := self.node_start(node))]
        core = self.core()
        for node in core.list_node().items:
            if node.spec.unschedulable:
                core.patch_node(node.metadata.name, {"spec": {"unschedulable": False}})  # kubectl uncordon
                done.append(f"node {node.metadata.name} uncordoned")

        def settled() -> bool:
            return all(is_ready(n) and not any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])
                       for n in core.list_node().items)

        if not until(settled, self.lab.timings.not_ready_seconds + 60, every=0.5):
            raise LabError("the nodes are not all Ready again: `kubectl get nodes`, `kubectl describe node NAME`")
        return done

    # -- reaching pods ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def port_forward(self, target: str, port: int, namespace: str = "default",
                     timeout: float = 15.0) -> Iterator[str]:
        """``kubectl port-forward TARGET :PORT`` for as long as the ``with`` lasts; yields ``http://127.0.0.1:N``.

        ``target`` is what kubectl takes: ``pod/NAME``, ``svc/NAME``, ``deploy/NAME``.
        """
        proc = subprocess.Popen([self.lab.kubectl_path(), "port-forward", "-n", namespace, target, f":{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.lab.env())
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                match = FORWARDING.match(line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            ready.wait(timeout)
            if not found:
                proc.kill()
                _, err = proc.communicate(timeout=5)
                raise LabError(f"kubectl port-forward -n {namespace} {target} :{port} did not start in "
                               f"{timeout:.0f} s: {err.strip() or 'no output'}")
            yield f"http://127.0.0.1:{found[0]}"
        finally:
            terminate(proc)

    def exec(self, pod: str, *command: str, namespace: str = "default", container: str | None = None,
             stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl exec POD -- COMMAND...`` (``-i`` when ``stdin`` is given); kubectl's result."""
        args = ["exec", "-n", namespace, *(["-i"] if stdin is not None else []),
                *(["-c", container] if container else []), pod, "--", *command]
        return self.lab.kubectl(*args, input=stdin, timeout=timeout)
