"""The distribution API over raw HTTP: status codes, headers and error codes as the spec and the reference
registry give them."""

from __future__ import annotations

import json
import re

import pytest
import requests

from .conftest import RunningRegistry
from .images import OCI_INDEX, OCI_MANIFEST, make_image, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.fixture
def s(registry: RunningRegistry) -> requests.Session:
    """A session with the admin's basic credentials (accepted directly, as with htpasswd)."""
    session = requests.Session()
    session.auth = registry.auth
    return session


def code(resp: requests.Response) -> str:
    return resp.json()["errors"][0]["code"]


def push_blobs(registry: RunningRegistry, repo: str, blobs: dict[str, bytes]) -> None:
    client = registry.client()
    for data in blobs.values():
        client.push_blob(repo, data)


def test_upload_monolithic_post_put_and_pull_with_range(registry: RunningRegistry, s: requests.Session) -> None:
    url = registry.url
    data = bytes(range(256)) * 40
    digest = sha256(data)
    one = s.post(f"{url}/v2/t/mono/blobs/uploads/?digest={digest}", data=data, timeout=5)
    assert one.status_code == 201 and one.headers["Docker-Content-Digest"] == digest
    assert one.headers["Location"] == f"/v2/t/mono/blobs/{digest}"
    assert one.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    other = b"second blob"
    start = s.post(f"{url}/v2/t/mono/blobs/uploads/", timeout=5)
    assert start.status_code == 202 and start.headers["Range"] == "0-0" and start.headers["Docker-Upload-UUID"]
    done = s.put(f"{url}{start.headers['Location']}?digest={sha256(other)}", data=other, timeout=5)
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == sha256(other)
    head = requests.head(f"{url}/v2/t/mono/blobs/{digest}", timeout=5)  # anonymous pull
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    part = requests.get(f"{url}/v2/t/mono/blobs/{digest}", headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert requests.get(f"{url}/v2/t/mono/blobs/{digest}", timeout=5).content == data
    missing = requests.get(f"{url}/v2/t/mono/blobs/sha256:{'0' * 64}", timeout=5)
    assert missing.status_code == 404 and code(missing) == "BLOB_UNKNOWN"
    assert requests.head(f"{url}/v2/t/mono/blobs/sha256:{'0' * 64}", timeout=5).status_code == 404
    assert code(requests.get(f"{url}/v2/t/mono/blobs/sha256:xyz", timeout=5)) == "DIGEST_INVALID"
    assert code(requests.get(f"{url}/v2/t/other/blobs/{digest}", timeout=5)) == "BLOB_UNKNOWN"  # not linked there


def test_chunked_upload_progress_status_and_cancel(registry: RunningRegistry, s: requests.Session) -> None:
    url = registry.url
    data = b"layer-bytes-" * 5000
    digest = sha256(data)
    start = s.post(f"{url}/v2/t/chunks/blobs/uploads/", timeout=5)
    loc = url + start.headers["Location"]
    first = s.patch(loc, data=data[:20000], headers={"Content-Range": "0-19999",
                                                      "Content-Type": "application/octet-stream"}, timeout=5)
    assert first.status_code == 202 and first.headers["Range"] == "0-19999"
    status = s.get(url + first.headers["Location"], timeout=5)
    assert status.status_code == 204 and status.headers["Range"] == "0-19999"
    out_of_order = s.patch(loc, data=b"x" * 10, headers={"Content-Range": "30000-30009"}, timeout=5)
    assert out_of_order.status_code == 416 and code(out_of_order) == "RANGE_INVALID"
    assert out_of_order.headers["Range"] == "0-19999"
    second = s.patch(loc, data=data[20000:40000], headers={"Content-Range": "20000-39999"}, timeout=5)
    assert second.headers["Range"] == "0-39999"
    done = s.put(f"{loc}?digest={digest}", data=data[40000:], headers={"Content-Range": f"40000-{len(data) - 1}"},
                 timeout=5)
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == digest
    assert requests.get(f"{url}/v2/t/chunks/blobs/{digest}", timeout=5).content == data
    gone = s.get(loc, timeout=5)
    assert gone.status_code == 404 and code(gone) == "BLOB_UPLOAD_UNKNOWN"
    streamed = s.post(f"{url}/v2/t/chunks/blobs/uploads/", timeout=5)  # PATCH without Content-Range (docker)
    s.patch(url + streamed.headers["Location"], data=iter([data[:1000], data[1000:]]), timeout=5)
    cancel = s.delete(url + streamed.headers["Location"], timeout=5)
    assert cancel.status_code == 204
    assert code(s.get(url + streamed.headers["Location"], timeout=5)) == "BLOB_UPLOAD_UNKNOWN"
    elsewhere = s.post(f"{url}/v2/t/chunks/blobs/uploads/", timeout=5)
    other_repo = elsewhere.headers["Location"].replace("/t/chunks/", "/t/elsewhere/")
    assert code(s.get(url + other_repo, timeout=5)) == "BLOB_UPLOAD_UNKNOWN"  # a session belongs to its repository


def test_wrong_digest_is_digest_invalid(registry: RunningRegistry, s: requests.Session) -> None:
    url = registry.url
    data = b"some content"
    wrong = f"sha256:{'1' * 64}"
    mono = s.post(f"{url}/v2/t/digest/blobs/uploads/?digest={wrong}", data=data, timeout=5)
    assert mono.status_code == 400 and code(mono) == "DIGEST_INVALID"
    start = s.post(f"{url}/v2/t/digest/blobs/uploads/", timeout=5)
    bad = s.put(f"{url}{start.headers['Location']}?digest={wrong}", data=data, timeout=5)
    assert bad.status_code == 400 and code(bad) == "DIGEST_INVALID"
    assert code(s.get(url + start.headers["Location"], timeout=5)) == "BLOB_UPLOAD_UNKNOWN"  # ended, as distribution
    for malformed in ("md5:abc", "sha256:short", "nodigest"):
        again = s.post(f"{url}/v2/t/digest/blobs/uploads/?digest={malformed}", data=data, timeout=5)
        assert again.status_code == 400 and code(again) == "DIGEST_INVALID"
    nodigest = s.post(f"{url}/v2/t/digest/blobs/uploads/", timeout=5)
    assert code(s.put(url + nodigest.headers["Location"], data=data, timeout=5)) == "DIGEST_INVALID"
    assert requests.head(f"{url}/v2/t/digest/blobs/{wrong}", timeout=5).status_code == 404
    sha512 = "sha512:" + __import__("hashlib").sha512(data).hexdigest()
    assert s.post(f"{url}/v2/t/digest/blobs/uploads/?digest={sha512}", data=data, timeout=5).status_code == 201
    assert requests.get(f"{url}/v2/t/digest/blobs/{sha512}", timeout=5).content == data


def test_cross_repository_mount(registry: RunningRegistry, s: requests.Session) -> None:
    url = registry.url
    data = b"shared base layer"
    digest = sha256(data)
    s.post(f"{url}/v2/t/mount-src/blobs/uploads/?digest={digest}", data=data, timeout=5)
    mounted = s.post(f"{url}/v2/t/mount-dst/blobs/uploads/?mount={digest}&from=t/mount-src", timeout=5)
    assert mounted.status_code == 201 and mounted.headers["Location"] == f"/v2/t/mount-dst/blobs/{digest}"
    assert mounted.headers["Docker-Content-Digest"] == digest
    assert requests.get(f"{url}/v2/t/mount-dst/blobs/{digest}", timeout=5).content == data
    absent = s.post(f"{url}/v2/t/mount-dst/blobs/uploads/?mount=sha256:{'2' * 64}&from=t/mount-src", timeout=5)
    assert absent.status_code == 202 and "/blobs/uploads/" in absent.headers["Location"]  # an upload starts
    wrong_source = s.post(f"{url}/v2/t/mount-x/blobs/uploads/?mount={digest}&from=t/nothing-here", timeout=5)
    assert wrong_source.status_code == 202
    without_from = s.post(f"{url}/v2/t/mount-y/blobs/uploads/?mount={digest}", timeout=5)
    assert without_from.status_code == 201  # `from` is optional in distribution-spec 1.1


def test_manifests_by_tag_and_digest_all_media_types(registry: RunningRegistry, s: requests.Session) -> None:
    url, repo = registry.url, "t/manifests"
    oci = make_image("oci")
    docker = make_image("docker", media_type=DOCKER_MANIFEST, config_type=DOCKER_CONFIG, layer_type=DOCKER_LAYER)
    push_blobs(registry, repo, {**oci.blobs(), **docker.blobs()})
    put = s.put(f"{url}/v2/{repo}/manifests/oci", data=oci.manifest, headers={"Content-Type": OCI_MANIFEST},
                timeout=5)
    assert put.status_code == 201 and put.headers["Docker-Content-Digest"] == oci.digest
    assert put.headers["Location"] == f"/v2/{repo}/manifests/{oci.digest}"
    by_digest = s.put(f"{url}/v2/{repo}/manifests/{docker.digest}", data=docker.manifest,
                      headers={"Content-Type": DOCKER_MANIFEST}, timeout=5)
    assert by_digest.status_code == 201
    for media, image in ((OCI_INDEX, oci), (DOCKER_LIST, docker)):
        child_type = OCI_MANIFEST if media == OCI_INDEX else DOCKER_MANIFEST
        index = json.dumps({"schemaVersion": 2, "mediaType": media, "manifests": [{
            "mediaType": child_type, "digest": image.digest, "size": len(image.manifest),
            "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
        assert s.put(f"{url}/v2/{repo}/manifests/{media.split('.')[-2]}", data=index,
                     headers={"Content-Type": media}, timeout=5).status_code == 201
    got = requests.get(f"{url}/v2/{repo}/manifests/oci", headers={"Accept": OCI_MANIFEST}, timeout=5)
    assert got.content == oci.manifest and got.headers["Content-Type"] == OCI_MANIFEST
    assert got.headers["Docker-Content-Digest"] == oci.digest
    head = requests.head(f"{url}/v2/{repo}/manifests/{docker.digest}", headers={"Accept": DOCKER_MANIFEST},
                         timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(docker.manifest))
    assert head.headers["Content-Type"] == DOCKER_MANIFEST
    listing = requests.get(f"{url}/v2/{repo}/manifests/list", headers={"Accept": DOCKER_LIST}, timeout=5)
    assert listing.headers["Content-Type"] == DOCKER_LIST
    refused = requests.get(f"{url}/v2/{repo}/manifests/oci", headers={"Accept": DOCKER_MANIFEST}, timeout=5)
    assert refused.status_code == 404 and code(refused) == "MANIFEST_UNKNOWN"  # as distribution: OCI not accepted
    assert requests.get(f"{url}/v2/{repo}/manifests/oci", headers={"If-None-Match": f'"{oci.digest}"'},
                        timeout=5).status_code == 304
    tag_gone = s.delete(f"{url}/v2/{repo}/manifests/oci", timeout=5)  # deleting a tag keeps the manifest
    assert tag_gone.status_code == 202
    assert code(requests.get(f"{url}/v2/{repo}/manifests/oci", timeout=5)) == "MANIFEST_UNKNOWN"
    assert requests.get(f"{url}/v2/{repo}/manifests/{oci.digest}", timeout=5).status_code == 200
    s.put(f"{url}/v2/{repo}/manifests/again", data=oci.manifest, headers={"Content-Type": OCI_MANIFEST}, timeout=5)
    assert s.delete(f"{url}/v2/{repo}/manifests/{oci.digest}", timeout=5).status_code == 202
    for ref in (oci.digest, "again"):
        assert code(requests.get(f"{url}/v2/{repo}/manifests/{ref}", timeout=5)) == "MANIFEST_UNKNOWN"
    assert code(s.delete(f"{url}/v2/{repo}/manifests/{oci.digest}", timeout=5)) == "MANIFEST_UNKNOWN"


def test_manifest_validation(registry: RunningRegistry, s: requests.Session) -> None:
    url, repo = registry.url, "t/invalid"
    image = make_image("valid")
    push_blobs(registry, repo, {sha256(image.config): image.config})  # the layer is missing

    def put(ref: str, body: bytes, media: str = OCI_MANIFEST) -> requests.Response:
        return s.put(f"{url}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media}, timeout=5)

    missing = put("1", image.manifest)
    assert missing.status_code == 400 and code(missing) == "MANIFEST_BLOB_UNKNOWN"
    assert missing.json()["errors"][0]["detail"] == {"digest": sha256(image.layers[0])}
    assert code(put("1", b"{not json")) == "MANIFEST_INVALID"
    assert code(put("1", json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode())) \
        == "MANIFEST_INVALID"
    assert code(put("1", image.manifest, media=DOCKER_MANIFEST)) == "MANIFEST_INVALID"  # mediaType mismatch
    schema1 = put("1", json.dumps({"schemaVersion": 1, "name": repo, "tag": "1", "fsLayers": []}).encode(),
                  media="application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert schema1.status_code == 415 and code(schema1) == "UNSUPPORTED"
    assert "not supported by the labkit simulator" in schema1.json()["errors"][0]["message"]
    unknown_child = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": f"sha256:{'3' * 64}", "size": 10}]}).encode()
    assert code(put("idx", unknown_child, media=OCI_INDEX)) == "MANIFEST_BLOB_UNKNOWN"
    assert code(put(f"sha256:{'4' * 64}", image.manifest)) == "DIGEST_INVALID"
    assert code(put("bad:tag", image.manifest)) == "DIGEST_INVALID"
    assert code(put("-bad-tag", image.manifest)) == "MANIFEST_INVALID"
    too_big = put("big", b" " * (4 * 1024 * 1024 + 1))
    assert too_big.status_code == 413
    assert code(s.get(f"{url}/v2/Bad_Name/manifests/1", timeout=5)) == "NAME_INVALID"
    assert code(s.post(f"{url}/v2/{repo}/manifests/1", timeout=5)) == "UNSUPPORTED"


def test_tags_pagination_catalog_and_delete(fresh_registry: RunningRegistry) -> None:
    registry = fresh_registry
    url, s = registry.url, requests.Session()
    s.auth = registry.auth
    client = registry.client()
    image = make_image("tags")
    for repo in ("a/one", "b/two", "c/three"):
        client.push_image(repo, "base", image.config, list(image.layers))
    for tag in ("v3", "v1", "v2", "latest"):
        client.push_manifest("a/one", tag, image.manifest)
    page = requests.get(f"{url}/v2/a/one/tags/list?n=2", timeout=5)
    assert page.json() == {"name": "a/one", "tags": ["base", "latest"]}
    link = re.match(r'<([^>]+)>; rel="next"', page.headers["Link"])
    assert link and link[1] == "/v2/a/one/tags/list?last=latest&n=2"
    nxt = requests.get(url + link[1], timeout=5)
    assert nxt.json()["tags"] == ["v1", "v2"]
    assert requests.get(f"{url}/v2/a/one/tags/list?n=2&last=v2", timeout=5).json()["tags"] == ["v3"]
    assert "Link" not in requests.get(f"{url}/v2/a/one/tags/list?n=2&last=v2", timeout=5).headers
    zero = requests.get(f"{url}/v2/a/one/tags/list?n=0", timeout=5)
    assert zero.json()["tags"] == [] and "Link" not in zero.headers
    assert code(requests.get(f"{url}/v2/a/one/tags/list?n=x", timeout=5)) == "PAGINATION_NUMBER_INVALID"
    assert client.tags("a/one", page_size=2) == ["base", "latest", "v1", "v2", "v3"]
    unknown = requests.get(f"{url}/v2/t/no-such/tags/list", timeout=5)
    assert unknown.status_code == 404 and code(unknown) == "NAME_UNKNOWN"
    catalog = s.get(f"{url}/v2/_catalog?n=2", timeout=5)
    assert catalog.json() == {"repositories": ["a/one", "b/two"]}
    assert catalog.headers["Link"] == '</v2/_catalog?last=b%2Ftwo&n=2>; rel="next"'
    assert client.catalog(page_size=1) == ["a/one", "b/two", "c/three"]
    layer = sha256(image.layers[0])
    assert s.delete(f"{url}/v2/c/three/blobs/{layer}", timeout=5).status_code == 202
    assert code(requests.get(f"{url}/v2/c/three/blobs/{layer}", timeout=5)) == "BLOB_UNKNOWN"
    assert requests.get(f"{url}/v2/b/two/blobs/{layer}", timeout=5).content == image.layers[0]  # still linked there
    assert code(s.delete(f"{url}/v2/c/three/blobs/{layer}", timeout=5)) == "BLOB_UNKNOWN"
    digest = client.manifest_digest("c/three", "base")
    assert digest
    client.delete_manifest("c/three", digest)
    client.delete_blob("c/three", sha256(image.config))
    assert client.catalog() == ["a/one", "b/two"]  # nothing left in c/three


def test_referrers_api(registry: RunningRegistry) -> None:
    url, repo, client = registry.url, "t/referrers", registry.client()
    image = make_image("subject")
    subject = client.push_image(repo, "1", image.config, list(image.layers))
    empty = b"{}"
    client.push_blob(repo, empty)
    sbom = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom.v1",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(image.manifest)},
            "annotations": {"org.example.kind": "sbom"}}
    body = json.dumps(sbom).encode()
    put = requests.put(f"{url}/v2/{repo}/manifests/{sha256(body)}", data=body, auth=registry.auth, timeout=5,
                       headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201 and put.headers["OCI-Subject"] == subject
    listed = requests.get(f"{url}/v2/{repo}/referrers/{subject}", timeout=5)
    assert listed.status_code == 200 and listed.headers["Content-Type"] == OCI_INDEX
    assert listed.json()["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body),
                                           "artifactType": "application/vnd.example.sbom.v1",
                                           "annotations": {"org.example.kind": "sbom"}}]
    filtered = requests.get(f"{url}/v2/{repo}/referrers/{subject}?artifactType=application/x-other", timeout=5)
    assert filtered.json()["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"
    nothing = requests.get(f"{url}/v2/{repo}/referrers/sha256:{'5' * 64}", timeout=5)
    assert nothing.status_code == 200 and nothing.json()["manifests"] == []
    assert requests.get(f"{url}/v2/{repo}/referrers/nodigest", timeout=5).status_code == 400
