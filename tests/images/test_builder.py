"""The sim image builder: Dockerfile semantics, layers and whiteouts, the cache, OCI layout output, push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from labkit.images import BuildError, build, push, unpack
from labkit.images.dockerfile import expand, parse, words
from labkit.images.layers import apply_layer, link_layer
from labkit.images.pipshim import translate
from labkit.images.run import absolute_path_problem

from .conftest import RunningRegistry


def make_context(folder: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def layer_members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    blob = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {m.name: m for m in tar.getmembers()}


# -- the Dockerfile parser ---------------------------------------------------------------------------------


def test_parser_lines_continuations_comments_and_exec_form() -> None:
    text = ("# syntax=docker/dockerfile:1\n# escape=\\\n\nFROM python:3.12-slim AS base\n# a comment\n"
            "RUN echo one \\\n  # inside\n  && echo two\nCMD [\"python\", \"-m\", \"app\"]\nCMD python -m app\n"
            "COPY --from=base --chown=1:1 a b\n")
    insts = parse(text)
    assert [(i.line, i.keyword) for i in insts] == [(4, "FROM"), (6, "RUN"), (9, "CMD"), (10, "CMD"), (11, "COPY")]
    assert insts[1].args == "echo one   && echo two"
    assert insts[2].exec_form == ["python", "-m", "app"] and insts[3].exec_form is None
    assert insts[4].flags == {"from": "base", "chown": "1:1"} and insts[4].args == "a b"


def test_variable_expansion_follows_the_dockerfile_rules() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert expand("${A}-$A-${B:-dflt}-${EMPTY:-e}-${EMPTY-e}-${A:+set}-${B:+set}", env) == "x-x-dflt-e--set-"
    assert expand("'$A' \"$A\" \\$A", env) == "$A x $A"
    assert words('k="a b" c=$A', env) == ["k=a b", "c=x"]
    with pytest.raises(ValueError, match="B: needed"):
        expand("${B:?needed}", env)


# -- errors that name the line --------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "message"), [
    ("HEALTHCHECK CMD curl -f http://localhost/",
     "Dockerfile:7: HEALTHCHECK is not supported by the labkit image builder"),
    ("ONBUILD RUN echo", "Dockerfile:7: ONBUILD is not supported by the labkit image builder"),
    ("FROBNICATE x", "Dockerfile:7: FROBNICATE is not supported by the labkit image builder"),
    ("RUN --mount=type=cache,target=/root/.cache pip install x", "Dockerfile:7: RUN --mount is not supported"),
    ("RUN mkdir -p /data", "Dockerfile:7: RUN uses the absolute path '/data'"),
    ("RUN <<EOF\necho hi\nEOF", "Dockerfile:7: RUN with a heredoc"),
    ("COPY missing.txt .", "Dockerfile:7: COPY: missing.txt: not found"),
    ("ADD https://example.com/x.tgz /x", "Dockerfile:7: ADD from a URL is not supported"),
])
def test_unsupported_instructions_name_their_line(tmp_path: Path, line: str, message: str) -> None:
    context = make_context(tmp_path / "ctx", "FROM python:3.12-slim\nWORKDIR /app\n\n# comment\nENV A=1 \\\n"
                                             f"    B=2\n{line}\nCMD [\"python\"]\n")
    with pytest.raises(BuildError) as err:
        build(context, cache_dir=tmp_path / "cache")
    assert str(err.value).startswith(message)


def test_unknown_base_image_is_an_error(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", "ARG NODE=20\nFROM node:${NODE}\n")
    with pytest.raises(BuildError, match=r"Dockerfile:2: FROM node:20: the labkit image builder cannot pull"):
        build(context, cache_dir=tmp_path / "cache")


def test_absolute_path_check() -> None:
    assert absolute_path_problem("pip install -r requirements.txt > /dev/null && /bin/echo ok") is None
    assert absolute_path_problem('echo "$LABKIT_ROOTFS/data" && cat x | /usr/bin/sort') is None
    assert absolute_path_problem("rm -rf /usr/bin/python") == "/usr/bin/python"
    assert absolute_path_problem(["sh", "-c", "echo", "--out=/etc/x"]) == "/etc/x"


def test_pip_install_is_translated_into_the_root_filesystem() -> None:
    args, compile_dirs = translate(["install", "--no-cache-dir", "-r", "/app/req.txt", "--prefix=/install", "x"],
                                   "/R", "/R/usr/local/lib/python3.11/site-packages")
    assert args[:5] == ["install", "--no-cache-dir", "-r", "/R/app/req.txt", "--prefix=/R/install"]
    assert "--ignore-installed" in args and "--no-compile" in args and compile_dirs[0].startswith("/R/install/lib/")
    args, _ = translate(["install", "flask"], "/R", "")
    assert args[args.index("--prefix") + 1] == "/R/usr/local"
    with pytest.raises(SystemExit, match="uninstall"):
        translate(["uninstall", "-y", "pip"], "/R", "")


# -- semantics, layers, whiteouts ------------------------------------------------------------------------------------

MULTI = """\
ARG GREETING=hello
FROM python:3.12-slim AS build
ARG GREETING
WORKDIR /src
COPY src/ ./
RUN mkdir -p out gone && echo "$GREETING from build" > out/msg.txt && touch gone/x drop.txt \\
    && rm -rf gone drop.txt
FROM python:3.12-slim AS unused
RUN exit 3
FROM python:3.12-slim
ENV APP=/app WHO=world
ENV MSG="hi $WHO" WHO=you
WORKDIR $APP
COPY --from=build /src/out/ ./
COPY --chown=10001:10001 --chmod=755 src/run.sh bin/
COPY keep.txt junk.txt ./
RUN rm junk.txt && mkdir -p data/sub && echo x > data/sub/f
USER 10001
RUN touch made-by-user
EXPOSE 8080 9090/udp
LABEL team=shop version="1 2"
ENTRYPOINT ["python"]
"""


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("multi")
    context = make_context(base / "ctx", MULTI, {"src/a.py": "print(1)\n", "src/run.sh": "echo run\n",
                                                 "src/tests/t.py": "", "keep.txt": "k", "junk.txt": "j",
                                                 ".dockerignore": "**/tests\n"})
    result = build(context, tag="lab/multi:1", build_args={"GREETING": "bonjour"}, cache_dir=base / "cache")
    return base, context, result


def test_multi_stage_copy_from_args_env_and_config(multi) -> None:
    base, _, result = multi
    cfg = result.config["config"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["MSG"] == "hi world" and env["WHO"] == "you"  # one ENV line expands with the values before it
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "10001" and cfg["Entrypoint"] == ["python"]
    assert "Cmd" not in cfg  # ENTRYPOINT resets the base image's CMD
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9090/udp": {}}
    assert cfg["Labels"]["version"] == "1 2" and cfg["Labels"]["io.labkit.runtime"] == "host-python"
    root = base / "root"
    unpack(result.layout_dir, "1", root)
    assert (root / "app/msg.txt").read_text() == "bonjour from build\n"  # COPY --from, ARG before FROM, build arg
    assert not (root / "app/a.py").exists() and not (root / "src").exists()  # only the copied folder
    assert (root / "app/bin/run.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "app/keep.txt").exists() and not (root / "app/junk.txt").exists()  # deleted by a later RUN
    assert (root / "app/data/sub/f").exists() and (root / "app/made-by-user").exists()


def test_layers_are_changesets_with_owners_and_whiteouts(multi) -> None:
    _, _, result = multi
    by_step = {layer.created_by.split("\n")[0]: layer for layer in result.layers}
    chown = layer_members(result.layout_dir, by_step["COPY --chown=10001:10001 --chmod=755 src/run.sh bin/"].digest)
    assert (chown["app/bin/run.sh"].uid, chown["app/bin/run.sh"].mtime, chown["app/bin/run.sh"].uname) == (10001, 0, "")
    rm = layer_members(result.layout_dir, by_step["RUN rm junk.txt && mkdir -p data/sub && echo x > data/sub/f"].digest)
    assert "app/.wh.junk.txt" in rm and "app/data/sub/f" in rm and rm["app/data/sub/f"].uid == 0
    user = layer_members(result.layout_dir, by_step["RUN touch made-by-user"].digest)
    assert user["app/made-by-user"].uid == 10001
    assert list(user) == sorted(user)


def test_unneeded_stages_are_skipped_and_target_selects_a_stage(multi, tmp_path: Path) -> None:
    base, context, _ = multi  # the "unused" stage (RUN exit 3) never ran for the final image
    with pytest.raises(BuildError, match=r"Dockerfile:9: RUN exit 3 failed with exit code 3$"):
        build(context, target="unused", cache_dir=base / "cache")
    result = build(context, target="build", cache_dir=base / "cache", layout_dir=tmp_path / "layout")
    assert result.config["config"]["WorkingDir"] == "/src"
    assert "gone" not in str([layer_members(result.layout_dir, layer.digest) for layer in result.layers])


def test_unpack_applies_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    def layer(entries: list[tuple[str, bytes | None]]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                if data is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return gzip.compress(buf.getvalue(), mtime=0)

    layers: list[list[tuple[str, bytes | None]]] = [
        [("etc", None), ("etc/a", b"1"), ("etc/b", b"2"), ("opt", None), ("opt/x/y", b"3"), ("keep", b"k")],
        [("etc/.wh.a", b""), ("opt/.wh..wh..opq", b""), ("opt/new", b"n"), (".wh.keep", b""), ("keep2", b"k2")]]
    root = tmp_path / "root"
    root.mkdir()
    for entries in layers:
        apply_layer(layer(entries), root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "etc", "etc/b", "keep2", "opt", "opt/new"]
    with pytest.raises(ValueError, match="'\\.\\.'"):
        apply_layer(layer([("../escape", b"x")]), root)

    # the kubelet's layer cache: each layer unpacked alone, then stacked with hard links, gives the same tree
    stacked = tmp_path / "stacked"
    stacked.mkdir()
    for i, entries in enumerate(layers):
        files, whiteouts = tmp_path / f"layer{i}", []
        files.mkdir()
        apply_layer(layer(entries), files, whiteouts=whiteouts)
        link_layer(files, whiteouts, stacked)
    assert sorted(p.relative_to(stacked).as_posix() for p in stacked.rglob("*")) == [
        "etc", "etc/b", "keep2", "opt", "opt/new"]
    assert (stacked / "opt" / "new").read_bytes() == b"n"


def test_add_extracts_local_archives(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", "FROM scratch\nADD bundle.tar /opt/\n")
    with tarfile.open(context / "bundle.tar", "w") as tar:
        info = tarfile.TarInfo("pkg/file.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    result = build(context, cache_dir=tmp_path / "cache")
    unpack(result.layout_dir, None, tmp_path / "root")
    assert (tmp_path / "root/opt/pkg/file.txt").read_text() == "ok"


# -- cache, determinism, OCI output -----------------------------------------------------------------------------


def test_rebuild_hits_the_cache_and_gives_the_same_digest(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", "FROM python:3.12-slim\nWORKDIR /w\nCOPY a.txt .\n"
                                             "RUN sleep 1 && cp a.txt b.txt\nCMD [\"python\"]\n", {"a.txt": "a"})
    first = build(context, tag="t/cache:1", cache_dir=tmp_path / "cache")
    again = build(context, tag="t/cache:1", cache_dir=tmp_path / "cache")
    assert again.manifest_digest == first.manifest_digest
    assert (again.cached, again.steps) == (3, 4) and again.seconds < first.seconds / 3
    fresh = build(context, tag="t/cache:1", cache_dir=tmp_path / "other-cache")  # no cache at all: same bytes
    assert fresh.manifest_digest == first.manifest_digest
    (context / "a.txt").write_text("changed")
    changed = build(context, tag="t/cache:1", cache_dir=tmp_path / "cache")
    assert changed.manifest_digest != first.manifest_digest and changed.cached == 1  # WORKDIR only


def _verify_layout(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][-1]["digest"][7:]).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(
        (layout / "blobs/sha256" / d["digest"][7:]).read_bytes())).hexdigest() for d in manifest["layers"]]
    assert diff_ids == config["rootfs"]["diff_ids"]
    assert len(config["history"]) - sum(1 for h in config["history"] if h.get("empty_layer")) == len(diff_ids)


def test_output_is_a_valid_oci_layout(multi) -> None:
    _, _, result = multi
    _verify_layout(result.layout_dir)
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install -y skopeo)")
    out = subprocess.run(["skopeo", "inspect", f"oci:{result.layout_dir}:1"], capture_output=True, text=True,
                         check=True)
    info = json.loads(out.stdout)
    assert info["Digest"] == result.manifest_digest
    assert info["Layers"] == [layer.digest for layer in result.layers]


def test_push_to_the_lab_registry(multi, registry: RunningRegistry) -> None:
    _, _, result = multi
    started = time.monotonic()
    digest = push(result.layout_dir, registry.url, "lab/multi", "1", registry.auth, ref="1")
    assert digest == result.manifest_digest and time.monotonic() - started < 10
    client = registry.client(anonymous=True)
    _, _, pulled = client.manifest("lab/multi", "1")
    assert pulled == result.manifest_digest
    assert push(result.layout_dir, registry.url, "lab/multi", "1", registry.auth) == digest  # blobs exist: no-op
