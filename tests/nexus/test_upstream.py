"""Where the proxies fetch from: pip's own configuration by default, the stand-in (labelled) when the lab is offline
or pip has no index; and Nexus alone as ``python -m labkit.nexus`` (what the kind harness runs for
``sonatype/nexus3``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from labkit.core.network import free_port
from labkit.nexus.upstream import PYPI_DEFAULT, StandIn, choose, pip_index, remote_base


def answers(url: str) -> None:
    """A probe for which every remote answers (tests never touch the network)."""
    return None


@pytest.fixture
def stand_in(tmp_path: Path) -> StandIn:
    return StandIn(tmp_path, ("127.0.0.1", free_port()))


def _pip_config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(text)
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("LABKIT_OFFLINE", raising=False)
    monkeypatch.delenv("LABKIT_NEXUS_PYPI_INDEX", raising=False)


def test_pip_configuration_picks_the_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              stand_in: StandIn) -> None:
    _pip_config(tmp_path, "[global]\nindex-url = https://mirror.example.org/pypi/simple/\n", monkeypatch)
    assert pip_index() == "https://mirror.example.org/pypi/simple/"
    chosen = choose({}, stand_in, answers)
    assert chosen.pypi == "https://mirror.example.org/pypi/" and not chosen.stand_in
    assert "pip's configuration" in chosen.source
    monkeypatch.setenv("PIP_INDEX_URL", "https://other.example.org/simple")  # pip's environment wins
    assert choose({}, stand_in, answers).pypi == "https://other.example.org/"
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    offline = choose({}, stand_in, answers)
    assert offline.stand_in and offline.pypi == stand_in.pypi_url and offline.maven == stand_in.maven_url
    assert offline.source.startswith("stand-in")


def test_no_index_or_a_file_index_means_the_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     stand_in: StandIn) -> None:
    _pip_config(tmp_path, "[global]\nno-index = true\n", monkeypatch)
    assert pip_index() is None and choose({}, stand_in, answers).stand_in
    _pip_config(tmp_path, "[install]\nindex-url = file:///srv/simple\n", monkeypatch)
    chosen = choose({}, stand_in, answers)
    assert chosen.stand_in and "file:///srv/simple" in chosen.source
    _pip_config(tmp_path, "[global]\ntimeout = 60\n", monkeypatch)
    assert pip_index() == PYPI_DEFAULT and remote_base(PYPI_DEFAULT) == "https://pypi.org/"
    assert choose({"nexus_maven_remote": "https://maven.example.org/m2/"}, stand_in, answers).maven == \
        "https://maven.example.org/m2/"


def test_an_unreachable_remote_means_the_stand_in_and_says_which(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  stand_in: StandIn) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    _pip_config(tmp_path, f"[global]\nindex-url = {closed}/simple/\n", monkeypatch)
    chosen = choose({"nexus_maven_remote": closed + "/m2/"}, stand_in)  # the real probe, on loopback only
    assert chosen.stand_in and chosen.pypi == stand_in.pypi_url
    assert f"{closed}/simple/ is not reachable from this machine" in chosen.source
    asked = []
    chosen = choose({"nexus_maven_remote": closed + "/m2/"}, stand_in,
                    lambda url: asked.append(url) or ("refused" if url.startswith(closed) else None))
    assert chosen.stand_in and "m2/ is not reachable" in chosen.source and len(asked) == 2
    # one format's remote down: only that format from the stand-in
    _pip_config(tmp_path, "[global]\nindex-url = https://mirror.example.org/simple/\n", monkeypatch)
    chosen = choose({"nexus_maven_remote": closed + "/m2/"}, stand_in, lambda url: "refused" if url.startswith(closed)
                    else None)
    assert chosen.maven_stand_in and not chosen.pypi_stand_in and chosen.maven == stand_in.maven_url
    assert chosen.pypi == "https://mirror.example.org/" and "Maven from the stand-in" in chosen.source


def test_standalone_server_as_the_nexus3_container(tmp_path: Path) -> None:
    data, port = tmp_path / "nexus-data", free_port()
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "labkit.nexus", "--home", str(tmp_path / "home"), "--listen",
                             f"127.0.0.1:{port}", "--data-dir", str(data), "--fresh", "--offline"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = json.loads(proc.stdout.readline())
        assert endpoint["url"] == f"http://127.0.0.1:{port}" and endpoint["upstream"]["stand_in"]
        password = (data / "admin.password").read_text()
        s = requests.Session()
        s.trust_env = False
        names = [r["name"] for r in s.get(endpoint["url"] + "/service/rest/v1/repositories").json()]
        assert names == ["maven-central", "maven-public"]  # a new Nexus: the lab creates the PyPI ones by REST
        assert s.get(endpoint["url"] + "/service/rest/v1/security/anonymous", auth=("admin", password)).ok
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
