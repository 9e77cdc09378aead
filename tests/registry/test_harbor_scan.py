"""Harbor's scanning on the lab registry, driven with requests against ``/api/v2.0`` and the OCI referrers API:
Syft's SBOM stored as an accessory of the artifact, Trivy's vulnerability scan ending in ``Error`` with Trivy's
own message on this offline machine (its database cannot be fetched), scan on push without slowing the push."""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.images.client import RegistryClient
from labkit.registry.harbor.sbom import SBOM_TYPE
from labkit.registry.harbor.scan import vulnerability
from labkit.registry.harbor.scan.reports import Report

from .conftest import RunningRegistry
from .images import OCI_INDEX, OCI_MANIFEST, Image, make_image

SITE = "usr/local/lib/python3.11/site-packages"
PACKAGES = ("requests", "idna", "certifi")  # real dist-info folders, copied from this interpreter's site-packages
GENERIC = "application/vnd.security.vulnerability.report; version=1.1"
OVERVIEWS = {"with_scan_overview": "true", "with_sbom_overview": "true", "with_accessory": "true"}


@pytest.fixture(scope="module")
def harbor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry whose Trivy runs offline with an empty cache, whatever the caller's environment says."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LABKIT_TRIVY_DOWNLOAD_DB", raising=False)
        mp.delenv("LABKIT_TRIVY_CACHE_DIR", raising=False)
        running = RunningRegistry(tmp_path_factory.mktemp("harbor-scan") / "home")
    try:
        yield running
    finally:
        running.close()


def python_image(name: str) -> tuple[Image, dict[str, str]]:
    """An image whose layer holds real ``*.dist-info`` folders (as pip installs them) and an app file."""
    files: dict[str, bytes] = {"app/main.py": f"print({name!r})\n".encode()}
    versions = {}
    for package in PACKAGES:
        dist = importlib.metadata.distribution(package)
        folder = Path(str(dist.locate_file(""))) / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
        for item in ("METADATA", "RECORD", "WHEEL", "top_level.txt"):
            if (folder / item).exists():
                files[f"{SITE}/{folder.name}/{item}"] = (folder / item).read_bytes()
        versions[package] = dist.version
    return make_image(name, [files]), versions


def push(client: RegistryClient, repo: str, image: Image, tag: str) -> float:
    """Push ``image`` as ``repo:tag``; returns how long the push took (seconds)."""
    started = time.monotonic()
    for digest, blob in image.blobs().items():
        client.push_blob(repo, blob, digest)
    client.push_manifest(repo, tag, image.manifest, OCI_MANIFEST)
    return time.monotonic() - started


def artifact_url(harbor: RunningRegistry, project: str, repo: str, ref: str) -> str:
    return f"{harbor.api}/projects/{project}/repositories/{repo.replace('/', '%252F')}/artifacts/{ref}"


def wait_for(harbor: RunningRegistry, url: str, key: str, timeout: float = 180.0) -> dict[str, Any]:
    """The artifact once its ``key`` overview (``scan_overview``/``sbom_overview``) is final."""
    deadline = time.monotonic() + timeout
    while True:
        art = requests.get(url, auth=harbor.auth, timeout=10,
                           params=OVERVIEWS).json()
        overview = art.get(key) or {}
        if key == "scan_overview":
            overview = next(iter(overview.values()), {})
        if overview.get("scan_status") in ("Success", "Error", "Stopped"):
            return art
        assert time.monotonic() < deadline, f"{key} still {overview} after {timeout} s"
        time.sleep(0.25)


def test_sbom_is_an_accessory_listing_the_images_python_packages(harbor: RunningRegistry) -> None:
    harbor.project("scans")  # private
    image, versions = python_image("sbom")
    push(harbor.client(), "scans/app", image, "v1")
    url = artifact_url(harbor, "scans", "app", "v1")
    body = {"scan_type": "sbom"}
    assert requests.post(f"{url}/scan", json=body, timeout=10).status_code == 401  # anonymous, private project
    resp = requests.post(f"{url}/scan", json=body, auth=harbor.auth, timeout=10)
    assert resp.status_code == 202, resp.text
    art = wait_for(harbor, url, "sbom_overview")
    overview = art["sbom_overview"]
    assert overview["scan_status"] == "Success", overview
    assert overview["scanner"]["name"] == "Syft" and overview["duration"] >= 0
    sbom_digest = overview["sbom_digest"]
    # the accessory: listed on the artifact, returned by the referrers API, its document Syft's SPDX
    assert [(a["type"], a["digest"]) for a in art["accessories"]] == [("sbom.harbor", sbom_digest)]
    referrers = requests.get(f"{harbor.url}/v2/scans/app/referrers/{image.digest}", auth=harbor.auth,
                             timeout=10).json()
    assert [(m["artifactType"], m["digest"]) for m in referrers["manifests"]] == [(SBOM_TYPE, sbom_digest)]
    doc = requests.get(f"{artifact_url(harbor, 'scans', 'app', sbom_digest)}/additions/sbom", auth=harbor.auth,
                       timeout=10)
    assert doc.status_code == 200, doc.text
    spdx = doc.json()
    assert spdx["spdxVersion"].startswith("SPDX-")
    found = {p["name"]: p.get("versionInfo") for p in spdx["packages"]}
    for package, version in versions.items():
        assert found.get(package) == version, (package, found)
    # the accessory is not listed as an artifact of its own
    listed = requests.get(f"{harbor.api}/projects/scans/repositories/app/artifacts", auth=harbor.auth,
                          timeout=10).json()
    assert [a["digest"] for a in listed] == [image.digest]
    # deleting the artifact takes its SBOM accessory (and report) with it, as Harbor deletes hard accessories
    assert requests.delete(url, auth=harbor.auth, timeout=10).status_code == 200
    gone = requests.get(f"{harbor.url}/v2/scans/app/manifests/{sbom_digest}", auth=harbor.auth, timeout=10,
                        headers={"Accept": OCI_MANIFEST})
    assert gone.status_code == 404
    assert requests.get(f"{harbor.url}/v2/scans/app/referrers/{image.digest}", auth=harbor.auth,
                        timeout=10).json()["manifests"] == []


def test_vulnerability_scan_offline_ends_in_error_with_trivys_message(harbor: RunningRegistry) -> None:
    image, _ = python_image("vulns")
    push(harbor.client(), "shop/vulns", image, "v1")
    url = artifact_url(harbor, "shop", "vulns", "v1")
    assert requests.post(f"{url}/scan", auth=harbor.auth, timeout=10).status_code == 202  # no body: vulnerability
    art = wait_for(harbor, url, "scan_overview")
    (mime, overview), = art["scan_overview"].items()
    assert mime == GENERIC
    assert overview["scan_status"] == "Error"
    assert overview["summary"] is None and overview["complete_percent"] == 0 and overview["severity"] == ""
    log = requests.get(f"{url}/scan/{overview['report_id']}/log", auth=harbor.auth, timeout=10)
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert "FATAL" in log.text and "DB error" in log.text, log.text  # Trivy's own words
    # no report data, in either report type: never a clean-looking report
    native = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
    for accept in (GENERIC, native):
        resp = requests.get(f"{url}/additions/vulnerabilities", auth=harbor.auth, timeout=10,
                            headers={"X-Accept-Vulnerabilities": accept})
        assert resp.status_code == 200 and resp.json() == {}


def test_scan_on_push_runs_in_the_background(harbor: RunningRegistry) -> None:
    harbor.project("auto")
    resp = requests.put(f"{harbor.api}/projects/auto", auth=harbor.auth, timeout=10,
                        json={"metadata": {"auto_sbom_generation": "true", "auto_scan": "true"}})
    assert resp.status_code == 200, resp.text
    image, _ = python_image("auto")
    seconds = push(harbor.client(), "auto/app", image, "v1")
    url = artifact_url(harbor, "auto", "app", "v1")
    art = requests.get(url, auth=harbor.auth, timeout=10,
                       params=OVERVIEWS).json()
    assert art["sbom_overview"]["scan_status"] in ("Pending", "Running")  # the push did not wait for Syft
    done = wait_for(harbor, url, "sbom_overview")
    assert done["sbom_overview"]["scan_status"] == "Success"
    assert seconds < 5.0, f"the push took {seconds:.2f} s"
    assert wait_for(harbor, url, "scan_overview")["scan_overview"][GENERIC]["scan_status"] == "Error"


def test_stop_a_scan_and_the_conflicts(harbor: RunningRegistry) -> None:
    image, _ = python_image("stop")
    push(harbor.client(), "shop/stop", image, "v1")
    url = artifact_url(harbor, "shop", "stop", "v1")
    resp = requests.post(f"{url}/scan/stop", json={"scan_type": "sbom"}, auth=harbor.auth, timeout=10)
    assert resp.status_code == 400 and "no scan job" in resp.json()["errors"][0]["message"]
    assert requests.post(f"{url}/scan", json={"scan_type": "sbom"}, auth=harbor.auth, timeout=10).status_code == 202
    again = requests.post(f"{url}/scan", json={"scan_type": "sbom"}, auth=harbor.auth, timeout=10)
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "CONFLICT"
    stop = requests.post(f"{url}/scan/stop", json={"scan_type": "sbom"}, auth=harbor.auth, timeout=10)
    assert stop.status_code == 202, stop.text
    art = wait_for(harbor, url, "sbom_overview")
    assert art["sbom_overview"]["scan_status"] == "Stopped" and art["sbom_overview"]["report_id"]
    log = requests.get(f"{url}/scan/{art['sbom_overview']['report_id']}/log", auth=harbor.auth, timeout=10)
    assert "stopped" in log.text
    assert not art.get("accessories")
    bad = requests.post(f"{url}/scan", json={"scan_type": "malware"}, auth=harbor.auth, timeout=10)
    assert bad.status_code == 422
    missing = requests.post(f"{artifact_url(harbor, 'shop', 'stop', 'v9')}/scan", auth=harbor.auth, timeout=10)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


def test_the_registered_scanner(harbor: RunningRegistry) -> None:
    scanners = requests.get(f"{harbor.api}/scanners", auth=harbor.auth, timeout=10).json()
    (trivy,) = scanners
    assert trivy["name"] == "Trivy" and trivy["is_default"] and trivy["vendor"] == "Aqua Security"
    assert trivy["capabilities"] == {"support_vulnerability": True, "support_sbom": True}
    assert trivy["health"] == "healthy"
    meta = requests.get(f"{harbor.api}/scanners/{trivy['uuid']}/metadata", auth=harbor.auth, timeout=10).json()
    assert {c["type"] for c in meta["capabilities"]} == {"vulnerability", "sbom"}
    assert meta["properties"]["env.SCANNER_TRIVY_OFFLINE_SCAN"] == "true"
    assert requests.get(f"{harbor.api}/projects/shop/scanner", auth=harbor.auth, timeout=10).json()["uuid"] == \
        trivy["uuid"]
    added = requests.post(f"{harbor.api}/scanners", auth=harbor.auth, timeout=10,
                          json={"name": "clair", "url": "http://clair:6060"})
    assert added.status_code == 501 and "not supported by the labkit simulator" in added.json()["errors"][0]["message"]


def test_a_scan_cut_short_by_a_restart_runs_again(fresh_registry: RunningRegistry) -> None:
    image, _ = python_image("restart")
    push(fresh_registry.client(), "lab/restart", image, "v1")
    url = artifact_url(fresh_registry, "lab", "restart", "v1")
    assert requests.post(f"{url}/scan", json={"scan_type": "sbom"}, auth=fresh_registry.auth,
                         timeout=10).status_code == 202
    reports = fresh_registry.component.harbor.scans.reports
    (pending,) = reports.unfinished()  # Syft takes a second or more: the restart cuts it short
    fresh_registry.restart()
    art = wait_for(fresh_registry, artifact_url(fresh_registry, "lab", "restart", "v1"), "sbom_overview")
    assert art["sbom_overview"]["scan_status"] == "Success"
    done = fresh_registry.component.harbor.scans.reports.get(pending.uuid)  # the same report, run again
    assert done is not None and done.status == "Success"


def test_trivy_findings_map_to_harbors_report_and_overview() -> None:
    """With Trivy's database present (a laptop that downloaded it), its JSON maps to Harbor's shapes; the
    findings below are as Trivy 0.59 reports them for requests 2.31.0 and idna 3.6."""
    layer = {"Digest": "sha256:" + "1" * 64, "DiffID": "sha256:" + "2" * 64}
    trivy_json = {"SchemaVersion": 2, "ArtifactType": "container_image", "Results": [
        {"Target": "usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", "Class": "lang-pkgs",
         "Type": "python-pkg", "Vulnerabilities": [
             {"VulnerabilityID": "CVE-2024-35195", "PkgName": "requests", "InstalledVersion": "2.31.0",
              "FixedVersion": "2.32.0", "Status": "fixed", "Layer": layer, "SeveritySource": "ghsa",
              "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2024-35195", "Severity": "MEDIUM",
              "Description": "Requests Session object does not verify requests after making first request with "
                             "verify=False", "CweIDs": ["CWE-670"],
              "CVSS": {"ghsa": {"V3Vector": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", "V3Score": 5.6}},
              "References": ["https://github.com/psf/requests/pull/6655"]}]},
        {"Target": "usr/local/lib/python3.11/site-packages/idna-3.6.dist-info/METADATA", "Class": "lang-pkgs",
         "Type": "python-pkg", "Vulnerabilities": [
             {"VulnerabilityID": "CVE-2024-3651", "PkgName": "idna", "InstalledVersion": "3.6", "FixedVersion": "3.7",
              "Status": "fixed", "Layer": layer, "SeveritySource": "ghsa", "Severity": "MEDIUM",
              "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2024-3651", "CweIDs": ["CWE-400"],
              "CVSS": {"ghsa": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "V3Score": 6.2},
                       "nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "V3Score": 7.5}}},
             {"VulnerabilityID": "GHSA-0000-0000-0000", "PkgName": "idna", "InstalledVersion": "3.6",
              "Severity": "CRITICAL", "Status": "affected", "References": ["https://example.invalid/advisory"]}]},
        {"Target": "app", "Class": "lang-pkgs", "Type": "python-pkg"}]}
    digest = "sha256:" + "3" * 64
    data = vulnerability.harbor_report(trivy_json, "shop/app", digest, OCI_MANIFEST)
    assert data["severity"] == "Critical" and data["scanner"]["name"] == "Trivy"
    first, second, third = data["vulnerabilities"]
    assert (first["id"], first["package"], first["version"], first["fix_version"], first["severity"]) == (
        "CVE-2024-35195", "requests", "2.31.0", "2.32.0", "Medium")
    assert first["links"] == ["https://avd.aquasec.com/nvd/cve-2024-35195"]  # the primary URL first
    assert first["preferred_cvss"]["score_v3"] == 5.6 and first["layer"]["digest"] == layer["Digest"]
    assert second["preferred_cvss"]["score_v3"] == 6.2  # the severity's source (ghsa), not NVD
    assert third["links"] == ["https://example.invalid/advisory"] and third["fix_version"] == ""
    assert first["artifact_digests"] == [digest] and first["vendor_attributes"]["CVSS"]["ghsa"]["V3Score"] == 5.6
    now = time.time()
    report = Report("r-1", "shop/app", digest, "vulnerability", "Success", "admin", now - 3, now - 3, now, data, "",
                    None)
    overview = vulnerability.overview(report)
    assert overview["scan_status"] == "Success" and overview["severity"] == "Critical"
    assert overview["summary"] == {"total": 3, "fixable": 2, "summary": {"Medium": 2, "Critical": 1}}
    assert overview["complete_percent"] == 100 and overview["duration"] == 3
    clean = vulnerability.harbor_report({"SchemaVersion": 2, "Results": []}, "shop/app", digest, OCI_MANIFEST)
    assert clean["severity"] == "None" and clean["vulnerabilities"] == []


def test_an_index_is_scanned_image_by_image(harbor: RunningRegistry) -> None:
    client = harbor.client()
    images = [python_image("index-amd64")[0], python_image("index-arm64")[0]]
    for image in images:
        for digest, blob in image.blobs().items():
            client.push_blob("shop/multi", blob, digest)
        client.push_manifest("shop/multi", image.digest, image.manifest, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest),
         "platform": {"architecture": arch, "os": "linux"}} for image, arch in zip(images, ("amd64", "arm64"),
                                                                                    strict=True)]}).encode()
    client.push_manifest("shop/multi", "v1", index, OCI_INDEX)
    url = artifact_url(harbor, "shop", "multi", "v1")
    for scan_type in ("sbom", "vulnerability"):
        resp = requests.post(f"{url}/scan", json={"scan_type": scan_type}, auth=harbor.auth, timeout=10)
        assert resp.status_code == 202, resp.text
    art = wait_for(harbor, url, "sbom_overview")
    assert art["sbom_overview"]["scan_status"] == "Success"
    for image in images:  # each image got its own SBOM accessory
        child = wait_for(harbor, artifact_url(harbor, "shop", "multi", image.digest), "sbom_overview")
        assert [a["type"] for a in child["accessories"]] == ["sbom.harbor"]
    art = wait_for(harbor, url, "scan_overview")
    overview = art["scan_overview"][GENERIC]
    assert overview["scan_status"] == "Error" and overview["complete_percent"] == 0
    log = requests.get(f"{url}/scan/{overview['report_id']}/log", auth=harbor.auth, timeout=10).text
    assert log.count("FATAL") == 2  # both images' Trivy runs, under the index's merged report id


def test_scan_all(harbor: RunningRegistry) -> None:
    image, _ = python_image("scan-all")
    push(harbor.client(), "shop/everything", image, "v1")
    api = f"{harbor.api}/system/scanAll/schedule"
    assert requests.post(api, json={"schedule": {"type": "Manual"}}, timeout=10).status_code == 401
    resp = requests.post(api, json={"schedule": {"type": "Manual"}}, auth=harbor.auth, timeout=10)
    assert resp.status_code == 201, resp.text
    deadline = time.monotonic() + 180
    while True:
        stats = requests.get(f"{harbor.api}/scans/all/metrics", auth=harbor.auth, timeout=10).json()
        if not stats["ongoing"]:
            break
        assert time.monotonic() < deadline, stats
        time.sleep(0.5)
    assert stats["trigger"] == "Manual" and stats["total"] >= 1 and stats["completed"] == stats["total"]
    assert stats["metrics"]["Error"] == stats["total"]  # offline Trivy: every image's scan ends in Error
    art = requests.get(artifact_url(harbor, "shop", "everything", "v1"), auth=harbor.auth, timeout=10,
                       params=OVERVIEWS).json()
    assert art["scan_overview"][GENERIC]["scan_status"] == "Error"
    empty = requests.get(api, auth=harbor.auth, timeout=10)
    assert empty.status_code == 200 and not empty.content  # no schedule yet: Harbor's empty payload
    # a periodic schedule: every two seconds here (Harbor's six-field cron), then removed
    bad = requests.post(api, json={"schedule": {"type": "Custom", "cron": "0 0 * * *"}}, auth=harbor.auth, timeout=10)
    assert bad.status_code == 400 and "expected exactly 6 fields" in bad.json()["errors"][0]["message"]
    every = {"schedule": {"type": "Custom", "cron": "*/2 * * * * *"}}
    assert requests.post(api, json=every, auth=harbor.auth, timeout=10).status_code == 201
    assert requests.post(api, json=every, auth=harbor.auth, timeout=10).status_code == 412  # one schedule only
    got = requests.get(api, auth=harbor.auth, timeout=10).json()
    assert got["schedule"]["type"] == "Custom" and got["schedule"]["cron"] == "*/2 * * * * *"
    deadline = time.monotonic() + 30
    while requests.get(f"{harbor.api}/scans/all/metrics", auth=harbor.auth, timeout=10).json()["trigger"] != \
            "Schedule":
        assert time.monotonic() < deadline, "the schedule never ran a scan all"
        time.sleep(0.3)
    none = {"schedule": {"type": "None"}}
    assert requests.put(api, json=none, auth=harbor.auth, timeout=10).status_code == 200
    assert not requests.get(api, auth=harbor.auth, timeout=10).content
