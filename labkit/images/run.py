"""RUN for the labkit image builder: a command on the host, working inside the stage's root filesystem.

The contract (there is no container, so nothing is isolated; the rules below keep a build's files in
its root filesystem):

- the command runs with the host's ``/bin/sh -c`` (or the ``SHELL``, or the exec form's argv), its
  working directory ``$LABKIT_ROOTFS`` + WORKDIR, umask 022;
- environment: the image's Env with PATH and PYTHONPATH entries taken below the root filesystem (PATH
  then ends with the host's system folders, /usr/sbin:/usr/bin:/sbin:/bin), the stage's ARGs,
  ``LABKIT_ROOTFS`` (the root filesystem), ``LABKIT_PYTHON`` (the host Python),
  ``HOME=$LABKIT_ROOTFS/root``, ``TMPDIR`` (a scratch folder outside the image), ``SOURCE_DATE_EPOCH=0``
  (reproducible ``.pyc`` files); from the host only pip's settings (``PIP_*``), proxies and CA bundles;
- ``pip``/``python`` are shims (pipshim): ``pip install`` installs into the image;
- an absolute path in the command (other than a host tool in command position, or /dev/null) is an
  error: on the host it would mean the host's file. Write ``$LABKIT_ROOTFS/data`` — in a real Docker
  build ``$LABKIT_ROOTFS`` is empty, so the same Dockerfile works in both — or a relative path.
  Paths hidden inside strings (``python -c "open('/x')"``) cannot be checked: don't.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

HOST_ENV_PREFIXES = ("PIP_",)
HOST_ENV = {"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
            "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "LANG", "LC_ALL"}
HOST_TOOL_DIRS = ("/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/")
HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # the host's system tools only: not the user's (rustup, ...)
HARMLESS_PATHS = {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/zero", "/dev/urandom"}
_SEPARATORS = {"&&", "||", ";", "|", "(", ")", "&", ";;", "!", "then", "do", "else", "{", "}"}
_SHIMS = ("pip", "pip3", f"pip3.{sys.version_info.minor}", "python", "python3", f"python3.{sys.version_info.minor}")


def python_paths(prefix: str = "/usr/local") -> list[str]:
    """Where the host Python's pip puts packages below ``prefix`` (pure and platform libraries)."""
    scheme = "posix_prefix" if os.name == "posix" else sysconfig.get_default_scheme()
    paths = [sysconfig.get_path(k, scheme, vars={"base": prefix, "platbase": prefix}) for k in ("purelib", "platlib")]
    return list(dict.fromkeys(paths))


def absolute_path_problem(argv_or_command: str | list[str]) -> str | None:
    """The first absolute path a RUN command would use on the host, or None."""
    if isinstance(argv_or_command, list):
        tokens, command_position = argv_or_command, {0}
    else:
        try:
            lexer = shlex.shlex(argv_or_command, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            return None  # let the shell report its own syntax error
        command_position = {0} | {i + 1 for i, t in enumerate(tokens) if t in _SEPARATORS}
    for i, token in enumerate(tokens):
        for word in token.split("="):  # --prefix=/x, VAR=/x
            if not word.startswith("/") or word in HARMLESS_PATHS:
                continue
            if i in command_position and word.startswith(HOST_TOOL_DIRS):
                continue
            return word
    return None


def make_shims(folder: Path) -> Path:
    """Write the pip/python shims into ``folder``; returns it."""
    script = Path(__file__).with_name("pipshim.py")
    folder.mkdir(parents=True, exist_ok=True)
    for name in _SHIMS:
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec "$LABKIT_PYTHON" {shlex.quote(str(script))} {name} "$@"\n')
        shim.chmod(0o755)
    return folder


def rebase_path_list(value: str, rootfs: Path) -> list[str]:
    """``/usr/local/bin:/usr/bin`` (image paths) as host paths below ``rootfs``."""
    return [str(rootfs / p.lstrip("/")) for p in value.split(":") if p]


def run_env(image_env: dict[str, str], args: dict[str, str], rootfs: Path, shims: Path,
            host: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a RUN command sees (see the module docstring); ``host`` overrides the host's settings."""
    env = {k: v for k, v in {**os.environ, **(host or {})}.items()
           if k in HOST_ENV or k.startswith(HOST_ENV_PREFIXES)}
    env.update(args)
    env.update(image_env)
    env["PATH"] = os.pathsep.join([str(shims), *rebase_path_list(image_env.get("PATH", ""), rootfs), HOST_PATH])
    env["PYTHONPATH"] = os.pathsep.join(rebase_path_list(image_env.get("PYTHONPATH", ""), rootfs))
    env.update(LABKIT_ROOTFS=str(rootfs), LABKIT_PYTHON=sys.executable, HOME=str(rootfs / "root"),
               SOURCE_DATE_EPOCH="0", PYTHONHASHSEED="0", PYTHONUSERBASE=str(rootfs / "root" / ".local"),
               PIP_ROOT_USER_ACTION="ignore",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def run(argv: list[str], rootfs: Path, workdir: str, env: dict[str, str], timeout: float = 900) -> tuple[int, str]:
    """Run one RUN command; (exit code, combined output)."""
    cwd = rootfs / workdir.lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-run-") as tmp:
        env = {**env, "TMPDIR": tmp}
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, preexec_fn=lambda: os.umask(0o022))
    return proc.returncode, proc.stdout.decode(errors="replace")


def rootfs_env_names(config: dict[str, Any]) -> list[str]:
    """The variables whose entries are paths in the image: PATH, and what the image's label adds (PYTHONPATH)."""
    from .builder import LABEL_ROOTFS_ENV

    listed = ((config.get("Labels") or {}).get(LABEL_ROOTFS_ENV) or "").split(",")
    return sorted({"PATH", *(v.strip() for v in listed if v.strip())})


def image_env(config: dict[str, Any], rootfs: Path) -> dict[str, str]:
    """A container's environment from its image config (``RUNTIME_CONTRACT`` step 4): the config's Env, its
    path variables below ``rootfs``, then the host Python's folder and the host's PATH after the image's."""
    env: dict[str, str] = {"PATH": os.environ.get("PATH", "")}
    for item in config.get("Env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    for name in rootfs_env_names(config):
        env[name] = os.pathsep.join(rebase_path_list(env.get(name, ""), rootfs))
    env["PATH"] = os.pathsep.join(p for p in (env.get("PATH"), str(Path(sys.executable).parent),
                                              os.environ.get("PATH", "")) if p)
    return env


def resolve_executable(exe: str, rootfs: Path) -> str:
    """A container's first word (``RUNTIME_CONTRACT`` step 2): ``python*`` is the host's Python, an absolute
    path that exists in the root filesystem is that file, anything else is looked up on PATH."""
    if Path(exe).name.startswith("python"):
        return sys.executable
    inside = rootfs / exe.lstrip("/")
    if exe.startswith("/") and inside.exists():
        return str(inside)
    return exe


def container_argv(argv: list[str], rootfs: Path) -> list[str]:
    """A container's command line on the host: the first word as ``resolve_executable`` says, and every other
    word that is an absolute path existing in the root filesystem (``python /app/main.py``) as that file."""
    rest = [str(rootfs / a.lstrip("/")) if a.startswith("/") and (rootfs / a.lstrip("/")).exists() else a
            for a in argv[1:]]
    return [resolve_executable(argv[0], rootfs), *rest]
