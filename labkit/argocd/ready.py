"""``python -m labkit.argocd.ready --url URL --kubeconfig FILE --wait SECONDS``: wait until Argo CD's API server
answers ``/api/version`` and its ``argocd-initial-admin-secret`` exists (what ``lab.argocd`` signs in with), or
exit 1 saying which is missing."""

from __future__ import annotations

import argparse

import requests

from ..core.waiting import ready_or_exit


def ready(url: str, kubeconfig: str) -> str:
    """"" when ready, else what is missing."""
    import kubernetes

    session = requests.Session()
    session.trust_env = False  # the published port is on this machine's loopback: never through a proxy
    try:
        session.get(f"{url}/api/version", timeout=5).raise_for_status()
    except requests.RequestException as err:
        return f"the API server does not answer: {err}"
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(kubeconfig))
    try:
        core.read_namespaced_secret("argocd-initial-admin-secret", "argocd")
    except kubernetes.client.ApiException as err:
        return f"no argocd-initial-admin-secret yet ({err.status})"
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.argocd.ready", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--wait", type=float, default=600)
    args = parser.parse_args(argv)
    ready_or_exit(lambda: ready(args.url, args.kubeconfig), "Argo CD", args.wait)


if __name__ == "__main__":
    main()
