"""GitLab's kind part through the contract harness: the compose service ``gitlab`` (GitLab CE, played by the
GitLab simulator reading the rendered ``gitlab.rb``), provisioning through its API, the runner chart."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import gitlab
import pytest
import yaml

from labkit.backends.kind.backend import render
from labkit.backends.kind.lab import KindLab
from labkit.core.secrets import Secrets
from labkit.gitlab.kind import GitLabKind
from labkit.images.harbor import ci_secret, service_address
from labkit.kube.kind import KubernetesKind
from labkit.registry.kind import RegistryKind

from .harness import Harness


def test_gitlab_ce_is_provisioned_and_the_runner_chart_installed(harness: Harness, rendered: KindLab,
                                                                tmp_path: Path) -> None:
    part = GitLabKind()
    render(rendered)
    rb = (part.folder(rendered) / "gitlab.rb").read_text()
    assert f"external_url 'http://127.0.0.1:{rendered.ports['gitlab']}'" in rb
    assert "puma['worker_processes'] = 0" in rb and "prometheus_monitoring['enable'] = false" in rb
    for cmd in KubernetesKind().create(rendered, False):
        rendered.run(cmd.argv)
    # HAProxy fronts the API servers (the kubeconfig's server) for helm; GitLab is the profile's service; Harbor
    # (the registry part, before GitLab's) is installed and provisioned first, as `labkit up` does
    rendered.run(rendered.compose("up", "--detach", "--wait", "haproxy", "gitlab", profiles=("gitlab",)))
    for cmd in [*RegistryKind().configure(rendered), *part.configure(rendered)]:
        rendered.run(cmd.argv)
    ep = part.endpoint(rendered)
    assert part.health(rendered, ep)[0]
    token = Path(ep.token_file).read_text().strip()
    assert oct(Path(ep.token_file).stat().st_mode & 0o777) == "0o600"
    gl = gitlab.Gitlab(ep.url, private_token=token)
    gl.auth()
    assert gl.user.username == "root"
    assert {p.path_with_namespace for p in gl.projects.list(get_all=True)} == {"shop/shop", "shop/manifests"}
    assert [r.runner_type for r in gl.runners_all.list(get_all=True)] == ["instance_type"]
    clone = subprocess.run(["git", "clone", "-q", f"http://root:{token}@{ep.url.removeprefix('http://')}/shop/shop.git",
                            str(tmp_path / "shop")], capture_output=True, text=True, timeout=60)
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "shop" / ".gitlab-ci.yml").is_file()
    release = json.loads(rendered.run(rendered.kubectl("get", "secrets", "-n", "gitlab-runner", "-l",
                                                       "owner=helm,name=gitlab-runner", "-o", "json")))
    assert len(release["items"]) == 1
    calls = [c for c in harness.calls() if Path(c[0]).name == "helm"]
    assert calls and "--values" in calls[-1] and calls[-1][calls[-1].index("--values") + 1].endswith(
        "gitlab/runner-values.yaml")
    # what the shop's pipeline needs, set as an admin would: CI_REGISTRY (GitLab CE's own registry is off) and
    # Harbor's CI robot (its secret masked), the job pods' service account with rights in namespace shop only, a
    # relay to Harbor's Service beside each job
    variables = {v.key: (v.value, v.masked, v.raw) for v in gl.variables.list(get_all=True)}
    push_token = variables.pop("MANIFESTS_TOKEN")
    assert variables == {"CI_REGISTRY": (rendered.versions["registry"]["cluster_name"], False, True),
                         "HARBOR_USER": ("robot$shop+ci", False, True),
                         "HARBOR_PASSWORD": (ci_secret(Secrets(rendered.paths.secrets)), True, True),
                         "MANIFESTS_USER": ("root", False, True)}
    # the deploy job's push token (masked): write_repository only, so git may push but the API refuses it
    assert push_token[1:] == (True, True)
    assert [t.scopes for t in gl.personal_access_tokens.list(get_all=True) if t.name == "shop-manifests-push"] == [
        ["write_repository"]]
    with pytest.raises(gitlab.GitlabError, match="insufficient_scope"):
        gitlab.Gitlab(ep.url, private_token=push_token[0]).auth()
    ls = subprocess.run(["git", "ls-remote", f"http://root:{push_token[0]}@{ep.url.removeprefix('http://')}"
                         "/shop/manifests.git", "main"], capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0 and ls.stdout.strip(), ls.stderr
    values = yaml.safe_load((part.folder(rendered) / "runner-values.yaml").read_text())
    kube = tomllib.loads(values["runners"]["config"])["runners"][0]["kubernetes"]
    assert kube["service_account"] == "shop-deployer"
    port = rendered.ports["gitlab"]
    assert [s["command"] for s in kube["services"]] == [
        ["TCP-LISTEN:5001,fork,reuseaddr", f"TCP:{service_address(rendered.versions)}"],
        [f"TCP-LISTEN:{port},fork,reuseaddr", f"TCP:{rendered.container('gitlab')}:{port}"]]
    sa = ["--as", "system:serviceaccount:gitlab-runner:shop-deployer"]
    can = rendered.run(rendered.kubectl("auth", "can-i", "patch", "deployments", "-n", "shop", *sa))
    assert can.strip() == "yes"
    cannot = subprocess.run(rendered.kubectl("auth", "can-i", "patch", "deployments", "-n", "kube-system", *sa),
                            capture_output=True, text=True, timeout=60)
    assert cannot.stdout.strip() == "no"
    # the harness's GitLab runs the jobs as those pods would: the service account's token, the relay's target
    env = json.loads((harness.root / "state" / "containers" / rendered.container("gitlab") / "runner-env.json")
                     .read_text())["env"]
    pod = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
    assert pod["contexts"][0]["context"]["namespace"] == "gitlab-runner" and pod["users"][0]["user"]["token"]
    endpoints = json.loads(rendered.run(rendered.kubectl("get", "endpoints", "harbor", "-n", "harbor", "-o", "json")))
    harbor = endpoints["subsets"][0]
    assert env["LABKIT_REGISTRY_HOSTS"] == f"localhost:5001=http://{harbor['addresses'][0]['ip']}:{harbor['ports'][0]['port']}"
    # a second provisioning keeps the token and the runner
    for cmd in part.configure(rendered):
        rendered.run(cmd.argv)
    assert Path(ep.token_file).read_text().strip() == token
    assert {v.key: v.value for v in gl.variables.list(get_all=True)}["MANIFESTS_TOKEN"] == push_token[0]
    assert len(gl.runners_all.list(get_all=True)) == 1
