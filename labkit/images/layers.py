"""OCI layers for the image builder: snapshots of a root filesystem, their diff as a layer, and unpacking.

A layer is a tar changeset (OCI image spec, "Image Layer Filesystem Changeset"): added and changed
entries, plus a whiteout ``.wh.<name>`` for each deleted one. The builder writes layers reproducibly —
entries sorted, mtime 0, owners from the build (not the host), no user/group names, gzip with mtime 0
and no file name — so the same changes always give the same digest. ``apply_layer`` applies a layer to
a directory the way a runtime does: a whiteout removes what lower layers put there (``.wh..wh..opq``:
the whole directory's lower content), never an entry of the same layer; nothing is written outside the
destination.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
GZIP_LEVEL = 6
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """What a snapshot records of one path: enough to see that it changed."""

    kind: str  # "dir", "file", "link"
    mode: int
    size: int
    mtime_ns: int
    target: str = ""


Snapshot = dict[str, Entry]  # relative POSIX path -> entry
Owners = dict[str, tuple[int, int]]  # relative path -> (uid, gid); absent means root (0, 0)


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: the gzip blob's digest and size, and the uncompressed tar's digest (diff_id)."""

    digest: str
    diff_id: str
    size: int
    path: Path


def snapshot(root: Path) -> Snapshot:
    """Every path below ``root`` (not following symlinks)."""
    out: Snapshot = {}
    base = len(str(root)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entry = Entry("link", 0o777, 0, st.st_mtime_ns, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                entry = Entry("dir", stat.S_IMODE(st.st_mode), 0, st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                entry = Entry("file", stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns)
            else:
                continue  # sockets, fifos, devices: not image content
            out[full[base:]] = entry
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def diff(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """(added or changed paths, deleted paths); a deleted directory is one deletion, not one per child."""
    changed = [p for p, e in after.items() if before.get(p) != e]
    gone = {p for p in before if p not in after}

    def covered(path: str) -> bool:  # an ancestor's deletion or replacement already removes it
        parent = _parent(path)
        while parent:
            if parent in gone or (parent in after and after[parent].kind != "dir"):
                return True
            parent = _parent(parent)
        return False

    return changed, sorted(p for p in gone if not covered(p))


class _HashWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: BinaryIO | io.RawIOBase | gzip.GzipFile) -> None:
        self.inner, self.sha, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def _ancestors(path: str) -> Iterable[str]:
    parent = _parent(path)
    while parent:
        yield parent
        parent = _parent(parent)


def write_layer(root: Path, changed: Iterable[str], deleted: Iterable[str], owners: Owners,
                dest_dir: Path) -> LayerBlob:
    """Write the changes below ``root`` as a reproducible gzip tar layer in ``dest_dir`` (named by digest)."""
    names = set(changed)
    for path in list(names):
        names.update(_ancestors(path))
    whiteouts = {}
    for path in deleted:
        parent, _, name = path.rpartition("/")
        wh = f"{parent}/{WHITEOUT}{name}" if parent else WHITEOUT + name
        whiteouts[wh] = path
        names.update(_ancestors(wh))
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".layer-")
    with os.fdopen(fd, "wb") as out:
        blob = _HashWriter(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=blob, mtime=0, compresslevel=GZIP_LEVEL) as gz:
            raw = _HashWriter(gz)
            with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(names | whiteouts.keys(), key=_sort_key):
                    _add(tar, root, path, owners, path in whiteouts)
    final = dest_dir / blob.digest.split(":", 1)[1]
    os.replace(tmp, final)
    return LayerBlob(blob.digest, raw.digest, blob.size, final)


def _add(tar: tarfile.TarFile, root: Path, path: str, owners: Owners, whiteout: bool) -> None:
    info = tarfile.TarInfo(path)
    info.mtime, info.uname, info.gname = 0, "", ""
    info.uid, info.gid = owners.get(path, (0, 0))
    if whiteout:
        info.mode = 0o644
        tar.addfile(info)
        return
    full = root / path
    st = full.lstat()
    info.mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(full), 0o777
        tar.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = st.st_size
        with full.open("rb") as f:
            tar.addfile(info, f)


# -- applying layers ---------------------------------------------------------------------------------------


class _HashReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO | gzip.GzipFile) -> None:
        self.inner, self.sha = inner, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buf))
        buf[:len(data)] = data
        self.sha.update(data)
        return len(data)

    def drain(self) -> str:
        while self.read(_BLOCK):
            pass
        return "sha256:" + self.sha.hexdigest()


class LayerError(ValueError):
    """A layer that cannot be applied safely (a path escaping the root, a digest mismatch)."""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def _inside(root: Path, path: Path) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


def apply_layer(blob: Path | bytes, dest: Path, owners: Owners | None = None,
                whiteouts: list[str] | None = None) -> str:
    """Apply a (gzip or plain) tar layer to ``dest``, honouring whiteouts; returns its diff_id.

    ``owners``, if given, is updated with the non-root owners the layer records; ``whiteouts``, if given,
    gets the whiteout entries in layer order (``dir/.wh.name``, ``dir/.wh..wh..opq``)."""
    root = Path(os.path.realpath(dest))
    raw_in: BinaryIO = io.BytesIO(blob) if isinstance(blob, bytes) else open(blob, "rb")  # noqa: SIM115
    with raw_in:
        gz = raw_in.read(2) == b"\x1f\x8b"
        raw_in.seek(0)
        reader = _HashReader(gzip.GzipFile(fileobj=raw_in, mode="rb") if gz else raw_in)
        written: set[str] = set()
        inside: set[str] = set()
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                name = _clean(member.name)
                if not name:
                    continue
                parent, _, base = name.rpartition("/")
                if parent not in inside:  # realpath is the slow part: once per folder until a symlink changes
                    if not _inside(root, root / parent):
                        raise LayerError(f"layer entry {member.name!r} leads outside the root filesystem")
                    inside.add(parent)
                if member.issym() or base.startswith(WHITEOUT):
                    inside.clear()
                if base.startswith(WHITEOUT) and whiteouts is not None:
                    whiteouts.append(name)
                if base == OPAQUE:
                    _opaque(root, parent, written)
                elif base.startswith(WHITEOUT):
                    victim = f"{parent}/{base[len(WHITEOUT):]}" if parent else base[len(WHITEOUT):]
                    if victim not in written:
                        _remove(root / victim)
                    if owners is not None:
                        for key in [k for k in owners if k == victim or k.startswith(victim + "/")]:
                            del owners[key]
                else:
                    _extract(tar, member, root, name)
                    written.add(name)
                    if owners is not None:
                        if member.uid or member.gid:
                            owners[name] = (member.uid, member.gid)
                        else:
                            owners.pop(name, None)
        return reader.drain()


def _clean(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {name!r} contains '..'")
    return "/".join(parts)


def _opaque(root: Path, parent: str, written: set[str]) -> None:
    folder = root / parent
    if not folder.is_dir() or folder.is_symlink():
        return
    prefix = f"{parent}/" if parent else ""
    for child in folder.iterdir():
        if prefix + child.name not in written:
            _remove(child)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, name: str) -> None:
    target = root / name
    if target.is_symlink() or (target.exists() and not (target.is_dir() and member.isdir())):
        _remove(target)  # a changed entry replaces the old one (never writes through a symlink)
    if member.islnk():
        link = _clean(member.linkname)
        if not _inside(root, root / link):
            raise LayerError(f"hard link {member.name!r} -> {member.linkname!r} leads outside the root filesystem")
        member.linkname = link
    member.name = name
    if member.isdir() and target.is_dir():
        os.chmod(target, member.mode & 0o7777)
        return
    tar.extract(member, root, numeric_owner=True, filter="fully_trusted")  # checked above


def link_layer(layer: Path, whiteouts: list[str], dest: Path) -> None:
    """Stack an unpacked layer (its files and its ``whiteouts``, as ``apply_layer`` gave them) onto ``dest``
    with hard links: what applying the layer's tar to ``dest`` would give, without unpacking it again."""
    for entry in whiteouts:
        parent, _, base = entry.rpartition("/")
        if base == OPAQUE:
            folder = dest / parent
            if folder.is_dir() and not folder.is_symlink():
                for child in folder.iterdir():
                    if not os.path.lexists(layer / parent / child.name):
                        _remove(child)
        else:
            _remove(dest / parent / base[len(WHITEOUT):])
    for folder, dirs, files in os.walk(layer):
        rel = Path(folder).relative_to(layer)
        target = dest / rel
        for d in dirs:
            src, dst = Path(folder, d), target / d
            if src.is_symlink():
                files.append(d)
            elif dst.is_symlink() or (dst.exists() and not dst.is_dir()):
                _remove(dst)
            if not src.is_symlink():
                dst.mkdir(exist_ok=True)
                shutil.copystat(src, dst)
        for f in files:
            src, dst = Path(folder, f), target / f
            if dst.is_symlink() or dst.exists():
                _remove(dst)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                try:
                    os.link(src, dst)
                except OSError:  # another file system (the layer cache is the user's, the lab home elsewhere)
                    shutil.copy2(src, dst)


def copy_tree(files: Iterable[tuple[Path, str]], root: Path, mode: Callable[[Path], int]) -> list[str]:
    """Copy ``(source, relative destination)`` pairs into ``root``, creating parent directories (0755).

    Returns the destinations written. Symlinks are copied as symlinks; ``mode`` gives a file's mode."""
    out = []
    for src, rel in files:
        target = root / rel
        if not _inside(root, target.parent):
            raise LayerError(f"{rel!r} leads outside the root filesystem")
        _mkdirs(root, target.parent)
        if src.is_symlink():
            _remove(target)
            os.symlink(os.readlink(src), target)
        elif src.is_dir():
            if target.exists() and not target.is_dir():
                _remove(target)
            target.mkdir(mode=0o755, exist_ok=True)
        else:
            if target.is_symlink() or target.is_dir():
                _remove(target)
            shutil.copyfile(src, target)
            os.chmod(target, mode(src))
        out.append(rel)
    return out


def _mkdirs(root: Path, folder: Path) -> None:
    missing = []
    while not folder.exists() and folder != root:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        os.chmod(path, 0o755)
