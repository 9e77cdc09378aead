"""The ``pip`` and ``python`` a RUN instruction sees in the labkit image builder (standard library only).

RUN commands run on the host (see run), so ``pip install`` must not install into the host's
Python. The builder puts shims named pip, pip3, python, python3 first on PATH; they run this file:

- ``pip install ...`` becomes the host Python's ``pip install --prefix $LABKIT_ROOTFS/usr/local
  --ignore-installed ...``: packages land in the image's ``/usr/local/lib/pythonX.Y/site-packages``
  (on the image's PYTHONPATH), scripts in ``/usr/local/bin``. Absolute paths given to pip
  (``-r /app/requirements.txt``, ``--prefix=/install``, ``--target``, ``--root``, local archives, ...)
  are paths in the image, so they are taken below ``$LABKIT_ROOTFS``.
- pip's own byte-compilation is replaced by ``compileall`` with the image path as ``ddir`` and
  hash-based ``.pyc`` files: the build folder's name must not end up in the layer, or no two builds
  would give the same digest.
- ``pip download|wheel`` likewise (``-d``/``-w`` in the image); ``pip list|freeze`` look at the image's
  site-packages; read-only commands pass through; anything that changes the host (``uninstall``,
  ``config``) is refused.
- ``python -m pip ...`` is the pip above; any other ``python ...`` is the host Python.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import subprocess
import sys
import sysconfig

PATH_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "--prefix", "-t", "--target",
                "--root", "-f", "--find-links", "--src", "-d", "--dest", "-w", "--wheel-dir", "--log", "--report",
                "--cache-dir", "--path"}
VALUE_OPTIONS = PATH_OPTIONS | {"-i", "--index-url", "--extra-index-url", "--platform", "--python-version",
                                "--implementation", "--abi", "--only-binary", "--no-binary", "--progress-bar",
                                "--trusted-host", "--proxy", "--timeout", "--retries", "--upgrade-strategy",
                                "--config-settings", "-C", "--global-option", "--root-user-action", "--format"}
INSTALL_TARGETS = {"--prefix", "-t", "--target", "--root", "--user"}
READ_ONLY = {"list", "freeze", "show", "check", "help", "debug", "inspect", "hash", "cache", "index", "search"}


def _rebase(value: str, rootfs: str) -> str:
    return rootfs + value if value.startswith("/") and not value.startswith(rootfs + "/") else value


def translate(args: list[str], rootfs: str, site_packages: str) -> tuple[list[str], list[str]]:
    """pip's arguments as the host Python's pip must see them to act on the image's root filesystem, and
    the folders to byte-compile afterwards."""
    if not args or args[0].startswith("-"):
        if any(a in ("--version", "-V", "--help", "-h") for a in args) or not args:
            return args, []
        raise SystemExit(f"labkit image builder: unsupported pip invocation: pip {' '.join(args)}")
    command, rest = args[0], args[1:]
    if command not in {"install", "download", "wheel"} | READ_ONLY:
        raise SystemExit(f"labkit image builder: 'pip {command}' in RUN would change the host's Python; "
                         "it is not supported (RUN runs on the host, see the builder's contract)")
    out, seen, i, values = [command], set(), 0, {}
    while i < len(rest):
        arg = rest[i]
        name, eq, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and arg[:2] in PATH_OPTIONS:
            name, eq, attached = arg[:2], "=", arg[2:]  # -rrequirements.txt
        seen.add(name)
        if eq:
            values[name] = _rebase(attached, rootfs)
        if name in VALUE_OPTIONS and not eq and i + 1 < len(rest):
            value = values[name] = rest[i + 1]
            out += [name, _rebase(value, rootfs) if name in PATH_OPTIONS else value]
            i += 2
            continue
        if eq:
            out.append(f"{name}={_rebase(attached, rootfs) if name in PATH_OPTIONS else attached}")
        else:
            out.append(arg if arg.startswith("-") or "://" in arg else _rebase(arg, rootfs))
        i += 1
    compile_dirs: list[str] = []
    if command == "install":
        if not seen & INSTALL_TARGETS:
            out += ["--prefix", rootfs + "/usr/local"]
            values["--prefix"] = rootfs + "/usr/local"
        out += ["--ignore-installed", "--no-warn-script-location"]
        if "--prefix" in values:
            compile_dirs = _site_dirs(_rebase(values["--prefix"], rootfs))
        elif "--target" in values or "-t" in values:
            compile_dirs = [_rebase(values.get("--target") or values["-t"], rootfs)]
        if compile_dirs:
            out.append("--no-compile")
    elif command in ("list", "freeze") and "--path" not in seen:
        out += ["--path", site_packages]
    return out, compile_dirs


def _site_dirs(prefix: str) -> list[str]:
    paths = [sysconfig.get_path(k, "posix_prefix", vars={"base": prefix, "platbase": prefix})
             for k in ("purelib", "platlib")]
    return list(dict.fromkeys(paths))


def byte_compile(folders: list[str], rootfs: str) -> bool:
    """Compile every module below ``folders`` as the image will see it (reproducible .pyc files)."""
    ok = True
    for folder in folders:
        if os.path.isdir(folder):
            ok &= bool(compileall.compile_dir(folder, ddir=folder[len(rootfs):] or "/", quiet=2,
                                              invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH))
    return ok


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    python = os.environ["LABKIT_PYTHON"]
    rootfs = os.environ["LABKIT_ROOTFS"].rstrip("/")
    site_packages = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    if tool.startswith("python"):
        if args[:2] != ["-m", "pip"]:
            os.execv(python, [python, *args])
        args = args[2:]
    try:
        pip_args, compile_dirs = translate(args, rootfs, site_packages)
    except SystemExit as err:
        print(err, file=sys.stderr)
        return 2
    if not compile_dirs:
        os.execv(python, [python, "-m", "pip", *pip_args])
    code = subprocess.call([python, "-m", "pip", *pip_args])
    if code == 0:
        byte_compile(compile_dirs, rootfs)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
