"""COPY/ADD sources for the image builder: the build context, ``.dockerignore``, wildcards, content hashes.

Sources are relative to the build context (or, with ``--from``, to the source stage's root) and never
leave it. Wildcards follow Go's ``filepath.Match`` (``*``, ``?``, ``[...]``); ``.dockerignore`` (or
``<Dockerfile>.dockerignore`` next to the Dockerfile) adds ``**`` and ``!`` exceptions. A directory
source copies its contents. Files from the context get mode 0644, or 0755 if executable, so a
checkout's umask does not change the image.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

_GLOB = re.compile(r"[*?\[]")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


class Ignore:
    """``.dockerignore`` rules: the last matching pattern decides; a match on a folder covers its content."""

    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
            self.rules.append((negate, _pattern_regex(pattern)))

    @classmethod
    def for_build(cls, context: Path, dockerfile: Path) -> Ignore:
        for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
            if candidate.is_file():
                return cls(candidate.read_text().splitlines())
        return cls([])

    def ignored(self, rel: str) -> bool:
        if not self.rules:
            return False
        parts = rel.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in prefixes):
                result = not negate
        return result


@dataclass(frozen=True)
class Source:
    """One matched source: its path, and where it goes relative to the destination."""

    path: Path
    rel: str  # "" for a matched file itself; the relative path below a matched folder otherwise
    is_dir_source: bool


class SourceError(ValueError):
    pass


def _glob(root: Path, pattern: str) -> list[Path]:
    matches = [root]
    for part in pattern.split("/"):
        nxt = []
        for base in matches:
            if not base.is_dir() or base.is_symlink():
                continue
            if _GLOB.search(part):
                nxt += [base / n for n in sorted(os.listdir(base)) if fnmatch.fnmatchcase(n, part)]
            elif (base / part).exists() or (base / part).is_symlink():
                nxt.append(base / part)
        matches = nxt
    return matches


def resolve(root: Path, patterns: list[str], ignore: Ignore | None) -> tuple[list[Source], bool]:
    """The sources ``patterns`` name below ``root`` (files inside matched folders included, ignored ones
    left out); and whether they make the destination a folder (several sources, a wildcard, a folder)."""
    out: list[Source] = []
    many = len(patterns) > 1
    for pattern in patterns:
        clean = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
        if clean == ".." or clean.startswith("../"):
            raise SourceError(f"{pattern}: forbidden path outside the build context")
        wildcard = bool(_GLOB.search(clean))
        many = many or wildcard
        found = _glob(root, clean) if clean != "." else [root]
        rel_of = lambda p: p.relative_to(root).as_posix()  # noqa: E731
        found = [p for p in found if not (ignore and p != root and ignore.ignored(rel_of(p)))]
        if not found:
            raise SourceError(f"{pattern}: not found" if not wildcard else f"{pattern}: no source files were specified")
        for path in found:
            if path.is_dir() and not path.is_symlink():
                many = True
                out += _walk(root, path, ignore)
            else:
                out.append(Source(path, "", False))
    return out, many


def _walk(root: Path, folder: Path, ignore: Ignore | None) -> list[Source]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        for name in [*dirnames, *sorted(filenames)]:
            path = here / name
            if ignore and ignore.ignored(path.relative_to(root).as_posix()):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            out.append(Source(path, path.relative_to(folder).as_posix(), True))
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return out


def context_mode(path: Path) -> int:
    """The mode a file from the build context gets in the image."""
    return 0o755 if os.stat(path).st_mode & 0o111 else 0o644


def content_hash(root: Path, sources: list[Source]) -> str:
    """A digest of the sources' names, kinds, modes and contents (the cache key of a COPY)."""
    h = hashlib.sha256()
    for src in sources:
        h.update(f"{src.path.relative_to(root).as_posix()}\0{src.rel}\0".encode())
        if src.path.is_symlink():
            h.update(b"L" + os.readlink(src.path).encode())
        elif src.path.is_dir():
            h.update(b"D")
        else:
            h.update(b"F%o" % context_mode(src.path))
            with src.path.open("rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
