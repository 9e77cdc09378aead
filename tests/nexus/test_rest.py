"""Nexus' REST API v1 with HTTP clients: repositories (list, read, create, update, delete), components, assets and
search with continuationToken paging, status, anonymous access on and off, and the refusals, in Nexus' shapes."""

from __future__ import annotations

from pathlib import Path

from .conftest import RunningNexus, pip
from .upstream import TinyIndex, make_wheel

V1 = "/service/rest/v1"


def _upload(nexus: RunningNexus, wheel: Path, name: str, version: str) -> None:
    r = nexus.session(auth=True).post(f"{nexus.url}/repository/pypi-hosted/", files={"content": wheel.open("rb")},
                                      data={":action": "file_upload", "name": name, "version": version})
    assert r.status_code == 200, r.text


def test_repositories_list_and_read(nexus: RunningNexus) -> None:
    listed = nexus.session().get(nexus.url + V1 + "/repositories").json()
    by_name = {r["name"]: r for r in listed}
    assert {"pypi-proxy", "pypi-hosted", "pypi-group", "maven-central", "maven-public"} <= set(by_name)
    proxy = by_name["pypi-proxy"]
    assert (proxy["format"], proxy["type"], proxy["url"]) == ("pypi", "proxy", f"{nexus.url}/repository/pypi-proxy")
    assert proxy["attributes"]["proxy"]["remoteUrl"] == nexus.component.stand_in.pypi_url
    assert by_name["maven-central"]["format"] == "maven2" and by_name["pypi-group"]["attributes"] == {}
    group = nexus.session().get(nexus.url + V1 + "/repositories/pypi/group/pypi-group").json()
    assert group["group"]["memberNames"] == ["pypi-hosted", "pypi-proxy"]
    assert nexus.session().get(nexus.url + V1 + "/repositories/maven/proxy/pypi-proxy").status_code == 404


def test_create_update_delete_and_refusals(fresh_nexus: RunningNexus, tiny_index: TinyIndex) -> None:
    nexus = fresh_nexus
    body = {"name": "pypi-extra", "online": True,
            "storage": {"blobStoreName": "default", "strictContentTypeValidation": True},
            "proxy": {"remoteUrl": tiny_index.url, "contentMaxAge": 1440, "metadataMaxAge": 1440},
            "negativeCache": {"enabled": True, "timeToLive": 1440}, "httpClient": {"blocked": False,
                                                                                     "autoBlock": True}}
    url = nexus.url + V1 + "/repositories/pypi/proxy"
    anonymous = nexus.session().post(url, json=body)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == \
        'Basic realm="Sonatype Nexus Repository Manager"'
    assert nexus.session().post(url, json=body, auth=("admin", "wrong")).status_code == 401
    admin = nexus.session(auth=True)
    assert admin.post(url, json=body).status_code == 201
    duplicate = admin.post(url, json={**body, "name": "PYPI-EXTRA"})
    assert duplicate.status_code == 400
    assert duplicate.json() == [{"id": "PARAMETER name",
                                 "message": "Name is already used, must be unique (ignoring case)"}]
    missing = admin.post(url, json={k: v for k, v in body.items() if k != "proxy"} | {"name": "other"})
    assert missing.status_code == 400 and missing.json()[0]["id"] == "PARAMETER proxy.remoteUrl"
    unsupported = admin.post(nexus.url + V1 + "/repositories/npm/proxy", json=body)
    assert unsupported.status_code == 404 and "not supported by the labkit simulator" in unsupported.text
    make_wheel(tiny_index.folder, "zeta", "1.0")
    pip("download", "--index-url", nexus.index("pypi-extra"), "-d", str(tiny_index.folder / "dl"), "zeta")
    blocked = {**body, "httpClient": {"blocked": True, "autoBlock": True}}
    assert admin.put(url + "/pypi-extra", json=blocked).status_code == 204
    read = admin.get(url + "/pypi-extra").json()
    assert read["httpClient"]["blocked"] is True and read["url"] == f"{nexus.url}/repository/pypi-extra"
    assert admin.delete(nexus.url + V1 + "/repositories/pypi-extra").status_code == 204
    assert admin.get(url + "/pypi-extra").status_code == 404
    assert nexus.session().get(nexus.index("pypi-extra") + "zeta/").status_code == 404


def test_components_search_and_assets_page_with_a_continuation_token(fresh_nexus: RunningNexus,
                                                                     tmp_path: Path) -> None:
    nexus = fresh_nexus
    for i in range(12):
        _upload(nexus, make_wheel(tmp_path, f"pkg-{i:02d}", "1.0"), f"pkg-{i:02d}", "1.0")
    _upload(nexus, make_wheel(tmp_path, "pkg-00", "2.0"), "pkg-00", "2.0")
    s = nexus.session()
    first = s.get(nexus.url + V1 + "/components", params={"repository": "pypi-hosted"}).json()
    assert len(first["items"]) == 10 and first["continuationToken"]
    second = s.get(nexus.url + V1 + "/components",
                   params={"repository": "pypi-hosted", "continuationToken": first["continuationToken"]}).json()
    assert len(second["items"]) == 3 and second["continuationToken"] is None
    names = [(c["name"], c["version"]) for c in first["items"] + second["items"]]
    assert len(set(names)) == 13 and ("pkg-00", "2.0") in names
    item = first["items"][0]
    assert set(item) == {"id", "repository", "format", "group", "name", "version", "assets"}
    asset = item["assets"][0]
    assert asset["downloadUrl"] == f"{nexus.url}/repository/pypi-hosted/{asset['path']}"
    assert set(asset["checksum"]) >= {"sha1", "sha256", "md5"} and asset["fileSize"] > 0
    assert asset["lastDownloaded"] is None and asset["uploader"] == "admin"
    assert s.get(nexus.url + V1 + f"/components/{item['id']}").json() == item
    assert s.get(nexus.url + V1 + f"/assets/{asset['id']}").json()["path"] == asset["path"]
    assert s.get(asset["downloadUrl"]).ok
    assert s.get(nexus.url + V1 + f"/assets/{asset['id']}").json()["lastDownloaded"] is not None
    found = s.get(nexus.url + V1 + "/search", params={"name": "pkg-00"}).json()["items"]
    assert sorted(c["version"] for c in found) == ["1.0", "2.0"]
    assert [c["name"] for c in s.get(nexus.url + V1 + "/search",
                                     params={"name": "pkg-00", "version": "2.0"}).json()["items"]] == ["pkg-00"]
    assert len(s.get(nexus.url + V1 + "/search", params={"name": "pkg-0*", "format": "pypi"}).json()["items"]) == 11
    assert s.get(nexus.url + V1 + "/search", params={"format": "maven2", "name": "pkg-00"}).json()["items"] == []
    assets = s.get(nexus.url + V1 + "/assets", params={"repository": "pypi-hosted"}).json()
    assert len(assets["items"]) == 10 and assets["continuationToken"]
    assert s.get(nexus.url + V1 + "/components", params={"repository": "nope"}).status_code == 404
    bad = s.get(nexus.url + V1 + "/components", params={"repository": "pypi-hosted", "continuationToken": "zz"})
    assert bad.status_code == 400
    assert s.get(nexus.url + V1 + "/components/not-an-id").status_code == 422
    assert s.get(nexus.url + V1 + "/search", params={"sort": "name"}).status_code == 400


def test_status_anonymous_access_and_metrics(fresh_nexus: RunningNexus, tmp_path: Path) -> None:
    nexus = fresh_nexus
    s, admin = nexus.session(), nexus.session(auth=True)
    assert s.get(nexus.url + V1 + "/status").status_code == 200
    assert s.get(nexus.url + V1 + "/status/writable").status_code == 200
    assert s.get(nexus.url + "/service/metrics/prometheus").status_code == 401
    assert admin.get(nexus.url + "/service/metrics/prometheus").headers["Content-Type"].startswith("text/plain")
    assert s.get(nexus.url + V1 + "/security/anonymous").status_code == 401
    assert admin.get(nexus.url + V1 + "/security/anonymous").json() == \
        {"enabled": True, "userId": "anonymous", "realmName": "NexusAuthorizingRealm"}
    off = admin.put(nexus.url + V1 + "/security/anonymous", json={"enabled": False, "userId": "anonymous",
                                                                  "realmName": "NexusAuthorizingRealm"})
    assert off.json()["enabled"] is False
    assert s.get(nexus.url + V1 + "/repositories").status_code == 401
    assert s.get(nexus.index() + "idna/").status_code == 401
    refused = pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "a"), "idna", check=False)
    assert refused.returncode != 0
    host = nexus.url.removeprefix("http://")
    pip("download", "--index-url", f"http://admin:{nexus.password}@{host}/repository/pypi-group/simple/",
        "-d", str(tmp_path / "b"), "idna")
    assert s.get(nexus.url + V1 + "/status").status_code == 200  # still public
    admin.put(nexus.url + V1 + "/security/anonymous", json={"enabled": True})
    assert s.get(nexus.url + V1 + "/repositories").status_code == 200


def test_change_password_removes_admin_password(fresh_nexus: RunningNexus) -> None:
    nexus = fresh_nexus
    path = Path(nexus.component.endpoint().password_file)
    assert path.stat().st_mode & 0o777 == 0o600
    old = nexus.password
    r = nexus.session(auth=True).put(nexus.url + V1 + "/security/users/admin/change-password", data="n3w-secret",
                                     headers={"Content-Type": "text/plain"})
    assert r.status_code == 204 and not path.exists()
    assert nexus.session().get(nexus.url + V1 + "/security/anonymous", auth=("admin", old)).status_code == 401
    assert nexus.session().get(nexus.url + V1 + "/security/anonymous", auth=("admin", "n3w-secret")).ok
    nexus.restart()
    assert nexus.session().get(nexus.url + V1 + "/security/anonymous", auth=("admin", "n3w-secret")).ok


def test_deleting_a_proxied_component_makes_the_next_request_fetch_it_again(fresh_nexus: RunningNexus,
                                                                           tmp_path: Path) -> None:
    nexus = fresh_nexus
    pip("download", "--no-deps", "--index-url", nexus.index(), "-d", str(tmp_path / "a"), "idna")
    wheel = next((tmp_path / "a").iterdir()).name
    assert nexus.stand_in_requests()[f"/files/{wheel}"] == 1
    items = nexus.session().get(nexus.url + V1 + "/components", params={"repository": "pypi-proxy"}).json()["items"]
    idna = next(c for c in items if c["name"] == "idna")
    assert nexus.session().delete(nexus.url + V1 + f"/components/{idna['id']}").status_code == 401
    assert nexus.session(auth=True).delete(nexus.url + V1 + f"/components/{idna['id']}").status_code == 204
    assert nexus.session().get(nexus.url + V1 + f"/components/{idna['id']}").status_code == 404
    pip("download", "--no-deps", "--index-url", nexus.index(), "-d", str(tmp_path / "b"), "idna")
    assert nexus.stand_in_requests()[f"/files/{wheel}"] == 2


def test_unsupported_endpoints_say_so_and_reset_forgets_content(fresh_nexus: RunningNexus, tmp_path: Path) -> None:
    nexus = fresh_nexus
    r = nexus.session(auth=True).get(nexus.url + V1 + "/blobstores")
    assert r.status_code == 404 and "not supported by the labkit simulator" in r.text
    _upload(nexus, make_wheel(tmp_path, "kappa", "1.0"), "kappa", "1.0")
    nexus.session(auth=True).delete(nexus.url + V1 + "/repositories/maven-public")
    nexus.run(nexus.component.reset())
    names = [r["name"] for r in nexus.session().get(nexus.url + V1 + "/repositories").json()]
    assert names == ["pypi-proxy", "pypi-hosted", "pypi-group", "maven-central", "maven-public"]
    assert nexus.session().get(nexus.url + V1 + "/search", params={"name": "kappa"}).json()["items"] == []
    assert nexus.session(auth=True).get(nexus.url + V1 + "/security/anonymous").ok


def test_head_and_an_offline_repository(fresh_nexus: RunningNexus) -> None:
    nexus = fresh_nexus
    s, admin = nexus.session(), nexus.session(auth=True)
    url = f"{nexus.url}/repository/maven-central/io/msalab/hello/1.0.0/hello-1.0.0.jar"
    body = s.get(url).content
    head = s.head(url)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(body) and head.content == b""
    config = admin.get(nexus.url + V1 + "/repositories/maven/proxy/maven-central").json()
    assert admin.put(nexus.url + V1 + "/repositories/maven/proxy/maven-central",
                     json={**config, "online": False}).status_code == 204
    offline = s.get(url)
    assert offline.status_code == 503 and "offline" in offline.text
    rows = admin.get(nexus.url + "/service/rest/internal/ui/repositories/details").json()
    assert next(r for r in rows if r["name"] == "maven-central")["status"] == \
        {"online": False, "description": "Offline", "reason": None}
