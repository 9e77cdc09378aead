"""The lab registry speaks the OCI distribution API: skopeo (a real client) and raw HTTP against it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from labkit.core.secrets import Secrets
from labkit.lab import Lab

from ..kube.oci import push_image

SKOPEO = shutil.which("skopeo")


@pytest.fixture(scope="module")
def reg(shared_lab: Lab) -> tuple[str, tuple[str, str]]:
    ep = shared_lab.endpoints["components"]["registry"]
    return ep["url"], (ep["user"], Secrets(shared_lab.paths.secrets).get("registry-admin-password"))


def test_auth_push_needs_credentials_pull_is_anonymous(reg: tuple[str, tuple[str, str]]) -> None:
    url, auth = reg
    base = requests.get(f"{url}/v2/", timeout=5)
    assert base.status_code == 401 and base.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert base.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.post(f"{url}/v2/t/auth/blobs/uploads/", timeout=5).status_code == 401
    assert requests.post(f"{url}/v2/t/auth/blobs/uploads/", auth=(auth[0], "wrong"), timeout=5).status_code == 401
    digest = push_image(url, "t/auth", "1", auth=auth)
    got = requests.get(f"{url}/v2/t/auth/manifests/1", timeout=5,
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    assert hashlib.sha256(got.content).hexdigest() == digest.split(":")[1]


def test_chunked_upload_mount_tags_catalog_delete(reg: tuple[str, tuple[str, str]]) -> None:
    url, auth = reg
    s = requests.Session()
    s.auth = auth
    data = b"layer-bytes-" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = s.post(f"{url}/v2/t/chunks/blobs/uploads/", timeout=5)
    assert start.status_code == 202 and start.headers["Range"] == "0-0"
    loc = url + start.headers["Location"]
    first = s.patch(loc, data=data[:5000], headers={"Content-Range": "0-4999"}, timeout=5)
    assert first.status_code == 202 and first.headers["Range"] == "0-4999"
    bad = s.patch(url + first.headers["Location"], data=b"x", headers={"Content-Range": "10-10"}, timeout=5)
    assert bad.status_code == 416
    s.patch(url + first.headers["Location"], data=data[5000:], timeout=5)
    wrong = s.put(f"{url + first.headers['Location']}?digest=sha256:{'0' * 64}", timeout=5)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "DIGEST_INVALID"
    again = s.post(f"{url}/v2/t/chunks/blobs/uploads/", timeout=5)
    s.patch(url + again.headers["Location"], data=data, timeout=5)
    done = s.put(f"{url + again.headers['Location']}?digest={digest}", timeout=5)
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == digest
    assert s.head(f"{url}/v2/t/chunks/blobs/{digest}", timeout=5).headers["Content-Length"] == str(len(data))
    mount = s.post(f"{url}/v2/t/other/blobs/uploads/?mount={digest}&from=t/chunks", timeout=5)
    assert mount.status_code == 201
    assert s.get(f"{url}/v2/t/other/blobs/{digest}", timeout=5).content == data
    for tag in ("a", "b", "c"):
        push_image(url, "t/tags", tag, auth=auth)
    page = s.get(f"{url}/v2/t/tags/tags/list?n=2", timeout=5)
    assert page.json() == {"name": "t/tags", "tags": ["a", "b"]} and 'last=b>; rel="next"' in page.headers["Link"]
    assert s.get(f"{url}/v2/t/tags/tags/list?n=2&last=b", timeout=5).json()["tags"] == ["c"]
    assert "t/tags" in s.get(f"{url}/v2/_catalog", timeout=5).json()["repositories"]
    manifest = s.get(f"{url}/v2/t/tags/manifests/c", timeout=5)
    gone = s.delete(f"{url}/v2/t/tags/manifests/{manifest.headers['Docker-Content-Digest']}", timeout=5)
    assert gone.status_code == 202
    missing = s.get(f"{url}/v2/t/tags/manifests/c", timeout=5)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    orphan = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                         "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                    "digest": "sha256:" + "1" * 64, "size": 2}, "layers": []})
    refused = s.put(f"{url}/v2/t/tags/manifests/x", data=orphan, timeout=5,
                    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.skipif(SKOPEO is None, reason="needs skopeo (apt-get install skopeo; scripts/test.sh installs it)")
def test_skopeo_copies_images_in_and_out(reg: tuple[str, tuple[str, str]], tmp_path: Path) -> None:
    url, auth = reg
    host = url.removeprefix("http://")
    push_image(url, "t/skopeo", "src", auth=auth)
    creds = f"{auth[0]}:{auth[1]}"
    out = tmp_path / "layout"
    subprocess.run([SKOPEO, "copy", "--src-tls-verify=false", f"docker://{host}/t/skopeo:src", f"oci:{out}:v1"],
                   check=True, capture_output=True, timeout=60)
    res = subprocess.run([SKOPEO, "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{out}:v1",
                          f"docker://{host}/t/copied:v1"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    info = json.loads(subprocess.run([SKOPEO, "inspect", "--tls-verify=false", f"docker://{host}/t/copied:v1"],
                                     check=True, capture_output=True, text=True, timeout=60).stdout)
    assert info["Name"].endswith("t/copied") and info["Architecture"] == "amd64"
    denied = subprocess.run([SKOPEO, "copy", "--dest-tls-verify=false", "--dest-creds", "admin:wrong",
                             f"oci:{out}:v1", f"docker://{host}/t/denied:v1"], capture_output=True, text=True,
                            timeout=60)
    assert denied.returncode != 0 and "unauthorized" in denied.stderr.lower()


def test_images_survive_a_restart(lab: Lab) -> None:
    from labkit import control

    ep = lab.endpoints["components"]["registry"]
    auth = (ep["user"], Secrets(lab.paths.secrets).get("registry-admin-password"))
    digest = push_image(ep["url"], "t/kept", "1", auth=auth)
    control.down(lab.paths)
    control.up(lab.paths)
    again = requests.get(f"{ep['url']}/v2/t/kept/manifests/1", timeout=5)
    assert again.status_code == 200 and again.headers["Docker-Content-Digest"] == digest
