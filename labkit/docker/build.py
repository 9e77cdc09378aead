"""``POST /build``: a tar build context to an image, on the lab's image builder (``labkit.images.builder``, its
Dockerfile subset and its step cache), streaming progress as the classic builder does: ``{"stream": "Step 1/4 :
…"}`` lines, ``{"aux": {"ID": "sha256:…"}}``, ``Successfully built``/``tagged``; a failure is an
``{"errorDetail": …, "error": …}`` line, which the SDK raises as ``docker.errors.BuildError``."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from ..images.builder import BuildError, BuildEvent, build
from .daemon import Daemon
from .engine import Emit, StreamFailed, add_route, bad_request, flag, json_param, progress_stream, unsupported
from .store import normalize
from .system import host_arch


class BuildRoutes:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def install(self, app: web.Application) -> None:
        add_route(app, "POST", "/build", self.build)
        add_route(app, "POST", "/build/prune", self.prune)

    async def prune(self, request: web.Request) -> web.Response:
        raise unsupported("pruning the build cache (POST /build/prune)")

    def _options(self, request: web.Request) -> dict[str, Any]:
        q = request.query
        if q.get("remote"):
            raise unsupported("a remote build context (remote=)")
        if q.get("version") == "2":
            raise unsupported("BuildKit (version=2)")
        if flag(request, "squash"):
            raise unsupported("squashing layers (squash=1)")
        arch = host_arch()
        if q.get("platform") and q["platform"] not in (f"linux/{arch}", "linux"):
            raise unsupported(f"building for platform {q['platform']} (the host is linux/{arch})")
        tags = [normalize(t) for t in q.getall("t", []) if t]
        for tag in tags:
            if tag.split("@")[0] != tag.split("@")[0].lower():
                raise bad_request(f"invalid reference format: repository name ({tag}) must be lowercase")
        build_args = json_param(request, "buildargs") or {}
        labels = json_param(request, "labels") or {}
        return {"tags": tags, "dockerfile": q.get("dockerfile") or "Dockerfile", "target": q.get("target") or None,
                "build_args": {k: v for k, v in build_args.items() if v is not None},
                "labels": {str(k): str(v) for k, v in labels.items()}, "no_cache": flag(request, "nocache"),
                "quiet": flag(request, "q")}

    async def build(self, request: web.Request) -> web.StreamResponse:
        opts = self._options(request)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.daemon.root / "tmp"))
        try:
            archive = work / "context.tar"
            with archive.open("wb") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    f.write(chunk)
            context = work / "context"
            try:
                with tarfile.open(archive, "r:*") as tar:  # plain or gzip (Content-Encoding: gzip, the SDK's gzip=)
                    tar.extractall(context, filter="data")
            except (tarfile.TarError, OSError) as err:
                raise bad_request(f"failed to read the build context: {err}") from err
            archive.unlink()
            return await progress_stream(request, self.daemon.executor, lambda emit: self._run(context, opts, emit))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, context: Path, opts: dict[str, Any], emit: Emit) -> None:
        quiet = opts["quiet"]

        def progress(event: BuildEvent) -> None:
            if quiet:
                return
            if event.status == "NOTE":
                emit({"stream": f"{event}\n"})
                return
            emit({"stream": f"Step {event.step}/{event.total} : {event.instruction}\n"})
            if event.status == "CACHED":
                emit({"stream": " ---> Using cache\n"})
            if event.output:
                emit({"stream": event.output if event.output.endswith("\n") else event.output + "\n"})

        tags = opts["tags"]
        root = self.daemon.root
        try:
            result = build(context, opts["dockerfile"], tag=tags[0] if tags else "untagged:latest",
                           build_args=opts["build_args"], target=opts["target"], progress=progress, cache_dir=root,
                           layout_dir=None if tags else root / "oci" / "_untagged", no_cache=opts["no_cache"])
        except BuildError as err:
            raise StreamFailed(str(err)) from err
        except Exception as err:  # what the builder says about a step it could not do (a bad COPY, ...)
            raise StreamFailed(f"{type(err).__name__}: {err}" if not str(err) else str(err)) from err
        manifest = self.daemon.store.relabel(result.manifest_digest, opts["labels"])
        image = self.daemon.store.add(manifest, tuple(tags))
        if quiet:
            emit({"stream": f"{image.id}\n"})
            return
        emit({"aux": {"ID": image.id}})
        emit({"stream": f"Successfully built {image.short}\n"})
        for tag in tags:
            emit({"stream": f"Successfully tagged {tag}\n"})
