"""The sim's image builder: a Dockerfile subset to real OCI images, without Docker.

``build(context, dockerfile, tag=...)`` reads the Dockerfile (FROM, ARG, ENV, WORKDIR, COPY, ADD, RUN,
USER, EXPOSE, LABEL, CMD, ENTRYPOINT, SHELL, VOLUME, STOPSIGNAL, MAINTAINER; multi-stage with
``FROM x AS y``, ``COPY --from=``, ``--target``) and writes an OCI image layout: one reproducible gzip
tar layer per COPY/ADD/RUN/WORKDIR that changes files, an OCI config (Env, Entrypoint, Cmd,
WorkingDir, User, ExposedPorts, Labels, history, ``rootfs.diff_ids``) and a manifest. Every step is
cached by (parent step, instruction, content of its sources), so an unchanged rebuild does no work
and gives the same manifest digest. HEALTHCHECK and ONBUILD, which the sim cannot honour, are errors
naming the line, as is any unknown instruction.

Base images. The sim cannot pull ``python:3.12-slim``; a Python base (``python``, ``python:3.x``,
``-slim``, ``-alpine``, ...) becomes the *host-python* runtime: no layers, a config like the real
image's (PATH, LANG, PYTHON_VERSION) plus ``PYTHONPATH=/usr/local/lib/pythonX.Y/site-packages``, and
the labels that tell the kubelet how to run it (the contract, ``RUNTIME_CONTRACT``). ``scratch`` and
earlier stages are the other bases; anything else is an error.

RUN runs on the host inside the stage's root filesystem; see ``run`` for its contract.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import posixpath
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.paths import machine_cache
from . import context as ctx
from . import run as runner
from .dockerfile import BuildError, Instruction, expand, key_values, parse, words
from .layers import LayerBlob, LayerError, Owners, Snapshot, apply_layer, copy_tree, diff, snapshot, write_layer
from .oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    BlobStore,
    canonical_json,
    descriptor,
    layout_blobs,
    layout_manifest,
    push,
    sha256,
    write_layout,
)

__all__ = ["LABEL_ROOTFS_ENV", "LABEL_RUNTIME", "RUNTIME_CONTRACT", "BuildError", "BuildEvent", "BuildResult", "Layer",
           "build", "push", "unpack"]

BUILDER_VERSION = "1"
EPOCH = "1970-01-01T00:00:00Z"
LABEL_RUNTIME = "io.labkit.runtime"  # "host-python": run with the host's Python
LABEL_BASE = "io.labkit.base"  # the base image the Dockerfile named (python:3.12-slim)
LABEL_PYTHON = "io.labkit.python"  # the host Python version the image was built for (3.11)
LABEL_ROOTFS_ENV = "io.labkit.rootfs-env"  # env vars whose entries are paths in the image: PATH,PYTHONPATH
HOST_PYTHON = "host-python"
RUNTIME_CONTRACT = """\
How to run an image whose config label io.labkit.runtime is "host-python":
1. Unpack the layers in order into a folder (the root filesystem), applying OCI whiteouts (``unpack``).
2. argv = Entrypoint + Cmd (or the pod's command/args); a first word named python* is the host's
   Python (sys.executable); an absolute first word that exists in the root filesystem is that file.
3. cwd = rootfs + WorkingDir (default /).
4. env = the config's Env, then the container's env; every entry of the variables listed in the
   io.labkit.rootfs-env label (PATH, PYTHONPATH) is an image path: prefix it with the root filesystem
   (keep the host's PATH after the image's, for /bin/sh and friends). Set LABKIT_ROOTFS=rootfs.
5. HOST/PORT: the process binds $HOST (default 127.0.0.1 in the shop's code): set HOST to the pod IP.
6. User, ExposedPorts, StopSignal, Volumes are metadata; the process runs as the kubelet's user.
"""
_PYTHON_TAG = re.compile(r"^(?:3(?:\.\d+){0,2}(?:[-.][\w.-]*)?|latest|slim|alpine|slim-[\w.-]+|alpine[\w.-]*)$")
_PLATFORM = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_PROXY_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
               "no_proxy", "ALL_PROXY", "all_proxy"}
_NOT_SUPPORTED = {
    "HEALTHCHECK": "use readinessProbe/livenessProbe in the pod spec (Kubernetes ignores HEALTHCHECK too)",
    "ONBUILD": "ONBUILD triggers would run in other builds",
}


@dataclass(frozen=True)
class Layer:
    digest: str
    diff_id: str
    size: int
    created_by: str


@dataclass(frozen=True)
class BuildEvent:
    """One progress report: a step finished (``status`` CACHED or DONE) or a note (``status`` NOTE)."""

    stage: str
    step: int
    total: int
    instruction: str
    status: str
    seconds: float = 0.0
    output: str = ""

    def __str__(self) -> str:
        if self.status == "NOTE":
            return f"[{self.stage}] {self.instruction}"
        took = "" if self.status == "CACHED" else f" {self.seconds:.2f}s"
        return f"[{self.stage} {self.step}/{self.total}] {self.instruction[:100]} {self.status}{took}"


@dataclass(frozen=True)
class BuildResult:
    layout_dir: Path
    manifest_digest: str
    config_digest: str
    layers: list[Layer]
    tag: str
    ref_name: str
    config: dict[str, Any]
    steps: int
    cached: int
    seconds: float


@dataclass
class _Stage:
    name: str
    index: int
    base: str
    config: dict[str, Any]
    env: dict[str, str]
    key: str
    layers: list[Layer] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    shell: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    cmd_inherited: bool = True
    rootfs: Path | None = None
    applied: int = 0
    snap: Snapshot | None = None
    owners: Owners = field(default_factory=dict)

    @property
    def workdir(self) -> str:
        return self.config.get("WorkingDir") or "/"

    @property
    def vars(self) -> dict[str, str]:
        """Variables for expansion: the stage's ARGs, overridden by its ENV (as Docker does)."""
        return {**self.args, **self.env}


def _display(stage_name: str) -> str:
    return f"stage-{stage_name}" if stage_name.isdigit() else stage_name


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _arch() -> str:
    return _PLATFORM.get(platform.machine().lower(), platform.machine().lower())


def default_cache_dir() -> Path:
    return Path(os.environ.get("LABKIT_BUILD_CACHE") or machine_cache() / "builder")


def split_tag(tag: str) -> tuple[str, str]:
    """``localhost:5001/shop/catalog:0.1.0`` -> (``localhost:5001/shop/catalog``, ``0.1.0``)."""
    name, sep, ref = tag.rpartition(":")
    if sep and "/" not in ref:
        return name, ref
    return tag, "latest"


def python_base(ref: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The host-python base (config, env) standing in for a python image reference, or None."""
    name, _, digest = ref.partition("@")
    repo, tag = split_tag(name)
    if re.sub(r"^(?:(?:index\.)?docker\.io/)?(?:library/)?", "", repo) != "python":
        return None
    if not _PYTHON_TAG.match(tag) or (digest and not digest.startswith("sha256:")):
        return None
    version = platform.python_version()
    site = runner.python_paths("/usr/local")
    env = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "PYTHON_VERSION": version, "PYTHONPATH": ":".join(site)}
    config = {"Cmd": ["python3"], "Labels": {
        LABEL_RUNTIME: HOST_PYTHON, LABEL_BASE: ref, LABEL_PYTHON: f"{sys.version_info.major}.{sys.version_info.minor}",
        LABEL_ROOTFS_ENV: "PATH,PYTHONPATH"}}
    return config, env


class _Builder:
    def __init__(self, context: Path, dockerfile: Path, build_args: dict[str, str], cache_dir: Path,
                 progress: Callable[[BuildEvent], None] | None, no_cache: bool, env: dict[str, str]) -> None:
        self.context, self.dockerfile = context, dockerfile
        self.file = dockerfile.name
        self.build_args = build_args
        self.env = env
        self.store = BlobStore(cache_dir / "blobs")
        self.steps_dir = cache_dir / "steps"
        self.steps_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / "work").mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(dir=cache_dir / "work", prefix="build-"))
        self.shims = runner.make_shims(self.work / "shims")
        self.progress = progress
        self.no_cache = no_cache
        self.ignore = ctx.Ignore.for_build(context, dockerfile)
        self.stages: list[_Stage | None] = []
        self.steps = self.cached = 0
        arch = _arch()
        self.global_args = {"TARGETPLATFORM": f"linux/{arch}", "TARGETOS": "linux", "TARGETARCH": arch,
                            "BUILDPLATFORM": f"linux/{arch}", "BUILDOS": "linux", "BUILDARCH": arch}

    def error(self, inst: Instruction | None, message: str) -> BuildError:
        return BuildError(message, self.file, inst.line if inst else None)

    def emit(self, stage: _Stage, step: int, total: int, text: str, status: str, seconds: float = 0.0,
             output: str = "") -> None:
        if self.progress:
            self.progress(BuildEvent(_display(stage.name), step, total, text, status, seconds, output))

    # -- stages -------------------------------------------------------------------------------------------
    def run(self, target: str | None) -> _Stage:
        instructions = parse(self.dockerfile.read_text(), self.file)
        groups: list[list[Instruction]] = []
        for inst in instructions:
            if inst.keyword == "FROM":
                groups.append([inst])
            elif groups:
                groups[-1].append(inst)
            elif inst.keyword == "ARG":  # the global scope: usable in FROM, and by stages that declare them
                self.global_args.update(self._arg_values(inst, self.global_args))
            else:
                raise self.error(inst, f"{inst.keyword} before the first FROM (only ARG may come before it)")
        if not groups:
            raise BuildError(f"{self.file}: no FROM instruction")
        names = [self._stage_name(g[0], i) for i, g in enumerate(groups)]
        chosen = len(groups) - 1
        if target is not None:
            if target.lower() not in names:
                raise BuildError(f"target stage {target!r} could not be found in {self.file}")
            chosen = names.index(target.lower())
        needed = self._needed(groups, names, chosen)
        for i, group in enumerate(groups[:chosen + 1]):
            self.stages.append(self._run_stage(group, names[i], i) if i in needed else None)
        stage = self.stages[chosen]
        assert stage is not None
        return stage

    def _stage_name(self, inst: Instruction, index: int) -> str:
        parts = words(inst.args, self.global_args)
        if len(parts) == 3 and parts[1].lower() == "as":
            return parts[2].lower()
        if len(parts) != 1:
            raise self.error(inst, "FROM needs an image, optionally followed by AS <name>")
        return str(index)

    def _needed(self, groups: list[list[Instruction]], names: list[str], chosen: int) -> set[int]:
        """The stages the target depends on (FROM <stage>, COPY --from=<stage>); others are skipped."""
        needed, todo = set(), [chosen]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            base = words(groups[i][0].args, self.global_args)[0].lower()
            for ref in [base] + [inst.flags["from"].lower() for inst in groups[i][1:] if "from" in inst.flags]:
                if "$" in ref:
                    todo += range(i)  # a variable stage reference: keep every earlier stage
                elif ref in names[:i]:
                    todo.append(names.index(ref))
                elif ref.isdigit() and int(ref) < i:
                    todo.append(int(ref))
        return needed

    def _arg_values(self, inst: Instruction, scope: dict[str, str]) -> list[tuple[str, str]]:
        """``ARG name[=default] ...``: a build arg wins, then the default, then the global scope's value."""
        out = []
        for word in words(inst.args, scope):
            name, sep, default = word.partition("=")
            if name in self.build_args:
                out.append((name, self.build_args[name]))
            elif sep:
                out.append((name, default))
            elif name in self.global_args:
                out.append((name, self.global_args[name]))
        return out

    def _run_stage(self, group: list[Instruction], name: str, index: int) -> _Stage:
        stage = self._from(group[0], name, index)
        total = len(group)
        self.emit(stage, 1, total, group[0].original, "DONE")
        for step, inst in enumerate(group[1:], start=2):
            started = time.monotonic()
            self.steps += 1
            status, output = self._step(stage, inst)
            self.emit(stage, step, total, inst.original, status, time.monotonic() - started, output)
        return stage

    def _from(self, inst: Instruction, name: str, index: int) -> _Stage:
        platform_flag = inst.flags.get("platform")
        if platform_flag and expand(platform_flag, self.global_args) not in (f"linux/{_arch()}", ""):
            raise self.error(inst, f"FROM --platform={platform_flag}: the labkit image builder builds for the "
                                   f"host platform linux/{_arch()} only")
        image = words(inst.args, self.global_args)[0]
        stage_names = [s.name if s else None for s in self.stages]
        if image.lower() in stage_names:
            parent = self.stages[stage_names.index(image.lower())]
            return _Stage(name, index, parent.base, copy.deepcopy(parent.config), dict(parent.env),
                          _key(parent.key, "FROM", image), list(parent.layers), copy.deepcopy(parent.history),
                          shell=list(parent.shell))
        if image == "scratch":
            return _Stage(name, index, image, {}, {}, _key(BUILDER_VERSION, "scratch"))
        base = python_base(image)
        if base is None:
            raise self.error(inst, f"FROM {image}: the labkit image builder cannot pull base images; it knows "
                                   "python[:3.x][-slim|-alpine] (run with the host's Python), scratch and earlier "
                                   "stages of this Dockerfile")
        config, env = base
        stage = _Stage(name, index, image, config, env,
                       _key(BUILDER_VERSION, HOST_PYTHON, sys.version, sys.executable, config, env))
        stage.history.append({"created": EPOCH, "created_by": f"labkit host-python base for {image}",
                              "comment": f"no layers: runs with the host's Python {platform.python_version()}",
                              "empty_layer": True})
        if self.progress:
            note = f"FROM {image}: the host's Python {platform.python_version()} (host-python runtime)"
            self.progress(BuildEvent(_display(name), 1, 1, note, "NOTE"))
        return stage

    # -- one instruction ----------------------------------------------------------------------------------
    def _step(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        kw = inst.keyword
        if kw in _NOT_SUPPORTED:
            raise self.error(inst, f"{kw} is not supported by the labkit image builder ({_NOT_SUPPORTED[kw]})")
        handler = getattr(self, f"_do_{kw.lower()}", None)
        if handler is None or kw == "FROM":
            raise self.error(inst, f"{kw} is not supported by the labkit image builder")
        for flag in inst.flags:
            if flag not in _FLAGS.get(kw, ()):
                raise self.error(inst, f"{kw} --{flag} is not supported by the labkit image builder")
        try:
            return handler(stage, inst)
        except (ValueError, OSError, LayerError) as err:
            raise self.error(inst, f"{kw}: {err}") from err

    def _meta(self, stage: _Stage, inst: Instruction, *parts: Any) -> tuple[str, str]:
        stage.key = _key(stage.key, inst.keyword, *parts)
        stage.history.append({"created": EPOCH, "created_by": inst.original, "comment": "labkit.builder",
                              "empty_layer": True})
        return "DONE", ""

    def _do_arg(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        values = self._arg_values(inst, stage.vars)
        stage.args.update(values)
        return self._meta(stage, inst, values)

    def _do_env(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        pairs = key_values(inst, stage.vars)
        stage.env.update(pairs)
        return self._meta(stage, inst, pairs)

    def _do_label(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        pairs = key_values(inst, stage.vars)
        stage.config.setdefault("Labels", {}).update(pairs)
        return self._meta(stage, inst, pairs)

    def _do_maintainer(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        stage.config["_author"] = inst.args.strip()
        return self._meta(stage, inst, inst.args)

    def _do_user(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        stage.config["User"] = expand(inst.args.strip(), stage.vars)
        return self._meta(stage, inst, stage.config["User"])

    def _do_stopsignal(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        stage.config["StopSignal"] = expand(inst.args.strip(), stage.vars)
        return self._meta(stage, inst, stage.config["StopSignal"])

    def _do_expose(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        ports = stage.config.setdefault("ExposedPorts", {})
        for word in words(inst.args, stage.vars):
            port, _, proto = word.partition("/")
            if not re.fullmatch(r"\d+(-\d+)?", port) or proto.lower() not in ("", "tcp", "udp", "sctp"):
                raise ValueError(f"invalid port {word!r}")
            ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
        return self._meta(stage, inst, sorted(ports))

    def _do_volume(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        paths = inst.exec_form or words(inst.args, stage.vars)
        stage.config.setdefault("Volumes", {}).update({p: {} for p in paths})
        return self._meta(stage, inst, paths)

    def _do_shell(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        if not inst.exec_form:
            raise ValueError('SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]')
        stage.shell = inst.exec_form
        return self._meta(stage, inst, stage.shell)

    def _command(self, stage: _Stage, inst: Instruction) -> list[str]:
        return inst.exec_form if inst.exec_form is not None else [*stage.shell, inst.args]

    def _do_cmd(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        stage.config["Cmd"], stage.cmd_inherited = self._command(stage, inst), False
        return self._meta(stage, inst, stage.config["Cmd"])

    def _do_entrypoint(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        stage.config["Entrypoint"] = self._command(stage, inst)
        if stage.cmd_inherited:  # ENTRYPOINT resets a CMD that came from the base image
            stage.config.pop("Cmd", None)
        return self._meta(stage, inst, stage.config["Entrypoint"])

    # -- instructions that change files ----------------------------------------------------------------
    def _do_workdir(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        path = posixpath.normpath(posixpath.join(stage.workdir, expand(inst.args.strip(), stage.vars)))
        stage.config["WorkingDir"] = path

        def mkdir(rootfs: Path) -> str:
            (rootfs / path.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
            return ""

        return self._fs_step(stage, inst, ["WORKDIR", path], mkdir)

    def _do_run(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        argv = self._command(stage, inst)
        bad = runner.absolute_path_problem(inst.exec_form if inst.exec_form is not None else inst.args)
        if bad:
            raise self.error(inst, f"RUN uses the absolute path {bad!r}: the labkit image builder runs RUN on the "
                                   "host, inside the stage's root filesystem; use a path relative to WORKDIR or "
                                   f"$LABKIT_ROOTFS{bad} (empty in a Docker build, so it works in both)")

        def execute(rootfs: Path) -> str:
            args = {**stage.args, **{k: v for k, v in self.build_args.items() if k in _PROXY_ARGS}}
            env = runner.run_env(stage.env, args, rootfs, self.shims, self.env)
            code, output = runner.run(argv, rootfs, stage.workdir, env)
            if code != 0:
                tail = "\n".join(output.rstrip().splitlines()[-20:])
                detail = f":\n{tail}" if tail else ""
                raise self.error(inst, f"RUN {inst.args.strip()} failed with exit code {code}{detail}")
            return output

        return self._fs_step(stage, inst, ["RUN", argv], execute, owner=self._uid(stage, inst))

    def _uid(self, stage: _Stage, inst: Instruction) -> tuple[int, int]:
        user = stage.config.get("User") or "0"
        name, _, group = user.partition(":")
        uid = self._lookup(stage, "passwd", name, inst)
        gid = self._lookup(stage, "group", group, inst) if group else uid
        return uid, gid

    def _lookup(self, stage: _Stage, db: str, name: str, inst: Instruction) -> int:
        if name.isdigit():
            return int(name)
        if name == "root":
            return 0
        path = (stage.rootfs or self.work / "none") / "etc" / db
        for line in path.read_text().splitlines() if path.exists() else []:
            fields = line.split(":")
            if fields[0] == name and len(fields) > 2:
                return int(fields[2])
        raise self.error(inst, f"unable to find {'user' if db == 'passwd' else 'group'} {name}: no matching entries "
                               f"in {db} file (use a numeric id)")

    def _do_copy(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        return self._copy(stage, inst, extract=False)

    def _do_add(self, stage: _Stage, inst: Instruction) -> tuple[str, str]:
        return self._copy(stage, inst, extract=True)

    def _copy(self, stage: _Stage, inst: Instruction, extract: bool) -> tuple[str, str]:
        items = inst.exec_form if inst.exec_form is not None else words(inst.args, stage.vars)
        items = [expand(i, stage.vars) for i in items] if inst.exec_form is not None else items
        if len(items) < 2:
            raise ValueError(f"{inst.keyword} needs at least one source and a destination")
        *patterns, dest = items
        if any("://" in p or p.startswith("git@") for p in patterns):
            raise self.error(inst, f"{inst.keyword} from a URL is not supported by the labkit image builder (it has "
                                   "no network access for builds); download into the build context and COPY it")
        as_dir = dest.endswith("/") or dest in (".", "..")
        dest = posixpath.normpath(posixpath.join(stage.workdir, dest))
        dest = dest.rstrip("/") + "/" if as_dir else dest
        chmod = int(inst.flags["chmod"], 8) if inst.flags.get("chmod") else None
        chown = self._chown(stage, inst)
        source_stage = self._source_stage(stage, inst)
        if source_stage is None:
            sources, many = ctx.resolve(self.context, patterns, self.ignore)
            origin = ["context", ctx.content_hash(self.context, sources)]
        else:
            origin = ["stage", source_stage.key]

        def copy_in(rootfs: Path) -> str:
            nonlocal sources, many
            root = self.context
            if source_stage is not None:
                root = self._materialize(source_stage)
                sources, many = ctx.resolve(root, patterns, None)
            mode = (lambda p: chmod) if chmod is not None else (
                ctx.context_mode if source_stage is None else lambda p: os.lstat(p).st_mode & 0o7777)
            pairs = self._placements(rootfs, sources, dest, many, extract)
            written = copy_tree([(s, d) for s, d in pairs if not (extract and _is_archive(s))], rootfs, mode)
            for src, target in pairs:
                if extract and _is_archive(src):
                    written += _extract_archive(src, rootfs, target)
            for path in written:
                if chown:
                    stage.owners[path] = chown
                else:
                    stage.owners.pop(path, None)
            return ""

        return self._fs_step(stage, inst, [inst.keyword, origin, patterns, dest, chmod, chown], copy_in)

    def _chown(self, stage: _Stage, inst: Instruction) -> tuple[int, int] | None:
        value = inst.flags.get("chown")
        if not value:
            return None
        user, _, group = expand(value, stage.vars).partition(":")
        uid = self._lookup(stage, "passwd", user, inst)
        return uid, self._lookup(stage, "group", group, inst) if group else uid

    def _source_stage(self, stage: _Stage, inst: Instruction) -> _Stage | None:
        ref = inst.flags.get("from")
        if ref is None:
            return None
        ref = expand(ref, stage.vars).lower()
        for other in self.stages:
            if other is not None and (other.name == ref or str(other.index) == ref):
                return other
        raise self.error(inst, f"{inst.keyword} --from={ref}: no earlier stage has that name; the labkit image "
                               "builder does not pull images")

    @staticmethod
    def _placements(rootfs: Path, sources: list[ctx.Source], dest: str, many: bool,
                    extract: bool) -> list[tuple[Path, str]]:
        into_dir = many or dest.endswith("/") or (rootfs / dest.lstrip("/")).is_dir()
        if many and not dest.endswith("/") and len(sources) > 1 and not all(s.is_dir_source for s in sources):
            raise ValueError("with more than one source file, the destination must be a directory and end with a /")
        out = []
        for src in sources:
            if src.is_dir_source:
                target = posixpath.join(dest, src.rel)
            elif into_dir or (extract and _is_archive(src.path)):
                target = dest if extract and _is_archive(src.path) else posixpath.join(dest, src.path.name)
            else:
                target = dest
            out.append((src.path, target.lstrip("/")))
        return out

    # -- the step cache and the root filesystem -----------------------------------------------------------
    def _fs_step(self, stage: _Stage, inst: Instruction, parts: list[Any], action: Callable[[Path], str],
                 owner: tuple[int, int] = (0, 0)) -> tuple[str, str]:
        parent, effect = stage.key, parts[1] if parts[0] == "WORKDIR" else None
        record = self.steps_dir / f"{_key(parent, *parts)}.json"
        if not self.no_cache and record.exists():
            cached = json.loads(record.read_text())
            layer = cached.get("layer")
            if layer is None or self.store.has(layer["digest"]):
                self._add_layer(stage, inst, layer)
                stage.key = _key(parent, effect, layer and layer["digest"])
                self.cached += 1
                return "CACHED", ""
        rootfs = self._materialize(stage)
        before = stage.snap if stage.snap is not None else snapshot(rootfs)
        output = action(rootfs)
        after = snapshot(rootfs)
        changed, deleted = diff(before, after)
        for path in changed:
            if path not in before and owner != (0, 0):
                stage.owners[path] = owner
        for path in [p for p in stage.owners if p not in after]:
            del stage.owners[path]
        layer = None
        if changed or deleted:
            blob: LayerBlob = write_layer(rootfs, changed, deleted, stage.owners, self.store.dir)
            layer = {"digest": blob.digest, "diff_id": blob.diff_id, "size": blob.size}
        self._add_layer(stage, inst, layer)
        stage.key = _key(parent, effect, layer and layer["digest"])  # the state, not how it was reached:
        stage.applied, stage.snap = len(stage.layers), after  # two COPYs giving one layer share what follows
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"layer": layer, "instruction": inst.original}))
        os.replace(tmp, record)
        return "DONE", output

    def _add_layer(self, stage: _Stage, inst: Instruction, layer: dict[str, Any] | None) -> None:
        entry: dict[str, Any] = {"created": EPOCH, "created_by": inst.original, "comment": "labkit.builder"}
        if layer is None:
            entry["empty_layer"] = True
        else:
            stage.layers.append(Layer(layer["digest"], layer["diff_id"], layer["size"], inst.original))
        stage.history.append(entry)

    def _materialize(self, stage: _Stage) -> Path:
        """The stage's root filesystem with every layer so far applied (made on first need)."""
        if stage.rootfs is None:
            stage.rootfs = self.work / f"stage-{stage.index}-rootfs"
            stage.rootfs.mkdir(mode=0o755)
            stage.applied, stage.owners = 0, {}
        if stage.applied < len(stage.layers):
            for layer in stage.layers[stage.applied:]:
                apply_layer(self.store.path(layer.digest), stage.rootfs, stage.owners)
            stage.applied, stage.snap = len(stage.layers), None
        return stage.rootfs

    # -- the image ------------------------------------------------------------------------------------------
    def image(self, stage: _Stage) -> tuple[str, str, dict[str, Any]]:
        """Write the config and manifest of ``stage`` to the store: (manifest digest, config digest, config)."""
        cfg = {k: v for k, v in stage.config.items() if not k.startswith("_") and v not in (None, {}, [])}
        if stage.env:
            cfg["Env"] = [f"{k}={v}" for k, v in stage.env.items()]
        config: dict[str, Any] = {
            "created": EPOCH, "architecture": _arch(), "os": "linux", "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in stage.layers]},
            "history": stage.history}
        if stage.config.get("_author"):
            config["author"] = stage.config["_author"]
        config_bytes = canonical_json(config)
        config_digest = self.store.put(config_bytes)
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config_digest, len(config_bytes)),
            "layers": [descriptor(OCI_LAYER, layer.digest, layer.size) for layer in stage.layers]}
        if stage.base not in ("scratch",):
            manifest["annotations"] = {"org.opencontainers.image.base.name": stage.base}
        return self.store.put(canonical_json(manifest)), config_digest, config

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


_FLAGS: dict[str, tuple[str, ...]] = {"COPY": ("from", "chown", "chmod", "link"), "ADD": ("chown", "chmod", "link")}


def _is_archive(path: Path) -> bool:
    import tarfile

    return path.is_file() and tarfile.is_tarfile(path)


def _extract_archive(archive: Path, rootfs: Path, target: str) -> list[str]:
    """ADD of a local tar archive: its content is unpacked into the destination folder."""
    folder = rootfs / target
    folder.mkdir(parents=True, exist_ok=True)
    before = set(snapshot(folder))
    apply_layer(archive.read_bytes(), folder)
    return [posixpath.join(target, p) for p in snapshot(folder) if p not in before]


def build(context_dir: str | Path, dockerfile: str | Path = "Dockerfile", tag: str = "latest",
          build_args: dict[str, str] | None = None, target: str | None = None,
          progress: Callable[[BuildEvent], None] | None = None, cache_dir: str | Path | None = None,
          layout_dir: str | Path | None = None, no_cache: bool = False,
          env: dict[str, str] | None = None) -> BuildResult:
    """Build the image a Dockerfile describes and write it to an OCI image layout.

    ``dockerfile`` is relative to the context (or absolute); ``tag`` names the image
    (``localhost:5001/shop/catalog:0.1.0``): its tag part is the layout's ref name. The layout goes to
    ``layout_dir`` (default: ``<cache>/oci/<repository>``); blobs and the step cache live in ``cache_dir``
    (default ``$LABKIT_BUILD_CACHE`` or the user cache folder). ``env`` adds host settings RUN sees (``PIP_*``,
    proxies), e.g. ``PIP_NO_INDEX``/``PIP_FIND_LINKS`` for a wheelhouse."""
    started = time.monotonic()
    context = Path(context_dir).resolve()
    dockerfile_path = context / dockerfile
    if not dockerfile_path.is_file():
        raise BuildError(f"{dockerfile_path}: no such Dockerfile")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    builder = _Builder(context, dockerfile_path, dict(build_args or {}), cache, progress, no_cache, dict(env or {}))
    try:
        stage = builder.run(target)
        manifest_digest, config_digest, config = builder.image(stage)
    finally:
        builder.close()
    repo, ref_name = split_tag(tag)
    layout = Path(layout_dir) if layout_dir else cache / "oci" / re.sub(r"[^A-Za-z0-9_.-]+", "_", repo)
    write_layout(layout, builder.store, manifest_digest, ref_name, tag)
    return BuildResult(layout, manifest_digest, config_digest, stage.layers, tag, ref_name, config,
                       builder.steps, builder.cached, time.monotonic() - started)


def unpack(source: Path | Callable[[str], Path | bytes], manifest: dict[str, Any] | bytes | str | None,
           dest: Path) -> dict[str, Any]:
    """Apply an image's layers in order (with OCI whiteouts) to ``dest``; returns the image config.

    ``source`` is an OCI layout directory, a ``blobs`` folder, or a function digest -> file or bytes.
    ``manifest`` is the manifest (dict or bytes), or, for a layout, a ref name or digest (None: its
    only/last image). Every blob is checked against its digest and every layer against its diff_id."""
    blob = layout_blobs(source) if isinstance(source, Path) else source
    if manifest is None or isinstance(manifest, str):
        if not isinstance(source, Path):
            raise TypeError("a manifest reference needs an OCI layout directory as source")
        manifest = layout_manifest(source, manifest)[0]
    doc = json.loads(manifest) if isinstance(manifest, bytes) else manifest

    def read(digest: str) -> bytes:
        got = blob(digest)
        data = got.read_bytes() if isinstance(got, Path) else got
        if sha256(data) != digest:
            raise LayerError(f"blob {digest} does not match its digest")
        return data

    config = json.loads(read(doc["config"]["digest"]))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    dest.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(doc.get("layers") or []):
        diff_id = apply_layer(read(layer["digest"]), dest)
        if i < len(diff_ids) and diff_ids[i] != diff_id:
            raise LayerError(f"layer {layer['digest']} does not match the config's diff_id {diff_ids[i]}")
    return config
