"""``lab.docker`` on a running sim lab: the SDK from ``DOCKER_HOST``, a build timed with its cache, the layers
table and plot, and a push to the lab registry with the lab's credentials."""

from __future__ import annotations

import os
from pathlib import Path

import docker

from labkit.docker.views import human_size
from labkit.lab import Lab


def test_lab_docker_builds_shows_layers_and_pushes(shared_lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nENV MODE=lab\nCOPY app.py /app/\n"
                                         'CMD ["python", "/app/app.py"]\n')
    (tmp_path / "app.py").write_text("print('from the view')\n")
    tag = f"{shared_lab.registry.endpoint.pull}/library/view-test:1"
    first = shared_lab.docker.build(tmp_path, tag)
    again = shared_lab.docker.build(tmp_path, tag)
    assert again.id == first.id and first.cached == 0 and again.cached == 1
    layers = shared_lab.docker.layers(tag)
    assert list(layers["created_by"]) == ["labkit host-python base for python:3.12-slim", "ENV MODE=lab",
                                          "COPY app.py /app/", 'CMD ["python", "/app/app.py"]']
    assert list(layers["size"]) == [0, 0, len("print('from the view')\n"), 0]
    assert list(layers["empty"]) == [True, True, False, True]
    figure = shared_lab.docker.plot_layers(tag)
    assert len(figure.axes[0].patches) == 4
    client = docker.DockerClient(base_url=shared_lab.env()["DOCKER_HOST"])
    try:
        pushed = list(client.images.push(tag.rsplit(":", 1)[0], "1", stream=True, decode=True,
                                         auth_config=shared_lab.docker.registry_auth()))
        assert "aux" in pushed[-1], pushed[-1]
        assert client.containers.run(tag, remove=True) == b"from the view\n"
    finally:
        client.close()
    assert os.path.exists(shared_lab.docker.endpoint.url.removeprefix("unix://"))


def test_sizes_read_as_docker_prints_them() -> None:
    assert [human_size(n) for n in (0, 21, 4096, 12_345_678)] == ["0B", "21B", "4.1kB", "12.3MB"]
