"""The ``helm`` stand-in: ``upgrade --install`` records a release as helm 3 does, through the Kubernetes API.

Flags are helm 3's (``upgrade``'s own, the chart and values options, the global ones); the release name,
the chart (the harness's small repository index: charts whose API the sim serves itself) and every
``--values`` file are checked as helm checks them. The release is helm's storage object: the Secret
``sh.helm.release.v1.NAME.vN`` of type ``helm.sh/release.v1`` (base64 of the gzipped release JSON, labels
name/owner/status/version), written with the real kubectl through the given kubeconfig. ``--wait`` waits
until the chart's API answers. Errors are printed ``Error: ...`` with exit 1, as helm does.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .flags import Command, Failure, Parsed, UsageError, flags, parse, subcommand
from .state import KUBECTL_ENV, State, wait_for

VERSION = "v3.21.4+g1b2e1b4"
# The harness's chart repositories: URL → chart → versions, and the API a release waits for.
CHARTS = {"https://kubernetes-sigs.github.io/metrics-server/": {
    "metrics-server": {"versions": ["3.13.1", "3.13.0", "3.12.2"], "app_version": "0.8.0",
                       "ready": "/apis/metrics.k8s.io/v1beta1/nodes"}},
          # the runner of the GitLab chapter: its release is recorded; the sim's GitLab runs the jobs itself, with
          # what the chart's job pods would have (runnerpods.py)
          "https://charts.gitlab.io/": {
    "gitlab-runner": {"versions": ["0.76.0"], "app_version": "v17.11.0", "ready": "/version"}},
          # the lab registry on kind: the sim's Harbor as the release's pods, behind the chart's NodePort (harbor.py);
          # the install returns once it serves, so --wait has nothing more to wait for
          "https://helm.goharbor.io/": {
    "harbor": {"versions": ["1.19.1"], "app_version": "2.15.1", "ready": None}},
          # Argo CD: the sim's Argo CD (API server and controller) as the release's pods, behind argocd-server's
          # NodePort (argocd.py); the install returns once it serves
          "https://argoproj.github.io/argo-helm/": {
    "argo-cd": {"versions": ["9.0.0"], "app_version": "v3.1.8", "ready": None}},
          # Prometheus: the sim's Prometheus as the release's, behind its NodePort (prometheus.py)
          "https://prometheus-community.github.io/helm-charts/": {
    "kube-prometheus-stack": {"versions": ["45.7.1"], "app_version": "v0.63.0", "ready": None}},
          # logging: the sim's Elasticsearch behind the chart's NodePort, Kibana's values checked only, and the sim's
          # Fluent Bit on every node (logging.py)
          "https://helm.elastic.co/": {
    "elasticsearch": {"versions": ["8.5.1"], "app_version": "8.5.1", "ready": None},
    "kibana": {"versions": ["8.5.1"], "app_version": "8.5.1", "ready": None}},
          "https://fluent.github.io/helm-charts/": {
    "fluent-bit": {"versions": ["0.58.1"], "app_version": "5.1.1", "ready": None}},
          # the mesh: Istio's CRDs, the sim's istiod and Jaeger as the releases' pods, the gateway's objects and
          # Kiali's values checked only (mesh.py)
          "https://istio-release.storage.googleapis.com/charts/": {
    chart: {"versions": ["1.27.9"], "app_version": "1.27.9", "ready": None} for chart in ("base", "istiod", "gateway")},
          "https://jaegertracing.github.io/helm-charts/": {
    "jaeger": {"versions": ["4.11.1"], "app_version": "2.19.0", "ready": None}},
          "https://kiali.org/helm-charts/": {
    "kiali-server": {"versions": ["2.12.0"], "app_version": "v2.12.0", "ready": None}}}
RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GLOBAL = flags(
    "namespace/n kubeconfig kube-context kube-token kube-as-user kube-as-group:stringArray kube-apiserver "
    "kube-ca-file kube-tls-server-name kube-insecure-skip-tls-verify:bool debug:bool registry-config "
    "repository-config repository-cache burst-limit:int qps")
UPGRADE = Command("helm upgrade", "helm upgrade [RELEASE] [CHART] [flags]", flags(
    "create-namespace:bool install/i:bool devel:bool dry-run hide-secret:bool recreate-pods:bool force:bool "
    "no-hooks:bool disable-openapi-validation:bool skip-crds:bool timeout:duration reset-values:bool "
    "reuse-values:bool reset-then-reuse-values:bool wait:bool wait-for-jobs:bool atomic:bool history-max:int "
    "cleanup-on-fail:bool render-subchart-notes:bool hide-notes:bool skip-schema-validation:bool "
    "labels/l:stringToString description dependency-update:bool enable-dns:bool take-ownership:bool "
    "version verify:bool keyring repo username password cert-file key-file insecure-skip-tls-verify:bool "
    "plain-http:bool ca-file pass-credentials:bool values/f:strings set:stringArray set-string:stringArray "
    "set-file:stringArray set-json:stringArray set-literal:stringArray output/o post-renderer "
    "post-renderer-args:stringArray") + GLOBAL, 2, 2)
COMMANDS = {"upgrade": UPGRADE, "version": Command("helm version", "helm version [flags]",
                                                   flags("short:bool template") + GLOBAL)}
SUPPORTED = {"install", "version", "repo", "namespace", "values", "kubeconfig", "kube-context", "wait", "timeout",
             "create-namespace", "debug", "description", "atomic", "history-max"}


def main(argv: list[str]) -> int:
    """``helm ARGS``: the exit code; errors on stderr as ``Error: ...``."""
    try:
        command, rest = subcommand(COMMANDS, "helm", argv, GLOBAL)
        opts = parse(command, rest)
        if command.path == "helm version":
            print(VERSION if opts.get("short") else f'version.BuildInfo{{Version:"{VERSION.split("+")[0]}"}}')
            return 0
        return upgrade(State.from_env(), opts)
    except UsageError as err:
        usage = f"\n\nUsage:  {err.command.usage}" if err.command and "requires" in err.message else ""
        print(f"Error: {err.message}{usage}", file=sys.stderr)
        return 1
    except Failure as err:
        print(f"Error: {err.message}", file=sys.stderr)
        return err.code


class Kube:
    """The Kubernetes API as helm's client reaches it: the given kubeconfig (and context), the real kubectl."""

    def __init__(self, opts: Parsed) -> None:
        self.base = [os.environ.get(KUBECTL_ENV, "kubectl")]
        if opts.get("kubeconfig"):
            self.base += ["--kubeconfig", opts["kubeconfig"]]
        if opts.get("kube-context"):
            self.base += ["--context", opts["kube-context"]]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.base, *args], capture_output=True, text=True, input=stdin, timeout=60)
        if check and res.returncode != 0:
            raise Failure(res.stderr.strip().removeprefix("Error from server ").removeprefix("error: "))
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


def _values(paths: list[str]) -> dict[str, Any]:
    """The merged ``--values`` files, refused as helm refuses them."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            raise Failure(f"open {path}: no such file or directory") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            raise Failure(f"failed to parse {path}: error converting YAML to JSON: yaml: {where}{problem}") from None
        if data is not None and not isinstance(data, dict):
            kind = "array" if isinstance(data, list) else "string" if isinstance(data, str) else "number"
            raise Failure(f"failed to parse {path}: error unmarshaling JSON: while decoding JSON: json: cannot "
                          f"unmarshal {kind} into Go value of type map[string]interface {{}}")
        merged.update(data or {})
    return merged


def _chart(opts: Parsed) -> tuple[str, str, dict[str, Any]]:
    """(chart, version, index entry) that ``--repo`` and ``--version`` locate."""
    chart, repo, version = opts.args[1], opts.get("repo") or "", opts.get("version") or ""
    if not repo:
        raise Failure(f"the kind harness installs charts from a repository (--repo), not {chart}")
    index = CHARTS.get(repo if repo.endswith("/") else repo + "/")
    if index is None:
        raise Failure(f'looks like "{repo}" is not a valid chart repository or cannot be reached: the kind harness '
                      f"knows {', '.join(CHARTS)}")
    entry = index.get(chart)
    wanted = f'chart "{chart}"' + (f' version "{version}"' if version else "")
    if entry is None or (version and version not in entry["versions"]):
        raise Failure(f"{wanted} not found in {repo} repository")
    return chart, version or entry["versions"][0], entry


def _release(name: str, ns: str, chart: str, version: str, entry: dict[str, Any], values: dict[str, Any],
             revision: int, first: str, description: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"name": name, "namespace": ns, "version": revision, "config": values, "manifest": "",
            "info": {"first_deployed": first or now, "last_deployed": now, "deleted": "",
                     "description": description, "status": "deployed"},
            "chart": {"metadata": {"name": chart, "version": version, "appVersion": entry["app_version"],
                                   "apiVersion": "v2"}}}


def _secret(release: dict[str, Any]) -> dict[str, Any]:
    """helm's storage object for a release: gzipped JSON, base64 (the driver's), base64 (the Secret's data)."""
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode(), 9)).decode()
    name, revision = release["name"], release["version"]
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": release["namespace"],
                         "labels": {"name": name, "owner": "helm", "status": release["info"]["status"],
                                    "version": str(revision), "modifiedAt": str(int(time.time()))}},
            "data": {"release": base64.b64encode(packed.encode()).decode()}}


def upgrade(state: State, opts: Parsed) -> int:
    unsupported = sorted(set(opts.values) - SUPPORTED)
    if unsupported:
        raise Failure(f"the kind harness does not emulate helm upgrade {', '.join('--' + f for f in unsupported)}")
    name, ns = opts.args[0], opts.get("namespace") or "default"
    kube = Kube(opts)
    if not RELEASE_NAME.match(name) or len(name) > 53:
        raise Failure(f"release name is invalid: {name}")
    try:
        secrets = kube.json("get", "secrets", "-n", ns, "-l", f"owner=helm,name={name}")["items"]
    except Failure as err:
        raise Failure(f"Kubernetes cluster unreachable: {err.message}") from None
    revisions = sorted(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    installing = not revisions
    if installing and not opts.get("install"):
        raise Failure(f'UPGRADE FAILED: "{name}" has no deployed releases')
    failed = "INSTALLATION FAILED" if installing else "UPGRADE FAILED"
    if installing:
        print(f'Release "{name}" does not exist. Installing it now.')
    chart, version, entry = _chart(opts)
    values = _values(opts.get("values") or [])
    if installing and kube.run("get", "namespace", ns, check=False).returncode != 0:
        if not opts.get("create-namespace"):
            raise Failure(f'{failed}: create: failed to create: namespaces "{ns}" not found')
        kube.run("create", "namespace", ns)
    first = ""
    if revisions:
        last = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(revisions[-1]["data"]["release"]))))
        first = last["info"]["first_deployed"]
    revision = int(revisions[-1]["metadata"]["labels"]["version"]) + 1 if revisions else 1
    release = _release(name, ns, chart, version, entry, values, revision, first,
                       opts.get("description") or ("Install complete" if installing else "Upgrade complete"))
    try:
        kube.run("create", "-f", "-", stdin=json.dumps(_secret(release)))
    except Failure as err:
        raise Failure(f"{failed}: {err.message}") from None
    for old in revisions:
        if old["metadata"]["labels"].get("status") == "deployed":
            kube.run("label", "secret", "-n", ns, old["metadata"]["name"], "status=superseded", "--overwrite")
    if chart == "harbor":
        from . import harbor

        try:
            harbor.install(state, harbor.cluster_of(kube.run), kube.run, ns, name, values)
        except Failure as err:
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: {err.message}") from None
    if chart == "argo-cd":
        from . import argocd, harbor

        try:
            argocd.install(state, harbor.cluster_of(kube.run), kube.run, opts.get("kubeconfig") or "", ns, name,
                           values)
        except Failure as err:
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: {err.message}") from None
    if chart == "kube-prometheus-stack":
        from . import harbor, prometheus

        try:
            prometheus.install(state, harbor.cluster_of(kube.run), kube.run, opts.get("kubeconfig") or "", ns, name,
                               values)
        except Failure as err:
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: {err.message}") from None
    if chart in ("elasticsearch", "kibana", "fluent-bit"):
        from . import harbor, logging

        try:
            cluster = harbor.cluster_of(kube.run)
            if chart == "elasticsearch":
                logging.install_elasticsearch(state, cluster, kube.run, ns, name, values)
            elif chart == "kibana":
                logging.check_kibana(kube.run, ns, values)
            else:
                logging.install_fluent_bit(state, cluster, kube.run, opts.get("kubeconfig") or "", ns, name, values)
        except Failure as err:
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: {err.message}") from None
    if chart in ("base", "istiod", "gateway", "jaeger", "kiali-server"):
        from . import harbor, mesh

        try:
            mesh.install(state, harbor.cluster_of(kube.run), kube.run, opts.get("kubeconfig") or "", ns, name, chart,
                         values)
        except Failure as err:
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: {err.message}") from None
    if (opts.get("wait") or opts.get("atomic")) and entry["ready"]:
        last: list[str] = []

        def answers() -> bool:
            res = kube.run("get", "--raw", entry["ready"], "--request-timeout=10s", check=False)
            last[:] = [res.stderr.strip()]
            return res.returncode == 0

        if not wait_for(answers, opts.get("timeout", 300.0), 0.5):
            kube.run("label", "secret", "-n", ns, f"sh.helm.release.v1.{name}.v{revision}", "status=failed",
                     "--overwrite")
            raise Failure(f"{failed}: context deadline exceeded\n(the kind harness waited for GET {entry['ready']}: "
                          f"{last[0] if last else ''})")
    if chart == "gitlab-runner":  # its job pods' credentials and relays, for the GitLab stand-in's runner
        from . import runnerpods

        runnerpods.provide(state, kube.run, values)
    deployed = datetime.now().strftime("%a %b %e %H:%M:%S %Y")
    if not installing:
        print(f'Release "{name}" has been upgraded. Happy Helming!')
    print(f"NAME: {name}\nLAST DEPLOYED: {deployed}\nNAMESPACE: {ns}\nSTATUS: deployed\nREVISION: {revision}\n"
          "TEST SUITE: None")
    return 0
