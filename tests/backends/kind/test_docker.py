"""The kind harness's Docker Engine: ``DOCKER_HOST`` is the Engine API of the sim lab behind the cluster, so the
``docker`` SDK (and the kind backend's docker product) talk to a daemon there as on a laptop with Docker."""

from __future__ import annotations

import os
from pathlib import Path

import docker

from labkit.docker.kind import DockerKind, ping

from .harness import Harness
from .test_standins import _kind_config, run


def test_docker_host_is_the_clusters_sim_lab(harness: Harness, tmp_path: Path) -> None:
    url = harness.env["DOCKER_HOST"]
    assert not ping(url)[0]  # no cluster yet: nothing answers there, as with Docker stopped
    res = run(harness, "kind", "create", "cluster", "--config", str(_kind_config(tmp_path)), timeout=300)
    assert res.returncode == 0, res.stderr
    assert ping(url) == (True, "API 1.45")
    assert DockerKind().endpoint(None).url == os.environ["DOCKER_HOST"] == url  # type: ignore[arg-type]
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text('FROM python:3.12-slim\nCMD ["python", "-c", "print(42)"]\n')
    client = docker.DockerClient(base_url=url)
    try:
        image, _ = client.images.build(path=str(context), tag="kind/answer:1")
        assert client.containers.run(image.id, remove=True) == b"42\n"
    finally:
        client.close()
    res = run(harness, "kind", "delete", "cluster", "--name", "lab", timeout=300)
    assert res.returncode == 0, res.stderr
    assert not Path(url.removeprefix("unix://")).exists()
