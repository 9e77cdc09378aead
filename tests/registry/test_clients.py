"""Real clients against the registry: skopeo (Debian), oras (PyPI) and labkit's own client."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import oras.client as oras_client
import pytest
import requests

from labkit.images.client import RegistryClient, RegistryError

from .conftest import RunningRegistry
from .images import make_image, sha256, write_oci_layout

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="needs skopeo: apt-get install -y skopeo (CI installs it)")


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert SKOPEO is not None
    res = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res


@needs_skopeo
def test_skopeo_copies_an_oci_layout_in_and_out(registry: RunningRegistry, tmp_path: Path) -> None:
    image = make_image("skopeo", layer_files=[{"etc/os-release": b"ID=labkit\n"},
                                              {"app/main.py": b"print('hello')\n" * 100}])
    layout = write_oci_layout(image, tmp_path / "layout", "v1")
    dest = f"docker://{registry.host}/t/skopeo:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{registry.password}", f"oci:{layout}:v1", dest)
    info = json.loads(skopeo("inspect", "--tls-verify=false", dest).stdout)  # anonymous: the token flow
    assert info["Digest"] == image.digest and info["RepoTags"] == ["v1"]
    assert info["Architecture"] == "amd64" and info["Labels"] == {"name": "skopeo"}
    assert info["Layers"] == [sha256(b) for b in image.layers]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", dest).stdout.encode()
    assert raw == image.manifest  # stored byte for byte
    out = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:copied")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    for digest in image.blobs():
        assert (out / "blobs" / "sha256" / digest.split(":")[1]).exists()
    # a second repository: skopeo mounts or re-uploads; the docker-archive transport converts to schema 2
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds",
           f"admin:{registry.password}", dest, f"docker://{registry.host}/t/skopeo-v2:v1",
           "--format", "v2s2")
    v2 = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                           f"docker://{registry.host}/t/skopeo-v2:v1").stdout)
    assert v2["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/t/skopeo").stdout)
    assert tags["Tags"] == ["v1"]


@needs_skopeo
def test_skopeo_auth_failures_and_delete(registry: RunningRegistry, tmp_path: Path) -> None:
    layout = write_oci_layout(make_image("denied"), tmp_path / "layout", "v1")
    dest = f"docker://{registry.host}/t/skopeo-auth:v1"
    nocreds = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", dest, check=False)
    assert nocreds.returncode != 0 and "unauthorized" in nocreds.stderr.lower()
    wrong = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "admin:wrong", f"oci:{layout}:v1", dest,
                   check=False)
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr.lower()
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{registry.password}", f"oci:{layout}:v1", dest)
    skopeo("delete", "--tls-verify=false", "--creds", f"admin:{registry.password}", dest)
    gone = skopeo("inspect", "--tls-verify=false", dest, check=False)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower()


def test_oras_push_pull_login(registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "artifact.txt").write_text("an artifact pushed by oras\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "data.json").write_text('{"k": 1}')
    target = f"{registry.host}/t/oras:v1"
    client = oras_client.OrasClient(hostname=registry.host, insecure=True)
    client.login(username="admin", password=registry.password, hostname=registry.host,
                 config_path=str(tmp_path / "docker" / "config.json"))
    pushed = client.push(target=target, files=["artifact.txt", "dir"], quiet=True)
    assert pushed.status_code == 201
    chunked = client.push(target=f"{registry.host}/t/oras:chunked", files=["artifact.txt"], do_chunked=True,
                          chunk_size=8, quiet=True)
    assert chunked.status_code == 201
    reader = oras_client.OrasClient(hostname=registry.host, insecure=True)  # anonymous
    files = reader.pull(target=target, outdir=str(tmp_path / "out"))
    assert sorted(Path(f).name for f in files) == ["artifact.txt", "dir"]
    assert (tmp_path / "out" / "artifact.txt").read_text() == "an artifact pushed by oras\n"
    assert json.loads((tmp_path / "out" / "dir" / "data.json").read_text()) == {"k": 1}
    assert reader.get_tags(f"{registry.host}/t/oras") == ["chunked", "v1"]
    intruder = oras_client.OrasClient(hostname=registry.host, insecure=True)
    intruder.login(username="admin", password="wrong", hostname=registry.host,
                   config_path=str(tmp_path / "docker" / "wrong.json"))
    challenged = requests.post(f"{registry.url}/v2/t/oras/blobs/uploads/", timeout=5)
    _, authenticated = intruder.auth.authenticate_request(challenged, {})  # oras asks the realm: 401, no token
    assert challenged.status_code == 401 and not authenticated


def test_labkit_client(registry: RunningRegistry, tmp_path: Path) -> None:
    client = registry.client()
    assert client.ping() and not RegistryClient(registry.url, "admin", "wrong").ping()
    big = tmp_path / "layer.bin"
    big.write_bytes(b"0123456789abcdef" * 200_000)  # 3.2 MB, streamed from the file
    digest = client.push_blob("t/client", big)
    assert client.push_blob("t/client", big) == digest  # already there: HEAD, no upload
    chunked = client.push_blob("t/client", b"x" * 100_000, chunk_size=30_000)
    assert client.pull_blob("t/client", chunked) == b"x" * 100_000
    out = tmp_path / "out.bin"
    assert client.pull_blob_to("t/client", digest, out) == big.stat().st_size and out.read_bytes() == big.read_bytes()
    assert client.push_blob_monolithic("t/client", b"one request") == sha256(b"one request")
    assert client.mount_blob("t/client-copy", digest, "t/client")
    assert not client.mount_blob("t/client-copy", f"sha256:{'9' * 64}", "t/client")
    image = make_image("client")
    manifest_digest = client.push_image("t/client", "1", image.config, list(image.layers))
    body, media_type, got = client.manifest("t/client", "1")
    assert got == manifest_digest == sha256(body) and media_type == "application/vnd.oci.image.manifest.v1+json"
    anonymous = registry.client(anonymous=True)
    assert anonymous.tags("t/client") == ["1"] and anonymous.pull_blob("t/client", chunked)
    with pytest.raises(RegistryError) as denied:
        anonymous.push_blob("t/client", b"nope")
    assert denied.value.status == 401 and denied.value.code == "UNAUTHORIZED"
    with pytest.raises(RegistryError) as unknown:
        anonymous.manifest("t/client", "missing")
    assert unknown.value.code == "MANIFEST_UNKNOWN"
    wrong = RegistryClient(registry.url, "admin", "wrong")
    with pytest.raises(RegistryError):
        wrong.push_blob("t/client", b"nope")
    tokens = requests.get(f"{registry.url}/service/token", params={"scope": "repository:t/client:pull"}, timeout=5)
    assert tokens.status_code == 200
