"""Chapter 04's wiring, with real clients: the shop's Dockerfile builds through Nexus' group (the labkit image
builder's ``pip install``), kind's provisioning through the REST API (password change, anonymous read, the
repositories, a proxy's remote blocked and unblocked), and pip's log read per package."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.core.checkout import Checkout
from labkit.images import build
from labkit.nexus import piplog, provision
from labkit.shop.images import pip_env

from .conftest import RunningNexus, pip

SHOP_PACKAGES = {"prometheus-client", "opentelemetry-api", "opentelemetry-sdk",
                 "opentelemetry-exporter-otlp-proto-http"}


def _stored(nexus: RunningNexus, repository: str = "pypi-proxy") -> set[str]:
    r = nexus.session(auth=True).get(f"{nexus.url}/service/rest/v1/components", params={"repository": repository})
    names = {piplog.normalize(c["name"]) for c in r.json()["items"]}
    token = r.json()["continuationToken"]
    while token:
        r = nexus.session(auth=True).get(f"{nexus.url}/service/rest/v1/components",
                                         params={"repository": repository, "continuationToken": token})
        names |= {piplog.normalize(c["name"]) for c in r.json()["items"]}
        token = r.json()["continuationToken"]
    return names


def test_the_shops_dockerfile_installs_through_the_group(fresh_nexus: RunningNexus, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache miss of the pip step (an empty build cache) asks Nexus only, even on a machine whose pip reads a
    wheelhouse (the tests' PIP_NO_INDEX/PIP_FIND_LINKS); the image has the packages; Nexus stored them."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    apps = Checkout.find().root / "apps"
    events: list[str] = []
    tag, cache, wheelhouse = "localhost:5001/shop/catalog:test", tmp_path / "cache", Checkout.find().wheelhouse
    result = build(apps, "catalog/Dockerfile", tag=tag, cache_dir=cache, env=pip_env(wheelhouse, fresh_nexus.index()),
                   progress=lambda e: events.append(str(e)))
    assert any("RUN pip install" in e and "DONE" in e for e in events), events
    assert _stored(fresh_nexus) >= SHOP_PACKAGES
    assert result.config["config"]["Env"] and not any("PIP_INDEX_URL" in e for e in result.config["config"]["Env"])
    # the same build again: the pip step is cached, whatever the index (it is the build host's setting, not a key)
    again: list[str] = []
    build(apps, "catalog/Dockerfile", tag=tag, cache_dir=cache, env=pip_env(wheelhouse, "http://127.0.0.1:9/unused/"),
          progress=lambda e: again.append(str(e)))
    assert any("RUN pip install" in e and "CACHED" in e for e in again), again


def test_provisioning_through_the_rest_api(fresh_nexus: RunningNexus, tmp_path: Path) -> None:
    first = fresh_nexus.password
    admin = provision.NexusAdmin(fresh_nexus.url, first)
    admin.wait_writable(30)
    admin.change_password("the-labs-own")
    assert not provision.NexusAdmin(fresh_nexus.url, first).authenticated()
    assert provision.NexusAdmin(fresh_nexus.url, "the-labs-own").authenticated()
    # the group loses its proxy, the proxy is blocked: provisioning puts both back and keeps the proxy's remote
    group = admin.repository(provision.REPOSITORIES[2])
    group["group"]["memberNames"] = ["pypi-hosted"]
    admin.request("PUT", "/repositories/pypi/group/pypi-group", json=group)
    admin.set_blocked("pypi-proxy", True)
    remote = admin.repository(provision.REPOSITORIES[0])["proxy"]["remoteUrl"]
    done = provision.provision(admin, {"pypi": "https://pypi.org/", "maven": "https://repo1.maven.org/maven2/"})
    assert "pypi-group updated" in done and "pypi-proxy updated" in done and "pypi-hosted kept" in done
    assert admin.repository(provision.REPOSITORIES[2])["group"]["memberNames"] == ["pypi-hosted", "pypi-proxy"]
    proxy = admin.repository(provision.REPOSITORIES[0])
    assert proxy["proxy"]["remoteUrl"] == remote and proxy["httpClient"]["blocked"] is False
    assert admin.request("GET", "/security/anonymous").json()["enabled"] is True
    assert provision.provision(admin, {"pypi": remote, "maven": "x"}) == [
        f"{r.name} kept" for r in provision.REPOSITORIES]


def test_a_blocked_remote_serves_what_is_stored_and_refuses_the_rest(fresh_nexus: RunningNexus,
                                                                      tmp_path: Path) -> None:
    index = fresh_nexus.index()
    pip("download", "--no-deps", "-d", str(tmp_path / "a"), "--index-url", index, "idna")
    admin = provision.NexusAdmin(fresh_nexus.url, fresh_nexus.password)
    admin.set_blocked("pypi-proxy", True)
    pip("download", "--no-deps", "-d", str(tmp_path / "b"), "--index-url", index, "idna")
    missing = pip("download", "--no-deps", "-d", str(tmp_path / "c"), "--index-url", index, "iniconfig", check=False)
    assert missing.returncode != 0 and "No matching distribution found for iniconfig" in missing.stderr
    admin.set_blocked("pypi-proxy", False)
    pip("download", "--no-deps", "-d", str(tmp_path / "d"), "--index-url", index, "iniconfig")


def test_pips_log_gives_each_packages_fetch_time(fresh_nexus: RunningNexus, tmp_path: Path) -> None:
    requirements = Checkout.find().root / "apps" / "catalog" / "requirements.txt"
    run = piplog.install(requirements, fresh_nexus.index(), tmp_path / "venv")
    assert run.ok, run.output
    rows = piplog.package_times(run.log)
    installed = piplog.installed_versions(run.report)
    assert {r["package"] for r in rows} == set(installed) and set(installed) >= SHOP_PACKAGES
    assert all(r["seconds"] >= 0 and r["files"] >= 1 for r in rows)
    assert list((tmp_path / "venv").glob("lib/python*/site-packages/prometheus_client"))
