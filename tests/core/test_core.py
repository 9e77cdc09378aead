"""The shared plumbing on its own."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

import psutil
import pytest

from labkit.core.files import read_json, write_json
from labkit.core.http import Credentials, Listeners, api_app
from labkit.core.network import Network, is_loopback
from labkit.core.procs import Supervisor
from labkit.core.secrets import Secrets


def test_credentials_accept_bearer_and_basic_only_when_right() -> None:
    creds = Credentials({"tok": "admin"}, {"alice": "s3cret"})
    assert creds.user("Bearer tok") == "admin"
    assert creds.user("Bearer nope") is None
    basic = base64.b64encode(b"alice:s3cret").decode()
    assert creds.user(f"Basic {basic}") == "alice"
    assert creds.user("Basic " + base64.b64encode(b"alice:wrong").decode()) is None
    assert creds.user(None) is None and creds.user("Basic !!!") is None


def test_secrets_and_network_are_stable_across_instances(tmp_path: Path) -> None:
    s1 = Secrets(tmp_path / "s.json").get("a")
    assert Secrets(tmp_path / "s.json").get("a") == s1
    n1 = Network(tmp_path / "net.json", tmp_path)
    addr = n1.listener("x", n1.address(0, 5), 9999)
    assert Network(tmp_path / "net.json", tmp_path).listener("x", n1.address(0, 5), 9999) == addr
    assert is_loopback(addr[0])
    with pytest.raises(ValueError, match="non-loopback"):
        n1.listener("y", "10.0.0.1", 80)
    write_json(tmp_path / "j.json", {"k": 1})
    assert read_json(tmp_path / "j.json") == {"k": 1}


def test_listeners_refuse_non_loopback_and_enforce_auth_and_size(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    app = api_app("t", credentials=Credentials({"tok": "u"}, {}), max_body=10)

    async def hello(request):  # type: ignore[no-untyped-def]
        from labkit.core.http import USER, json_response

        return json_response({"user": request[USER]})

    app.router.add_route("*", "/", hello)
    with pytest.raises(ValueError):
        Listeners(app, [("0.0.0.0", 1)])

    async def scenario() -> list[int]:
        from labkit.core.network import free_port

        port = free_port()
        served = Listeners(app, [("127.0.0.1", port)])
        await served.start()

        def get(headers: dict[str, str], data: bytes | None = None) -> int:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers, data=data)
            try:
                return urllib.request.urlopen(req, timeout=5).status
            except urllib.error.HTTPError as e:
                return e.code

        codes = await asyncio.to_thread(lambda: [
            get({}), get({"Authorization": "Bearer tok"}),
            get({"Authorization": "Bearer tok"}, b"x" * 100)])
        await served.stop()
        return codes

    assert asyncio.run(scenario()) == [401, 200, 413]


def test_supervisor_restarts_and_reaps(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        sup = Supervisor(tmp_path / "children.json", tmp_path)
        child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
        first = child.proc.pid
        child.proc.kill()
        for _ in range(100):
            await asyncio.sleep(0.1)
            if child.running and child.proc.pid != first:
                break
        second = child.proc.pid
        await sup.stop_all()
        return first, second

    first, second = asyncio.run(scenario())
    assert first != second
    assert not psutil.pid_exists(second)
    assert read_json(tmp_path / "children.json") == []


def test_leftover_children_of_a_crashed_daemon_are_reaped(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    write_json(tmp_path / "children.json",
               [{"name": "x", "pid": proc.pid, "created": psutil.Process(proc.pid).create_time()}])
    killed = Supervisor(tmp_path / "children.json", tmp_path).reap_leftovers()
    assert killed == [proc.pid]
    proc.wait(timeout=5)
    assert not psutil.pid_exists(proc.pid)


def test_a_unix_socket_too_long_for_its_path_moves_to_a_folder_of_its_own(tmp_path: Path) -> None:
    import socket

    from aiohttp import web

    from labkit.core.paths import LabPaths

    short = LabPaths(tmp_path / "h").docker_socket
    assert short == tmp_path / "h" / "docker.sock" or len(str(tmp_path)) > 80
    long_home = tmp_path / ("x" * 120)
    path = LabPaths(long_home).docker_socket
    assert len(str(path)) < 100 and path.name == "docker.sock" and path == LabPaths(long_home).docker_socket
    app = web.Application()

    async def ping_handler(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app.router.add_get("/_ping", ping_handler)

    async def scenario() -> str:
        served = Listeners(app, [], sockets=[path])
        await served.start()
        mode = path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777

        def ping() -> str:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return s.recv(4096).decode()

        answer = await asyncio.to_thread(ping)
        await served.stop()
        assert mode == (0o600, 0o700)
        return answer

    answer = asyncio.run(scenario())
    assert answer.startswith("HTTP/1.0 200") and answer.endswith("OK")
    assert not path.exists() and not path.parent.exists()  # the folder it made is gone with the socket
