"""What every Docker Engine API route shares: the error shape ``{"message": …}``, versioned paths (``/v1.45/…``
as the SDK sends them, and unversioned ones), JSON progress streams fed from worker threads, and the answer to
an endpoint the simulator does not implement."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import json_response

API_VERSION = "1.45"  # docker.constants.DEFAULT_DOCKER_API_VERSION of the docker SDK 7.x
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "26.1.0"  # the Docker Engine release whose API is 1.45
SIM = "the labkit simulator"
# the Engine API's top-level resources: a path below one of them that is not routed is a real endpoint we lack
RESOURCES = {"_ping", "auth", "build", "commit", "configs", "containers", "distribution", "events", "exec", "grpc",
             "images", "info", "networks", "nodes", "plugins", "secrets", "services", "session", "swarm", "system",
             "tasks", "version", "volumes"}

Emit = Callable[[dict[str, Any]], None]


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Docker's error body: ``{"message": "..."}``."""
    return json_response({"message": err.message}, err.status, err.headers)


def error(status: int, message: str) -> ApiError:
    return ApiError(status, "", message)


def not_found(message: str) -> ApiError:
    return error(404, message)


def conflict(message: str) -> ApiError:
    return error(409, message)


def bad_request(message: str) -> ApiError:
    return error(400, message)


def unsupported(what: str) -> ApiError:
    return error(501, f"{what} is not supported by {SIM}")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def check_version(version: str) -> None:
    """Refuse API versions outside [MIN_API_VERSION, API_VERSION] as the daemon does."""
    if _version_tuple(version) > _version_tuple(API_VERSION):
        raise bad_request(f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
    if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
        raise bad_request(f"client version {version} is too old. Minimum supported API version is "
                          f"{MIN_API_VERSION}, please upgrade your client to a newer version")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Serve ``path`` unversioned and as ``/v<version>/path`` (the SDK's form), checking the version."""

    async def checked(request: web.Request) -> web.StreamResponse:
        check_version(request.match_info["api_version"])
        return await handler(request)

    app.router.add_route(method, path, handler)
    app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, checked)


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as the daemon reads it (``1``, ``true``, ``True``)."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    return value.lower() not in ("0", "false", "no")


def json_param(request: web.Request, name: str) -> Any:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise bad_request(f"invalid {name} JSON: {err}") from err


class StreamFailed(Exception):
    """Ends a progress stream with an error line (the message Docker shows)."""


async def progress_stream(request: web.Request, executor: ThreadPoolExecutor,
                          work: Callable[[Emit], None]) -> web.StreamResponse:
    """Run ``work`` in a thread; every dict it emits is one JSON line of the answer (``application/json``, as
    the daemon streams build, push and pull progress). ``StreamFailed`` ends it with an
    ``{"errorDetail": {"message": …}, "error": …}`` line, which the SDK raises or returns."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def emit(message: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    def run() -> None:
        try:
            work(emit)
        except StreamFailed as err:
            emit({"errorDetail": {"message": str(err)}, "error": str(err)})
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    done = loop.run_in_executor(executor, run)
    while (message := await queue.get()) is not None:
        await resp.write(json.dumps(message, separators=(",", ":")).encode() + b"\r\n")
    await done
    await resp.write_eof()
    return resp


async def fallback(request: web.Request) -> web.StreamResponse:
    """Any path no route serves: a real Engine endpoint we lack says so (501), anything else is 404."""
    parts = request.path.strip("/").split("/")
    if re.fullmatch(r"v\d+\.\d+", parts[0]):
        check_version(parts[0][1:])
        parts = parts[1:] or [""]
    first = parts[0]
    if first in RESOURCES:
        raise unsupported(f"{request.method} {request.path}")
    raise not_found("page not found")
