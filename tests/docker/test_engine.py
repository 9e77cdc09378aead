"""The Docker Engine API of the sim, driven by the real ``docker`` SDK."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import docker
import pytest
import requests
from docker.errors import APIError, BuildError, ImageNotFound, NotFound

from .conftest import RunningDocker

DOCKERFILE = """\
FROM python:3.12-slim AS base
ARG GREETING=hello
LABEL stage=base
WORKDIR /app
COPY app.py .
RUN echo "$GREETING" > greeting.txt
CMD ["python", "app.py"]

FROM base AS test
RUN echo tested > tested.txt
"""
APP = "print(open('greeting.txt').read().strip())\n"


def context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_ping_version_info(lab_docker: RunningDocker, client: docker.DockerClient) -> None:
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == docker.constants.DEFAULT_DOCKER_API_VERSION
    assert version["Os"] == "linux" and "labkit" in version["Platform"]["Name"]
    info = client.info()
    assert info["LoggingDriver"] == "json-file" and "Images" in info
    socket = Path(lab_docker.url.removeprefix("unix://"))
    assert stat.S_IMODE(socket.stat().st_mode) == 0o600
    head = client.api.head(client.api._url("/_ping"))  # HEAD /_ping: the headers only
    assert head.status_code == 200 and head.headers["Api-Version"] == "1.45" and head.content == b""


def test_unsupported_and_unknown_endpoints(client: docker.DockerClient) -> None:
    with pytest.raises(APIError) as err:
        client.networks.list()
    assert err.value.status_code == 501 and "not supported by the labkit simulator" in err.value.explanation
    resp = client.api.get(client.api._url("/no/such/thing"))
    assert resp.status_code == 404 and resp.json() == {"message": "page not found"}
    resp = client.api.get(client.api.base_url + "/v1.99/version")
    assert resp.status_code == 400 and "too new" in resp.json()["message"]


def test_build_buildargs_labels_target(client: docker.DockerClient, tmp_path: Path) -> None:
    ctx = context(tmp_path)
    image, logs = client.images.build(path=str(ctx), tag="shop/greeter:1", buildargs={"GREETING": "hi there"},
                                      labels={"team": "shop"}, target="base")
    lines = [entry.get("stream", "") for entry in logs]
    assert any(line.startswith("Step 5/7 : COPY app.py .") for line in lines)
    assert f"Successfully built {image.short_id.split(':')[1]}\n" in lines
    assert image.tags == ["shop/greeter:1"]
    assert image.labels["team"] == "shop" and image.labels["stage"] == "base"
    assert image.attrs["Config"]["WorkingDir"] == "/app"
    assert client.containers.run(image.id, remove=True) == b"hi there\n"
    full, _ = client.images.build(path=str(ctx), tag="shop/greeter:test")  # the last stage
    assert full.history()[0]["CreatedBy"] == "RUN echo tested > tested.txt"
    assert full.id != image.id


def test_rebuild_is_cached_and_a_changed_line_is_not(client: docker.DockerClient, tmp_path: Path) -> None:
    ctx = context(tmp_path)
    first, _ = client.images.build(path=str(ctx), tag="shop/cache:1", target="base")
    started = time.perf_counter()
    again, logs = client.images.build(path=str(ctx), tag="shop/cache:1", target="base")
    took = time.perf_counter() - started
    assert again.id == first.id
    assert sum(entry.get("stream") == " ---> Using cache\n" for entry in logs) == 3  # WORKDIR, COPY, RUN
    assert took < 1.0, f"an unchanged rebuild took {took:.2f}s"
    (ctx / "app.py").write_text(APP + "print('changed')\n")
    changed, _ = client.images.build(path=str(ctx), tag="shop/cache:1", target="base")
    assert changed.id != first.id
    assert client.images.get("shop/cache:1").id == changed.id


def test_broken_dockerfile_raises_build_error(client: docker.DockerClient, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM python:3.12-slim\nRUN exit 3\n")
    with pytest.raises(BuildError) as err:
        client.images.build(path=str(ctx), tag="shop/broken:1")
    assert "Dockerfile:2: RUN exit 3 failed with exit code 3" in err.value.msg
    ctx = context(tmp_path, "FROM python:3.12-slim\nHEALTHCHECK CMD true\n")
    with pytest.raises(BuildError, match="HEALTHCHECK"):
        client.images.build(path=str(ctx), tag="shop/broken:2")


def test_images_list_get_history_tag_remove(client: docker.DockerClient, tmp_path: Path) -> None:
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/list:1", target="base")
    assert image.id in [i.id for i in client.images.list("shop/list")]
    assert client.images.list("nothing/like-this") == []
    history = image.history()
    assert history[0]["Id"] == image.id and history[0]["Tags"] == ["shop/list:1"]
    sizes = {h["CreatedBy"]: h["Size"] for h in history}
    assert sizes["COPY app.py ."] == len(APP)  # the layer's files, as the graph driver counts them
    assert image.attrs["Size"] == sum(sizes.values())
    assert image.tag("shop/list", "2") is True
    assert sorted(client.images.get(image.id).tags) == ["shop/list:1", "shop/list:2"]
    client.images.remove("shop/list:2")  # an untag: the image stays
    assert client.images.get(image.short_id).tags == ["shop/list:1"]
    container = client.containers.create(image.id, ["python", "-c", "pass"])
    with pytest.raises(APIError) as err:
        client.images.remove("shop/list:1")
    assert err.value.status_code == 409 and "is using its referenced image" in err.value.explanation
    container.remove()
    client.images.remove("shop/list:1")
    with pytest.raises(ImageNotFound):
        client.images.get(image.id)


def test_push_needs_credentials_then_pull_back(lab_docker: RunningDocker, client: docker.DockerClient,
                                               tmp_path: Path) -> None:
    repo = f"{lab_docker.registry_host}/library/pushed"
    image, _ = client.images.build(path=str(context(tmp_path)), tag=f"{repo}:1", target="base")
    refused = list(client.images.push(repo, "1", stream=True, decode=True))
    assert "unauthorized" in refused[-1]["error"].lower() and refused[-1]["errorDetail"]["message"]
    with pytest.raises(APIError) as err:
        client.login("admin", "wrong", registry=lab_docker.registry_host)
    assert err.value.status_code == 401
    assert client.login(registry=lab_docker.registry_host, **lab_docker.auth)["Status"] == "Login Succeeded"
    pushed = list(client.images.push(repo, "1", stream=True, decode=True, auth_config=lab_docker.auth))
    assert "error" not in pushed[-1], pushed
    digest = pushed[-1]["aux"]["Digest"]
    assert client.images.get(image.id).attrs["RepoDigests"] == [f"{repo}@{digest}"]
    client.images.remove(image.id, force=True)
    pulled = client.images.pull(repo, tag="1", auth_config=lab_docker.auth)
    assert pulled.id == image.id and f"{repo}:1" in pulled.tags
    assert client.containers.run(f"{repo}:1", remove=True) == b"hello\n"
    with pytest.raises(NotFound):
        client.images.pull(repo, tag="missing", auth_config=lab_docker.auth)
    image.tag(repo, "2")
    client.images.push(repo, "2", auth_config=lab_docker.auth)
    client.images.remove(image.id, force=True)
    every = client.images.pull(repo, all_tags=True, auth_config=lab_docker.auth)  # no tag: every tag
    assert sorted(t for i in every for t in i.tags) == [f"{repo}:1", f"{repo}:2"]


def test_run_prints_hi_quickly(client: docker.DockerClient, tmp_path: Path) -> None:
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/run:1", target="base")
    client.containers.run(image.id, ["python", "-c", "pass"], remove=True)  # the image's root filesystem, once
    started = time.perf_counter()
    out = client.containers.run(image.id, ["python", "-c", "print('hi')"], remove=True)
    took = time.perf_counter() - started
    assert out == b"hi\n"
    assert took < 2.0, f"containers.run took {took:.2f}s"
    assert all(c.attrs["Image"] != image.id for c in client.containers.list(all=True))  # removed


def test_detached_container_logs_wait_exit_code(client: docker.DockerClient, tmp_path: Path) -> None:
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/detached:1", target="base")
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    container = client.containers.run(image.id, ["python", "-c", script], detach=True, name="detached-one")
    assert container.wait(timeout=30)["StatusCode"] == 3
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 3
    assert container.logs() == b"out\nerr\n" or container.logs() == b"err\nout\n"
    assert container.logs(stderr=False) == b"out\n"
    assert container.name == "detached-one"
    assert "detached-one" in [c.name for c in client.containers.list(all=True)]
    assert "detached-one" not in [c.name for c in client.containers.list()]
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run(image.id, ["python", "-c", script], remove=True)
    assert err.value.exit_status == 3 and b"err" in err.value.stderr
    container.remove()
    with pytest.raises(NotFound):
        client.containers.get("detached-one")


def test_stop_a_running_container(client: docker.DockerClient, tmp_path: Path) -> None:
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/sleeper:1", target="base")
    container = client.containers.run(image.id, ["python", "-c", "import time; print('up', flush=True); "
                                                 "time.sleep(60)"], detach=True)
    deadline = time.monotonic() + 10
    while b"up" not in container.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    container.reload()
    assert container.status == "running" and container.attrs["State"]["Pid"] > 0
    with pytest.raises(APIError) as err:
        container.remove()
    assert err.value.status_code == 409
    container.stop(timeout=5)
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 143  # SIGTERM
    container.remove()


def test_kill_and_a_stopped_containers_refusal(client: docker.DockerClient, tmp_path: Path) -> None:
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/killed:1", target="base")
    container = client.containers.run(image.id, ["python", "-c", "import time; time.sleep(60)"], detach=True)
    container.kill()
    assert container.wait(timeout=30)["StatusCode"] == 137
    with pytest.raises(APIError) as err:
        container.kill()
    assert err.value.status_code == 409 and "is not running" in err.value.explanation
    container.remove()


def test_state_survives_a_daemon_restart(lab_docker: RunningDocker, tmp_path: Path) -> None:
    client = lab_docker.client()
    image, _ = client.images.build(path=str(context(tmp_path)), tag="shop/durable:1", target="base")
    done = client.containers.run(image.id, ["python", "-c", "print('kept')"], detach=True, name="durable-done")
    done.wait(timeout=30)
    running = client.containers.run(image.id, ["python", "-c", "import time; time.sleep(60)"], detach=True,
                                    name="durable-running")
    client.close()
    lab_docker.restart_engine()  # stops its containers, as a daemon without live-restore does
    client = lab_docker.client()
    try:
        assert client.images.get("shop/durable:1").id == image.id
        assert os.path.exists(lab_docker.url.removeprefix("unix://"))
        assert client.containers.get("durable-done").logs() == b"kept\n"
        after = client.containers.get(running.id)
        assert after.status == "exited" and after.attrs["State"]["ExitCode"] == 143
        for name in ("durable-done", "durable-running"):
            client.containers.get(name).remove()
    finally:
        client.close()


def test_requests_sees_docker_error_shape(lab_docker: RunningDocker) -> None:
    client = lab_docker.client()
    try:
        resp = client.api.get(client.api._url("/images/{0}/json", "no/such:image"))
    finally:
        client.close()
    assert resp.status_code == 404 and resp.json() == {"message": "No such image: no/such:image"}
    assert isinstance(resp, requests.Response)


def test_absolute_paths_in_the_command_are_the_images_files(client: docker.DockerClient, tmp_path: Path) -> None:
    dockerfile = 'FROM python:3.12-slim\nCOPY app.py /srv/\nWORKDIR /srv\nCMD ["python", "/srv/app.py"]\n'
    (tmp_path / "greeting.txt").write_text("absolute\n")
    dockerfile = dockerfile.replace("COPY app.py /srv/", "COPY app.py greeting.txt /srv/")
    image, _ = client.images.build(path=str(context(tmp_path, dockerfile)), tag="shop/absolute:1")
    assert client.containers.run(image.id, remove=True) == b"absolute\n"


def test_reset_forgets_images_and_the_build_cache(tmp_path: Path) -> None:
    with RunningDocker(tmp_path / "home") as running:
        client = running.client()
        ctx = context(tmp_path / "ctx" if (tmp_path / "ctx").mkdir() is None else tmp_path)
        client.images.build(path=str(ctx), tag="shop/reset:1", target="base")
        running.run(running.engine.reset())
        assert client.images.list() == []
        _, logs = client.images.build(path=str(ctx), tag="shop/reset:1", target="base")
        assert not any(entry.get("stream") == " ---> Using cache\n" for entry in logs)
        client.close()
