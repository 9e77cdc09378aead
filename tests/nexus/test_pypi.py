"""Real pip and twine against the PyPI repositories: the proxy (stand-in upstream: the lab's wheelhouse), the
hosted repository (twine upload, refused without or with wrong credentials) and the group (hosted first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest

from labkit.core.checkout import Checkout

from .conftest import RunningNexus, pip
from .upstream import make_wheel

WHEELHOUSE = Checkout.find().wheelhouse
pytestmark = pytest.mark.skipif(not any(WHEELHOUSE.glob("idna-*.whl")),
                                reason="the wheelhouse (scripts/venv.sh) has no idna wheel")


def test_pip_download_through_the_group_fetches_each_file_once(nexus: RunningNexus, tmp_path: Path) -> None:
    pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "a"), "requests")
    got = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert any(n.startswith("requests-") for n in got) and any(n.startswith("idna-") for n in got)
    first = nexus.stand_in_requests()
    files = {path: n for path, n in first.items() if path.startswith("/files/")}
    assert len(files) == len(got) and set(files.values()) == {1}
    pip("download", "--index-url", nexus.index(), "-d", str(tmp_path / "b"), "requests")  # warm: all stored
    assert nexus.stand_in_requests() == first
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == got


def test_pip_install_into_a_target_and_index_versions(nexus: RunningNexus, tmp_path: Path) -> None:
    pip("install", "--index-url", nexus.index("pypi-proxy"), "--target", str(tmp_path / "t"), "idna")
    assert any(p.name.startswith("idna") for p in (tmp_path / "t").iterdir())
    out = pip("index", "versions", "idna", "--index-url", nexus.index()).stdout
    version = next(WHEELHOUSE.glob("idna-*.whl")).name.split("-")[1]
    assert f"idna ({version})" in out


def test_project_pages_rewrite_links_and_speak_pep_691(nexus: RunningNexus) -> None:
    s = nexus.session()
    page = s.get(nexus.index("pypi-proxy") + "idna/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'href="../../packages/idna/' in page.text and "#sha256=" in page.text
    assert nexus.component.stand_in.url not in page.text  # every link points at Nexus
    as_json = s.get(nexus.index("pypi-proxy") + "IDNA/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert as_json.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    data = as_json.json()
    assert data["meta"]["api-version"] == "1.0" and data["name"] == "idna"
    wheel = data["files"][0]
    assert wheel["url"].startswith("../../packages/idna/") and len(wheel["hashes"]["sha256"]) == 64
    assert s.get(nexus.index("pypi-proxy") + "no-such-project-anywhere/").status_code == 404


def _twine(nexus: RunningNexus, files: list[Path], user: str | None, password: str | None) -> \
        subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")} | {"NO_PROXY": "*"}
    creds = [*(["-u", user] if user is not None else []), *(["-p", password] if password is not None else [])]
    return subprocess.run([sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
                           "--repository-url", f"{nexus.url}/repository/pypi-hosted/", *creds, *map(str, files)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_twine_upload_to_hosted_then_pip_through_the_group(nexus: RunningNexus, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "lab-greeting", "0.1.0")
    anonymous = nexus.session().post(f"{nexus.url}/repository/pypi-hosted/", files={"content": wheel.open("rb")},
                                     data={":action": "file_upload", "name": "lab-greeting", "version": "0.1.0"})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = _twine(nexus, [wheel], "admin", "not-the-password")
    assert wrong.returncode != 0 and "401" in wrong.stdout + wrong.stderr
    done = _twine(nexus, [wheel], *nexus.auth)
    assert done.returncode == 0, done.stdout + done.stderr
    again = _twine(nexus, [wheel], *nexus.auth)  # a hosted repository allows a file once
    assert again.returncode != 0 and "400" in again.stdout + again.stderr
    pip("install", "--index-url", nexus.index(), "--target", str(tmp_path / "t"), "lab-greeting")
    assert "0.1.0" in (tmp_path / "t" / "lab_greeting.py").read_text()
    components = nexus.session().get(f"{nexus.url}/service/rest/v1/components",
                                     params={"repository": "pypi-hosted"}).json()["items"]
    uploaded = next(c for c in components if c["name"] == "lab-greeting")
    assert uploaded["version"] == "0.1.0" and uploaded["assets"][0]["uploader"] == "admin"


def test_the_group_serves_hosted_before_proxy(nexus: RunningNexus, tmp_path: Path) -> None:
    """A hosted file of the same name as an upstream one wins in the group."""
    version = next(WHEELHOUSE.glob("iniconfig-*.whl")).name.split("-")[1]
    ours = make_wheel(tmp_path, "iniconfig", version)
    assert _twine(nexus, [ours], *nexus.auth).returncode == 0
    links = nexus.session().get(nexus.index() + "iniconfig/",
                                headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()["files"]
    assert [f["filename"] for f in links] == [ours.name]
    served = nexus.session().get(urljoin(nexus.index() + "iniconfig/", links[0]["url"]))
    assert served.content == ours.read_bytes()


def test_hosted_upload_needs_a_hosted_repository(nexus: RunningNexus, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "lab-other", "1.0")
    r = nexus.session(auth=True).post(f"{nexus.url}/repository/pypi-proxy/", files={"content": wheel.open("rb")},
                                      data={":action": "file_upload", "name": "lab-other", "version": "1.0"})
    assert r.status_code == 400 and "hosted" in r.text
    assert json.loads(nexus.session().get(f"{nexus.url}/service/rest/v1/search", params={"name": "lab-other"})
                      .text)["items"] == []
