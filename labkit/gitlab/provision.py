"""Makes a fresh GitLab the lab's, through its REST API only (GitLab CE on kind, or the simulator):

* a personal access token for ``root`` (the OAuth password grant with the root password, then the users API),
  written to a 0600 file;
* the ``shop`` group with ``shop/shop`` (``apps/``) and ``shop/manifests`` (``manifests/apps/``), whose job
  token allowlist lets the shop's jobs in;
* the instance CI/CD variables the shop's pipeline needs (``CI_REGISTRY``: the lab registry as the cluster names
  it; GitLab CE's own registry is off, so GitLab leaves it unset; ``HARBOR_USER``/``HARBOR_PASSWORD``: Harbor's CI
  robot, which ``python -m labkit.registry.provision`` made, masked; ``MANIFESTS_USER``/``MANIFESTS_TOKEN``: a
  ``write_repository`` token the deploy job commits image tags to ``shop/manifests`` with, masked), set through
  the admin API;
* an instance runner's authentication token, written into the gitlab-runner chart's values: the Kubernetes
  executor, its job pods under the ``shop-deployer`` service account (the kind backend binds it to a Role in
  namespace ``shop``) with relays beside each job: ``localhost:5001`` in the pod is Harbor's Service, as
  ``localhost:5001`` is Harbor for containerd on the nodes, and GitLab's port on ``127.0.0.1`` (its external
  URL's) is GitLab's.

Each step is skipped when already done, so ``labkit up`` may run it again.
``python -m labkit.gitlab.provision --home H --url U --cluster-url C --out DIR``.
"""

from __future__ import annotations

import argparse
import base64
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import gitlab
import requests
import yaml

from ..core.checkout import Checkout
from ..core.files import write_atomic
from ..core.paths import LabPaths
from ..core.secrets import GITLAB_ROOT_PASSWORD, Secrets
from ..images.harbor import CI_ROBOT, SHOP_PROJECT, ci_secret, robot_name
from .manifests_access import TOKEN, api_variables
from .registry_access import harbor_variables
from .seed import MANIFESTS, SHOP, files_of

SCOPES = ["api", "read_repository", "write_repository"]
JOB_SERVICE_ACCOUNT = "shop-deployer"  # the job pods' service account (manifests/kind/gitlab-runner-rbac.yaml)


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only: never through a proxy
    return s


def root_client(url: str, password: str, token_file: Path) -> gitlab.Gitlab:
    """A client with root's personal access token, created (and saved) on first use."""
    if token_file.is_file():
        gl = gitlab.Gitlab(url, private_token=token_file.read_text().strip(), session=_session())
        try:
            gl.auth()
            return gl
        except gitlab.GitlabAuthenticationError:
            pass
    r = _session().post(f"{url}/oauth/token", data={"grant_type": "password", "username": "root",
                                                     "password": password}, timeout=60)
    r.raise_for_status()
    oauth = gitlab.Gitlab(url, oauth_token=r.json()["access_token"], session=_session())
    oauth.auth()
    expires = (date.today() + timedelta(days=364)).isoformat()
    token = oauth.users.get(oauth.user.id).personal_access_tokens.create(
        {"name": "labkit", "scopes": SCOPES, "expires_at": expires}).token
    write_atomic(token_file, token + "\n", mode=0o600)
    gl = gitlab.Gitlab(url, private_token=token, session=_session())
    gl.auth()
    return gl


def seed_projects(gl: gitlab.Gitlab, checkout: Checkout) -> None:
    """The ``shop`` group and its two projects, each with its files in one first commit."""
    groups = [g for g in gl.groups.list(search="shop", get_all=True) if g.full_path == "shop"]
    group = groups[0] if groups else gl.groups.create({"name": "shop", "path": "shop", "visibility": "private"})
    for path, folder in ((SHOP, checkout.root / "apps"), (MANIFESTS, checkout.root / "manifests" / "apps")):
        try:
            gl.projects.get(path)
            continue
        except gitlab.GitlabGetError:
            pass
        project = gl.projects.create({"name": path.split("/")[1], "path": path.split("/")[1],
                                      "namespace_id": group.id, "visibility": "private", "default_branch": "main"})
        actions = [{"action": "create", "file_path": name, "encoding": "base64",
                    "content": base64.b64encode(data).decode()} for name, data in files_of(folder).items()]
        project.commits.create({"branch": "main", "commit_message": "Initial commit", "actions": actions})
    shop, manifests = gl.projects.get(SHOP), gl.projects.get(MANIFESTS)
    allowlist = manifests.job_token_scope.get().allowlist
    if shop.id not in [p.id for p in allowlist.list(get_all=True)]:  # the shop's jobs read the manifests
        allowlist.create({"target_project_id": shop.id})


def instance_variables(gl: gitlab.Gitlab, wanted: dict[str, str], masked: frozenset[str] = frozenset()) -> None:
    """Set the instance's CI/CD variables (Admin area → CI/CD → Variables), creating or updating each; ``masked``
    names the ones GitLab hides in job logs."""
    have = {v.key: v for v in gl.variables.list(get_all=True)}
    for key, value in wanted.items():
        if key not in have:
            gl.variables.create({"key": key, "value": value, "raw": True, "masked": key in masked,
                                 "description": "set by labkit's provisioning for the shop's pipeline"})
        elif have[key].value != value:
            have[key].value = value
            have[key].save()


def relay_command(listen_port: int, target: str) -> list[str]:
    """socat's arguments for a job pod's relay: ``localhost:<listen_port>`` → ``target`` (host:port)."""
    return [f"TCP-LISTEN:{listen_port},fork,reuseaddr", f"TCP:{target}"]


def runner_values(gl: gitlab.Gitlab, cluster_url: str, values_file: Path, registry: str = "",
                  registry_target: str = "", relay_image: str = "", concurrent: int = 2,
                  more_relays: tuple[tuple[str, int, str], ...] = ()) -> None:
    """The gitlab-runner chart's values: an instance runner's token, the Kubernetes executor (job pods under the
    ``shop-deployer`` service account; with ``registry_target``, a relay service so that ``registry``, a
    ``localhost:<port>`` name, reaches it from the job's containers, which share the pod's network; and one to
    GitLab, whose external URL, and so the jobs' ``CI_SERVER_HOST``, is ``127.0.0.1``)."""
    if values_file.is_file():
        return
    runner = gl.user.runners.create({"runner_type": "instance_type", "description": "labkit kind runner",
                                     "run_untagged": True})
    config = (f'[[runners]]\n  clone_url = "{cluster_url}"\n  [runners.kubernetes]\n'
              '    namespace = "gitlab-runner"\n    image = "python:3.12-slim"\n'
              f'    service_account = "{JOB_SERVICE_ACCOUNT}"\n'
              '    cpu_request = "100m"\n    memory_request = "128Mi"\n')
    relays = []
    if registry_target:
        relays.append(("registry-relay", int(registry.rpartition(":")[2]), registry_target))
    if relay_image:  # the jobs' CI_SERVER_HOST is external_url's 127.0.0.1: in a pod, GitLab's container at that port
        gitlab_host = urlsplit(cluster_url)
        relays.append(("gitlab-relay", gitlab_host.port or 80, gitlab_host.netloc))
    relays += more_relays
    for alias, port, target in relays:
        command = ", ".join(f'"{a}"' for a in relay_command(port, target))
        config += (f'    [[runners.kubernetes.services]]\n      name = "{relay_image}"\n'
                   f'      alias = "{alias}"\n      command = [{command}]\n')
    values = {"gitlabUrl": cluster_url.rstrip("/") + "/", "runnerToken": runner.token, "concurrent": concurrent,
              "rbac": {"create": True}, "runners": {"config": config}}
    write_atomic(values_file, yaml.safe_dump(values, sort_keys=False), mode=0o600)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.gitlab.provision", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the lab home (its secrets hold root's password)")
    parser.add_argument("--url", required=True, help="GitLab from this machine")
    parser.add_argument("--cluster-url", required=True, help="GitLab from the cluster's pods (the runner's URL)")
    parser.add_argument("--out", type=Path, required=True, help="folder for root-token and runner-values.yaml")
    parser.add_argument("--registry", default="", help="the lab registry as pods name it (CI_REGISTRY)")
    parser.add_argument("--registry-target", default="",
                        help="host:port of the registry on the cluster's network (a job pod's relay goes there)")
    parser.add_argument("--relay-image", default="", help="the relay service's image (socat)")
    parser.add_argument("--pip-index", default="",
                        help="PIP_INDEX_URL for every job (the lab's Nexus group on a 127.0.0.1 port, relayed in each "
                             "job pod to --pip-target)")
    parser.add_argument("--pip-target", default="", help="host:port of Nexus on the cluster's network")
    parser.add_argument("--harbor-robot", action="store_true",
                        help="set HARBOR_USER/HARBOR_PASSWORD to Harbor's CI robot (labkit.registry.provision)")
    args = parser.parse_args(argv)
    password = Secrets(LabPaths(args.home).secrets).get(GITLAB_ROOT_PASSWORD)
    gl = root_client(args.url.rstrip("/"), password, args.out / "root-token")
    seed_projects(gl, Checkout.find())
    if args.registry:
        instance_variables(gl, {"CI_REGISTRY": args.registry})
    if args.harbor_robot:
        secrets = Secrets(LabPaths(args.home).secrets)
        robot = harbor_variables(robot_name(SHOP_PROJECT, CI_ROBOT), ci_secret(secrets))
        instance_variables(gl, {v.key: v.value for v in robot}, frozenset(v.key for v in robot if v.masked))
    # the deploy job commits image tags to shop/manifests with a token of its own (its job token only reads there)
    instance_variables(gl, api_variables(gl, {v.key for v in gl.variables.list(get_all=True)}), frozenset({TOKEN}))
    nexus_relay: tuple[tuple[str, int, str], ...] = ()
    if args.pip_index:  # the jobs' pip through the lab's Nexus: the same loopback URL as on this machine, relayed
        instance_variables(gl, {"PIP_INDEX_URL": args.pip_index})
        nexus_relay = (("nexus-relay", urlsplit(args.pip_index).port or 80, args.pip_target),)
    runner_values(gl, args.cluster_url, args.out / "runner-values.yaml", args.registry, args.registry_target,
                  args.relay_image, more_relays=nexus_relay)
    print(f"GitLab at {args.url} is provisioned: root's token in {args.out / 'root-token'}")


if __name__ == "__main__":
    main()
