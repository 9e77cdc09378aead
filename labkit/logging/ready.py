"""``python -m labkit.logging.ready --url URL --kubeconfig FILE --namespace NS --secret NAME --ca-file FILE
--password-file FILE --wait SECONDS``: on kind, copy the elasticsearch chart's CA (``ca.crt`` of its certificates
Secret) into ``--ca-file`` and wait until ``_cluster/health`` answers green or yellow for the ``elastic`` user, or
exit 1 saying what is missing."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import urllib3

from ..core.files import write_atomic
from ..core.waiting import ready_or_exit

USER = "elastic"


def cluster_health(url: str, user: str, password_file: Path, ca_file: Path) -> tuple[bool, str]:
    """(healthy, why not) of ``_cluster/health``, over HTTPS checked against the chart's CA. The chart's certificate
    names the in-cluster Service, not the laptop's 127.0.0.1, so the chain is verified and the host name is not."""
    if not ca_file.exists():
        return False, f"no CA yet ({ca_file})"
    pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca_file), assert_hostname=False, retries=False)
    headers = urllib3.make_headers(basic_auth=f"{user}:{password_file.read_text().strip()}")
    try:
        res = pool.request("GET", url.rstrip("/") + "/_cluster/health", headers=headers, timeout=5)
    except urllib3.exceptions.HTTPError as err:
        return False, f"Elasticsearch does not answer: {err}"
    if res.status != 200:
        return False, f"_cluster/health answered {res.status}: {res.data[:200].decode(errors='replace')}"
    status = json.loads(res.data).get("status")
    return status in ("green", "yellow"), f"cluster status {status}"


def copy_ca(kubeconfig: str, namespace: str, secret: str, ca_file: Path) -> str:
    """"" once the Secret's ``ca.crt`` is in ``ca_file``, else what is missing."""
    import kubernetes

    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(kubeconfig))
    try:
        data = core.read_namespaced_secret(secret, namespace).data or {}
    except kubernetes.client.ApiException as err:
        return f"no Secret {namespace}/{secret} yet ({err.status})"
    if "ca.crt" not in data:
        return f"the Secret {namespace}/{secret} has no ca.crt"
    write_atomic(ca_file, base64.b64decode(data["ca.crt"]), 0o644)
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.logging.ready", description=__doc__.splitlines()[0])
    for name in ("url", "kubeconfig", "namespace", "secret", "ca-file", "password-file"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--wait", type=float, default=600)
    args = parser.parse_args(argv)
    ca_file, password_file = Path(args.ca_file), Path(args.password_file)

    def problem() -> str:
        missing = copy_ca(args.kubeconfig, args.namespace, args.secret, ca_file)
        if missing:
            return missing
        ok, why = cluster_health(args.url, USER, password_file, ca_file)
        return "" if ok else why

    ready_or_exit(problem, "Elasticsearch", args.wait)


if __name__ == "__main__":
    main()
