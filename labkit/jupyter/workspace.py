"""The attendee's working copies of the workshop notebooks.

JupyterLab serves these (``LabPaths.workspace``), never the tracked files in the checkout, so saving a run or an edit
never changes the checkout and ``git pull`` of a workshop update never conflicts with the attendee's work. A copy is
the tracked notebook with the lab's kernel in its metadata. ``sync`` adds the chapters a workshop update brings and
refreshes copies the attendee never changed; ``reset`` puts a pristine copy back and keeps the attendee's as a backup.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.files import read_json, write_atomic, write_json
from .component import notebooks_dir
from .kernel import kernel_metadata

MANIFEST = ".labkit-copies.json"  # notebook (relative path) -> sha256 of the copy labkit wrote
BACKUPS = "backups"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pristine(tracked: Path) -> bytes:
    """The working copy of a tracked notebook: the same cells, with the lab's kernel (and its language) in the
    metadata, so JupyterLab opens it with that kernel and has nothing to change in it."""
    import nbformat

    nb = nbformat.read(tracked, as_version=4)
    nb.metadata.update(kernel_metadata())
    return (nbformat.writes(nb) + "\n").encode()


@dataclass
class Workspace:
    """Working copies in ``folder`` of the tracked notebooks in ``source`` (``NN-*.ipynb`` and ``ko/NN-*.ipynb``)."""

    folder: Path
    source: Path

    @classmethod
    def of(cls, folder: Path) -> Workspace:
        return cls(folder, notebooks_dir())

    def tracked(self) -> list[str]:
        """The workshop's notebooks, as paths relative to the notebooks folder."""
        found = [*self.source.glob("[0-9][0-9]-*.ipynb"), *self.source.glob("*/[0-9][0-9]-*.ipynb")]
        return sorted(str(p.relative_to(self.source)) for p in found)

    def _manifest(self) -> dict[str, str]:
        return read_json(self.folder / MANIFEST, {}) or {}

    def _write(self, name: str, data: bytes, manifest: dict[str, str]) -> None:
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
        manifest[name] = _sha(data)

    def edited(self, name: str) -> bool:
        """Whether the attendee changed the copy (edited, ran or saved it) since labkit wrote it."""
        copy = self.folder / name
        return copy.exists() and _sha(copy.read_bytes()) != self._manifest().get(name)

    def sync(self) -> list[str]:
        """Copy the notebooks the workspace lacks and refresh the copies nobody changed whose notebook changed; an
        edited copy is left as it is. Returns what it did, one line per notebook."""
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest, done = self._manifest(), []
        for name in self.tracked():
            copy, data = self.folder / name, pristine(self.source / name)
            if not copy.exists():
                self._write(name, data, manifest)
                done.append(f"{name}: copied")
            elif not self.edited(name) and _sha(copy.read_bytes()) != _sha(data):
                self._write(name, data, manifest)
                done.append(f"{name}: updated (it had not been changed)")
        write_json(self.folder / MANIFEST, manifest)
        return done

    def select(self, prefixes: list[str]) -> list[str]:
        """The tracked notebooks whose file name starts with one of ``prefixes`` (``01``, ``01-haproxy``), in
        every language; all of them when ``prefixes`` is empty."""
        names = self.tracked()
        if not prefixes:
            return names
        chosen = [n for n in names if any(Path(n).stem == p or Path(n).name.startswith(f"{p}-") for p in prefixes)]
        missing = [p for p in prefixes if not any(Path(n).stem == p or Path(n).name.startswith(f"{p}-")
                                                  for n in chosen)]
        if missing:
            raise ValueError(f"no notebook matches {', '.join(missing)}; there are: "
                             f"{', '.join(n for n in names if '/' not in n)}")
        return chosen

    def reset(self, prefixes: list[str]) -> list[tuple[str, Path | None]]:
        """Put pristine copies of the chosen notebooks back; a copy the attendee changed is first moved to
        ``backups/NAME-YYYYmmdd-HHMMSS.ipynb``. Returns (notebook, its backup or None)."""
        manifest, stamp, done = self._manifest(), time.strftime("%Y%m%d-%H%M%S"), []
        for name in self.select(prefixes):
            copy, backup = self.folder / name, None
            if copy.exists() and self.edited(name):
                backup = self.folder / BACKUPS / Path(name).parent / f"{Path(name).stem}-{stamp}.ipynb"
                backup.parent.mkdir(parents=True, exist_ok=True)
                copy.replace(backup)
            self._write(name, pristine(self.source / name), manifest)
            done.append((name, backup))
        write_json(self.folder / MANIFEST, manifest)
        return done
