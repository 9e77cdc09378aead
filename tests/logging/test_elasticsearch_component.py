"""The logging component's Elasticsearch side in a lab home of its own: the endpoint's URL, user and password file
(mode 0600, the lab secret) reach it; without a Kubernetes API (no nodes) it runs no collector."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from labkit.core.addresses import ELASTICSEARCH
from labkit.logging.component import ELASTIC_PASSWORD, Logging

from ..components import ComponentLoop


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ComponentLoop, Logging]]:
    with ComponentLoop(tmp_path_factory.mktemp("logging"), "logging") as lp:
        component = lp.start(Logging(), "logging")
        try:
            yield lp, component
        finally:
            lp.run(component.stop())


def test_endpoint_credentials_reach_elasticsearch(loop: tuple[ComponentLoop, Logging]) -> None:
    lp, component = loop
    ep = component.endpoint()
    host, port = lp.ctx.network.slot(ELASTICSEARCH)
    assert ep.url == f"http://{host}:{port}" and ep.user == "elastic" and ep.fluentbit == {}
    password_file = Path(ep.password_file)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text() == lp.ctx.secrets.get(ELASTIC_PASSWORD)
    es = Elasticsearch(ep.url, basic_auth=(ep.user, password_file.read_text()))
    assert es.cluster.health()["number_of_nodes"] == 1
    assert lp.run(component.health()).ok
