"""Absolute mount paths for a Python process in a sim container (loaded at start-up through PYTHONPATH).

The sim runs a container as a host process without a mount namespace, so ``/var/run/secrets/...`` would be
the host's file, shared by every pod. The kubelet links each volume mount below the container's root
filesystem (``$LABKIT_ROOTFS``) and lists the mount paths in ``$LABKIT_MOUNTS``; this module makes Python's
file functions (``open``, ``os.stat`` and the ``os.path``/``pathlib`` checks built on them, ``os.listdir``,
``os.scandir``, and the CA and certificate files ``ssl`` hands to OpenSSL) see a path under a mount path at
``$LABKIT_ROOTFS`` + path, as a bind mount would show it.
So ``kubernetes.config.load_incluster_config()`` reads the pod's own token. Programs other than Python
(a shell's ``cat /etc/config/x``) see the host's paths: use paths relative to the working directory there.
"""

import builtins
import io
import os

_ROOT = os.environ.get("LABKIT_ROOTFS", "")
_MOUNTS = tuple(m for m in os.environ.get("LABKIT_MOUNTS", "").split(os.pathsep) if m.startswith("/"))


def _mapped(path):
    if isinstance(path, int):
        return path
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        return path
    for mount in _MOUNTS:
        if text == mount or text.startswith(mount + "/"):
            return _ROOT + text
    return path


def _wrap(module, name):
    real = getattr(module, name)

    def mapped(*args, **kwargs):
        if args:
            args = (_mapped(args[0]), *args[1:])
        return real(*args, **kwargs)

    mapped.__name__, mapped.__doc__, mapped.__wrapped__ = real.__name__, real.__doc__, real
    setattr(module, name, mapped)


if _ROOT and _MOUNTS:
    _open = io.open

    def _open_mapped(file, *args, **kwargs):
        return _open(_mapped(file), *args, **kwargs)

    builtins.open = io.open = _open_mapped
    for _name in ("open", "stat", "lstat", "listdir", "scandir", "access", "readlink"):
        _wrap(os, _name)

    import ssl  # OpenSSL opens CA and certificate files itself (the in-cluster client's ca.crt)

    _verify, _chain = ssl.SSLContext.load_verify_locations, ssl.SSLContext.load_cert_chain

    def _load_verify_locations(self, cafile=None, capath=None, cadata=None):
        return _verify(self, _mapped(cafile) if cafile else cafile, _mapped(capath) if capath else capath, cadata)

    def _load_cert_chain(self, certfile, keyfile=None, password=None):
        return _chain(self, _mapped(certfile), _mapped(keyfile) if keyfile else keyfile, password)

    ssl.SSLContext.load_verify_locations = _load_verify_locations
    ssl.SSLContext.load_cert_chain = _load_cert_chain


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows (the image's or the interpreter's), if there is one."""
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.abspath(entry or ".") != here and os.path.isfile(candidate):
            with open(candidate) as f:
                code = compile(f.read(), candidate, "exec")
            exec(code, {"__name__": "sitecustomize", "__file__": candidate})
            return


_chain()
