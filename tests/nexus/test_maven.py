"""The maven2 proxy as Maven and Gradle see it: the layout, maven-metadata.xml, the checksum files beside every file,
the group the slide's ``maven { url … }`` points at, and Nexus' refusals."""

from __future__ import annotations

import hashlib
import threading
import xml.etree.ElementTree as ET
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import pytest

from labkit.nexus.upstream import FIXTURE

from .conftest import RunningNexus

ARTIFACT = "io/msalab/hello/1.0.0/hello-1.0.0"


@pytest.mark.parametrize("repository", ["maven-central", "maven-public"])
def test_artifact_pom_and_checksums(nexus: RunningNexus, repository: str) -> None:
    s = nexus.session()
    base = f"{nexus.url}/repository/{repository}/{ARTIFACT}"
    jar = s.get(base + ".jar")
    assert jar.status_code == 200 and jar.content == (FIXTURE / f"{ARTIFACT}.jar").read_bytes()
    assert "io/msalab/hello/Greeting.class" in zipfile.ZipFile(BytesIO(jar.content)).namelist()
    pom = ET.fromstring(s.get(base + ".pom").content)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    assert [pom.findtext(f"m:{k}", namespaces=ns) for k in ("groupId", "artifactId", "version")] == \
        ["io.msalab", "hello", "1.0.0"]
    for algorithm in ("sha1", "md5", "sha256", "sha512"):
        answer = s.get(f"{base}.jar.{algorithm}")
        assert answer.status_code == 200 and answer.text.strip() == hashlib.new(algorithm, jar.content).hexdigest()


def test_maven_metadata_and_fetch_once(fresh_nexus: RunningNexus) -> None:
    s = fresh_nexus.session()
    url = f"{fresh_nexus.url}/repository/maven-central/io/msalab/hello/maven-metadata.xml"
    metadata = ET.fromstring(s.get(url).content)
    assert metadata.findtext("versioning/release") == "1.0.0"
    assert s.get(url + ".sha1").text == hashlib.sha1(s.get(url).content).hexdigest()
    for _ in range(3):
        assert s.get(f"{fresh_nexus.url}/repository/maven-central/{ARTIFACT}.jar").status_code == 200
    counts = fresh_nexus.stand_in_requests()
    assert counts["/maven2/io/msalab/hello/maven-metadata.xml"] == 1 and counts[f"/maven2/{ARTIFACT}.jar"] == 1
    fresh_nexus.clock.offset = 1441 * 60  # past metadataMaxAge: metadata is asked again, the jar never
    s.get(url)
    s.get(f"{fresh_nexus.url}/repository/maven-central/{ARTIFACT}.jar")
    counts = fresh_nexus.stand_in_requests()
    assert counts["/maven2/io/msalab/hello/maven-metadata.xml"] == 2 and counts[f"/maven2/{ARTIFACT}.jar"] == 1
    component = s.get(f"{fresh_nexus.url}/service/rest/v1/search",
                      params={"repository": "maven-central", "group": "io.msalab", "name": "hello"}).json()["items"]
    assert [(c["group"], c["name"], c["version"], c["format"]) for c in component] == \
        [("io.msalab", "hello", "1.0.0", "maven2")]


def test_refusals(nexus: RunningNexus) -> None:
    s = nexus.session()
    missing = s.get(f"{nexus.url}/repository/maven-central/io/msalab/hello/9.9/hello-9.9.jar")
    assert missing.status_code == 404
    assert s.get(f"{nexus.url}/repository/maven-central/not-a-maven-path").status_code == 400
    snapshot = s.get(f"{nexus.url}/repository/maven-central/io/msalab/hello/1.1-SNAPSHOT/hello-1.1-SNAPSHOT.jar")
    assert snapshot.status_code == 400 and "RELEASE" in snapshot.text
    deploy = nexus.session(auth=True).put(f"{nexus.url}/repository/maven-central/{ARTIFACT}.jar", data=b"x")
    assert deploy.status_code == 405 and "not supported by the labkit simulator" in deploy.text
    assert s.get(f"{nexus.url}/repository/no-such-repository/x").status_code == 404


def test_the_group_merges_maven_metadata_of_its_members(fresh_nexus: RunningNexus, tmp_path: Path) -> None:
    """A second remote has hello 2.0.0: the group's metadata lists both versions, the newest as release."""
    folder = tmp_path / "m2" / "io" / "msalab" / "hello"
    folder.mkdir(parents=True)
    (folder / "maven-metadata.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<metadata><groupId>io.msalab</groupId><artifactId>hello</artifactId>"
        "<versioning><latest>2.0.0</latest><release>2.0.0</release><versions><version>2.0.0</version></versions>"
        "<lastUpdated>20270101000000</lastUpdated></versioning></metadata>\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "m2")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        admin = fresh_nexus.session(auth=True)
        v1 = fresh_nexus.url + "/service/rest/v1/repositories/maven"
        body = {"name": "maven-other", "online": True, "storage": {"blobStoreName": "default",
                                                                   "strictContentTypeValidation": True},
                "proxy": {"remoteUrl": f"http://127.0.0.1:{server.server_address[1]}/"},
                "negativeCache": {"enabled": True, "timeToLive": 1440}, "httpClient": {"blocked": False},
                "maven": {"versionPolicy": "RELEASE", "layoutPolicy": "STRICT"}}
        assert admin.post(v1 + "/proxy", json=body).status_code == 201
        group = {"name": "maven-public", "online": True, "storage": {"blobStoreName": "default"},
                 "group": {"memberNames": ["maven-central", "maven-other"]}}
        assert admin.put(v1 + "/group/maven-public", json=group).status_code == 204
        url = f"{fresh_nexus.url}/repository/maven-public/io/msalab/hello/maven-metadata.xml"
        merged = fresh_nexus.session().get(url)
        doc = ET.fromstring(merged.content)
        assert [v.text for v in doc.iterfind("versioning/versions/version")] == ["1.0.0", "2.0.0"]
        assert doc.findtext("versioning/release") == "2.0.0" and doc.findtext("artifactId") == "hello"
        assert fresh_nexus.session().get(url + ".sha1").text == hashlib.sha1(merged.content).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def test_search_and_download_one_asset(nexus: RunningNexus) -> None:
    s = nexus.session()
    for suffix in (".jar", ".pom"):
        assert s.get(f"{nexus.url}/repository/maven-central/{ARTIFACT}{suffix}").ok
    query = {"repository": "maven-central", "maven.groupId": "io.msalab", "maven.artifactId": "hello",
             "maven.baseVersion": "1.0.0"}
    v1 = nexus.url + "/service/rest/v1"
    assets = s.get(v1 + "/search/assets", params=query).json()["items"]
    assert sorted(a["path"].rsplit(".", 1)[1] for a in assets) == ["jar", "pom"]
    jars = s.get(v1 + "/search/assets", params={**query, "maven.extension": "jar"}).json()["items"]
    assert [a["path"] for a in jars] == [f"{ARTIFACT}.jar"]
    many = s.get(v1 + "/search/assets/download", params=query, allow_redirects=False)
    assert many.status_code == 400 and "multiple assets" in many.text
    one = s.get(v1 + "/search/assets/download", params={**query, "maven.extension": "jar", "maven.classifier": ""})
    assert one.status_code == 200 and one.content == (FIXTURE / f"{ARTIFACT}.jar").read_bytes()
    assert s.get(v1 + "/search/assets/download", params={**query, "maven.extension": "war"}).status_code == 404
