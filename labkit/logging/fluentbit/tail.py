"""The ``tail`` input: follows the files its ``path`` globs match, line by line, through rotation.

Files are known by inode. With a ``db`` their offsets are kept in SQLite in Fluent Bit's own table
(``in_tail_files``: id, name, offset, inode, created, rotated), so a restart goes on where it stopped. The offset
kept is the end of the last line whose records the outputs have taken (``commit`` after delivery), and never the
middle of a multiline record (the ``P`` parts of a CRI line): a restart neither loses nor repeats a line. Files
found at start begin at their end unless ``read_from_head``; files that appear later are read from their head, as
Fluent Bit does. A rotated file (its path now names another inode) is read to its end for ``rotate_wait`` seconds.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, Section
from .parsers import Multiline, Parser, RegexParser, RegexRules, instantiate, multiline_factory
from .paths import PathMap

Event = tuple[str, float, dict[str, Any]]  # tag, time, record
SCHEMA = ("CREATE TABLE IF NOT EXISTS in_tail_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL, offset INTEGER, "
          "inode INTEGER, created INTEGER, rotated INTEGER DEFAULT 0)")


def duration(text: str) -> float:
    """``10``, ``10s``, ``5m``, ``1h``, ``2d`` as seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ConfigError(f"[tail] invalid time value '{text}'")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@dataclass
class TailFile:
    name: str  # the path as the configuration sees it (the tag is made of it)
    real: Path
    inode: int
    fh: Any
    pos: int  # read so far
    safe: int  # end of the last complete record (what a restart resumes from)
    tag: str
    db_id: int | None = None
    rotated_at: float | None = None
    parsers: list[Multiline] = field(default_factory=list)
    carry: bytes = b""
    skipping: bool = False  # inside a line longer than buffer_max_size (skip_long_lines)


class TailInput:
    """One ``[INPUT] Name tail``."""

    def __init__(self, s: Section, index: int, paths: PathMap, parsers: dict[str, Parser],
                 multiline: dict[str, RegexRules]) -> None:
        self.name = f"tail.{index}"
        self.alias = s.get("alias") or self.name
        self.patterns = [p.strip() for p in s.get("path").split(",") if p.strip()]
        if not self.patterns:
            raise ConfigError("[input:tail] no input 'path' was given")
        self.excludes = [p.strip() for p in s.get("exclude_path").split(",") if p.strip()]
        self.tag = s.get("tag", self.name)
        self.paths = paths
        self.read_from_head = s.flag("read_from_head")
        self.refresh = s.number("refresh_interval", 60)
        self.rotate_wait = s.number("rotate_wait", 5)
        self.mem_buf_limit = s.size("mem_buf_limit", 0)
        self.max_line = s.size("buffer_max_size", 32 * 1024)
        self.skip_long = s.flag("skip_long_lines")
        self.skip_empty = s.flag("skip_empty_lines")
        self.key = s.get("key", "log")
        self.path_key = s.get("path_key")
        self.offset_key = s.get("offset_key")
        self.ignore_older = duration(s.get("ignore_older")) if s.get("ignore_older") else 0.0
        if s.get("storage.type", "memory").lower() != "memory":
            raise ConfigError("[input:tail] storage.type filesystem is not supported by the labkit simulator")
        names = [n.strip() for n in s.get("multiline.parser").split(",") if n.strip()]
        self.multiline = multiline_factory(names, multiline)
        parser = s.get("parser")
        if parser and parser not in parsers:
            raise ConfigError(f"[input:tail] parser '{parser}' is not registered")
        self.parser = parsers.get(parser) if parser else None
        self.files: dict[int, TailFile] = {}
        self.db: sqlite3.Connection | None = None
        if s.get("db"):
            db = paths.real(s.get("db"))
            db.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            mode = s.get("db.journal_mode", "WAL")
            self.db.execute(f"PRAGMA journal_mode={mode if mode.isalpha() else 'WAL'}")
            self.db.execute(SCHEMA)
        self.metrics = {"records": 0, "bytes": 0, "files_opened": 0, "files_closed": 0, "files_rotated": 0}
        self._next_scan = 0.0
        self._started = False

    # -- discovery ----------------------------------------------------------------------------------------------
    def _matches(self) -> dict[str, Path]:
        """Configured path -> real path, for every file the globs match now."""
        out: dict[str, Path] = {}
        for pattern in self.patterns:
            for found in sorted(glob.glob(str(self.paths.real(pattern)))):
                name = self.paths.virtual(Path(found))
                if any(fnmatch.fnmatch(name, e) or fnmatch.fnmatch(os.path.basename(name), e) for e in self.excludes):
                    continue
                if self.ignore_older:
                    with contextlib.suppress(OSError):
                        if time.time() - os.stat(found).st_mtime > self.ignore_older:
                            continue
                out[name] = Path(found)
        return out

    def _tag_of(self, name: str) -> str:
        if "*" not in self.tag:
            return self.tag
        return self.tag.replace("*", name.strip("/").replace("/", "."), 1)

    def scan(self, now: float) -> None:
        """Finds new files (each ``refresh_interval``) and rotated ones (each call)."""
        by_name = {f.name: f for f in self.files.values() if f.rotated_at is None}
        for name, f in by_name.items():
            try:
                inode = os.stat(f.real).st_ino
            except FileNotFoundError:
                inode = None
            if inode != f.inode:  # renamed away (rotated) or deleted: read what is left, then let it go
                f.rotated_at = now
                self.metrics["files_rotated"] += 1
                if inode is not None:
                    self._open(name, f.real, from_head=True)
        if now < self._next_scan:
            return
        self._next_scan = now + self.refresh
        first = not self._started
        self._started = True
        for name, real in self._matches().items():
            if name in by_name:
                continue
            self._open(name, real, from_head=self.read_from_head or not first)

    def _open(self, name: str, real: Path, from_head: bool) -> None:
        try:
            fh = open(real, "rb")  # noqa: SIM115 - kept open while the file is followed
        except OSError:
            return
        st = os.fstat(fh.fileno())
        if st.st_ino in self.files:
            fh.close()
            return
        offset, db_id = (0 if from_head else st.st_size), None
        if self.db is not None:
            row = self.db.execute("SELECT id, offset, name FROM in_tail_files WHERE inode=?", (st.st_ino,)).fetchone()
            if row is not None and row[1] <= st.st_size:
                db_id, offset = row[0], row[1]
                if row[2] != str(name):
                    self.db.execute("UPDATE in_tail_files SET name=? WHERE id=?", (name, db_id))
            else:
                if row is not None:
                    self.db.execute("DELETE FROM in_tail_files WHERE id=?", (row[0],))
                cur = self.db.execute("INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?,?,?,?)",
                                      (name, offset, st.st_ino, int(time.time())))
                db_id = cur.lastrowid
        fh.seek(offset)
        self.files[st.st_ino] = TailFile(name, real, st.st_ino, fh, offset, offset, self._tag_of(name), db_id,
                                         parsers=[instantiate(k) for k in self.multiline])
        self.metrics["files_opened"] += 1

    # -- reading ------------------------------------------------------------------------------------------------
    def read(self, budget: int) -> tuple[list[Event], dict[int, int]]:
        """New records from every file (at most about ``budget`` bytes, or ``mem_buf_limit``) and the offsets to
        commit once they are delivered."""
        if self.mem_buf_limit:
            budget = min(budget, self.mem_buf_limit)
        events: list[Event] = []
        marks: dict[int, int] = {}
        now = time.time()
        for f in list(self.files.values()):
            if budget <= 0:
                break
            data = f.fh.read(budget)
            budget -= len(data)
            if data:
                self.metrics["bytes"] += len(data)
                self._lines(f, data, events)
            for p in f.parsers:
                if isinstance(p, RegexParser) and p.expired():
                    self._emit(f, p.flush(), events)
            if not any(getattr(p, "pending", None) or getattr(p, "buffer", None) for p in f.parsers) \
                    and not f.carry:
                f.safe = f.pos
            marks[f.inode] = f.safe
            if f.rotated_at is not None and not data and now - f.rotated_at >= self.rotate_wait:
                self._close(f, forget=True)
        self.metrics["records"] += len(events)
        return events, marks

    def _lines(self, f: TailFile, data: bytes, events: list[Event]) -> None:
        buf = f.carry + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            end_pos = f.pos - len(f.carry) + nl + 1
            start = nl + 1
            if f.skipping:
                f.skipping = False
                continue
            if len(line) > self.max_line:  # skip_long_lines, or Fluent Bit drops the file: both skip the line
                continue
            text = line.decode("utf-8", "replace").rstrip("\r")
            if not (self.skip_empty and not text.strip()):
                self._line(f, text, events)
            if not any(getattr(p, "pending", None) or getattr(p, "buffer", None) for p in f.parsers):
                f.safe = end_pos
        rest = buf[start:]
        f.pos += len(data)
        if len(rest) > self.max_line:  # a line longer than the buffer: skipped up to its end
            f.carry, f.skipping = b"", True
        else:
            f.carry = rest

    def _line(self, f: TailFile, text: str, events: list[Event]) -> None:
        for p in f.parsers:
            done = p.feed(text)
            if done is not None:
                self._emit(f, done, events)
                return
        if self.parser is not None:
            parsed = self.parser.parse(text)
            if parsed is not None:
                rec, when = parsed
                self._emit(f, [(rec, when if when is not None else time.time())], events)
                return
        self._emit(f, [({self.key: text}, time.time())], events)

    def _emit(self, f: TailFile, done: list[tuple[dict[str, Any], float]], events: list[Event]) -> None:
        for rec, when in done:
            if self.path_key:
                rec[self.path_key] = f.name
            if self.offset_key:
                rec[self.offset_key] = f.pos
            events.append((f.tag, when, rec))

    def commit(self, marks: dict[int, int]) -> None:
        """The records up to these offsets are delivered: a restart resumes after them."""
        if self.db is None:
            return
        rows = [(off, f.db_id) for ino, off in marks.items() if (f := self.files.get(ino)) is not None
                and f.db_id is not None]
        if rows:
            self.db.executemany("UPDATE in_tail_files SET offset=? WHERE id=?", rows)

    def _close(self, f: TailFile, forget: bool) -> None:
        f.fh.close()
        self.files.pop(f.inode, None)
        self.metrics["files_closed"] += 1
        if forget and self.db is not None and f.db_id is not None:
            self.db.execute("DELETE FROM in_tail_files WHERE id=?", (f.db_id,))

    def close(self) -> None:
        for f in list(self.files.values()):
            self._close(f, forget=False)
        if self.db is not None:
            self.db.close()
            self.db = None
