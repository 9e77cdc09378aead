"""Real clients through Harbor's auth: skopeo (Debian) and oras (PyPI) push and pull with robot accounts; a
pull-only robot cannot push; the anonymous pull a public project but not a private one; nothing is pushed to a
project that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import oras.client as oras_client
import pytest
import requests

from labkit.images.client import RegistryClient

from .conftest import RunningRegistry
from .images import make_image, sha256, write_oci_layout
from .test_clients import needs_skopeo, skopeo


def robot(registry: RunningRegistry, project: str, name: str, *actions: str) -> tuple[str, str]:
    resp = requests.post(f"{registry.api}/robots", auth=registry.auth, timeout=5, json={
        "name": name, "duration": -1, "level": "project", "permissions": [
            {"kind": "project", "namespace": project,
             "access": [{"resource": "repository", "action": a} for a in actions]}]})
    assert resp.status_code == 201, resp.text
    return resp.json()["name"], resp.json()["secret"]


@pytest.fixture(scope="module")
def private(registry: RunningRegistry) -> dict[str, tuple[str, str]]:
    """A private project ``ci`` with a push robot (``builder``) and a pull-only one (``reader``)."""
    registry.project("ci")
    return {"builder": robot(registry, "ci", "builder", "pull", "push"),
            "reader": robot(registry, "ci", "reader", "pull")}


@needs_skopeo
def test_skopeo_with_robot_accounts(registry: RunningRegistry, private: dict[str, tuple[str, str]],
                                    tmp_path: Path) -> None:
    layout = write_oci_layout(make_image("ci image"), tmp_path / "layout", "v1")
    dest = f"docker://{registry.host}/ci/app:v1"
    builder, reader = (":".join(private[k]) for k in ("builder", "reader"))
    refused = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", reader, f"oci:{layout}:v1", dest,
                     check=False)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", builder, f"oci:{layout}:v1", dest)
    info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", reader, dest).stdout)
    assert info["RepoTags"] == ["v1"]
    anonymous = skopeo("inspect", "--tls-verify=false", "--no-creds", dest, check=False)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()
    # the same image in a public project: the anonymous pull it
    public = f"docker://{registry.host}/library/ci-app:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{registry.password}", f"oci:{layout}:v1",
           public)
    assert json.loads(skopeo("inspect", "--tls-verify=false", "--no-creds", public).stdout)["RepoTags"] == ["v1"]
    # Harbor takes no push to a project that does not exist, not even the admin's
    nowhere = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{registry.password}",
                     f"oci:{layout}:v1", f"docker://{registry.host}/no-such-project/app:v1", check=False)
    assert nowhere.returncode != 0 and "denied" in nowhere.stderr  # its first request is a HEAD: no body
    said = requests.post(f"{registry.url}/v2/no-such-project/app/blobs/uploads/", auth=registry.auth, timeout=5)
    assert said.status_code == 401 and said.json()["errors"][0]["message"] == \
        "project no-such-project not found: project no-such-project not found"
    # the robot's token carries only what its permissions allow
    token = requests.get(f"{registry.url}/service/token", auth=private["reader"], timeout=5, params={
        "service": "harbor-registry", "scope": "repository:ci/app:pull,push"}).json()["token"]
    pushed = requests.post(f"{registry.url}/v2/ci/app/blobs/uploads/", timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert pushed.status_code == 401 and 'error="insufficient_scope"' in pushed.headers["WWW-Authenticate"]
    entries = requests.get(f"{registry.api}/auditlog-exts", auth=registry.auth, timeout=5,
                           params={"q": "resource=ci/app:v1"}).json()
    assert [(e["username"], e["operation"]) for e in entries][-1] == (private["builder"][0], "create")
    assert (private["reader"][0], "pull") in [(e["username"], e["operation"]) for e in entries]


def test_oras_with_robot_accounts(registry: RunningRegistry, private: dict[str, tuple[str, str]], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    target = f"{registry.host}/ci/artifact:v1"

    def client(creds: tuple[str, str] | None, config: str) -> oras_client.OrasClient:
        c = oras_client.OrasClient(hostname=registry.host, insecure=True)
        if creds:
            c.login(username=creds[0], password=creds[1], hostname=registry.host,
                    config_path=str(tmp_path / "docker" / config))
        return c

    # pushed with the builder robot by labkit's client: oras-py asks a token for the scope of a push's first
    # request (a HEAD: pull) and, answered 401 for the upload, retries that token instead of asking for push
    image = make_image("oras artifact")
    RegistryClient(registry.url, *private["builder"]).push_image("ci/artifact", "v1", image.config,
                                                                 list(image.layers))
    reader = client(private["reader"], "reader.json")
    manifest = reader.get_manifest(target)
    assert manifest["layers"][0]["digest"] == sha256(image.layers[0])
    assert reader.get_tags(f"{registry.host}/ci/artifact") == ["v1"]
    with pytest.raises(ValueError, match="Unauthorized"):  # the anonymous get no token for a private project
        client(None, "none.json").pull(target=target, outdir=str(tmp_path / "anon"))
    arts = requests.get(f"{registry.api}/projects/ci/repositories/artifact/artifacts", auth=private["reader"],
                        timeout=5).json()
    assert [t["name"] for t in arts[0]["tags"]] == ["v1"] and arts[0]["type"] == "IMAGE"
