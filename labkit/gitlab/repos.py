"""The lab's git repositories: bare repositories on disk, written by pushes and the API, read for the others.

``GitRepos`` implements ``model.Repos`` (files at a commit, changed paths, working copies) and adds what the
REST API needs: branches, commits, and commits made from file actions (the repository files API, seeding).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dulwich.diff_tree import tree_changes
from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

ZERO = "0" * 40
BRANCH = "refs/heads/"
TAG = "refs/tags/"


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    @property
    def ident(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()


class GitRepos:
    """Bare repositories under ``root``, one per project path (``shop/shop`` → ``root/shop/shop.git``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, project: str) -> Path:
        return self.root / f"{project}.git"

    def exists(self, project: str) -> bool:
        return (self.path(project) / "HEAD").is_file()

    def init(self, project: str, default_branch: str) -> Repo:
        path = self.path(project)
        path.mkdir(parents=True, exist_ok=True)
        repo = Repo.init_bare(str(path))
        repo.refs.set_symbolic_ref(b"HEAD", f"{BRANCH}{default_branch}".encode())
        return repo

    def open(self, project: str) -> Repo:
        return Repo(str(self.path(project)))

    def remove(self, project: str) -> None:
        shutil.rmtree(self.path(project), ignore_errors=True)

    # model.Repos -------------------------------------------------------------------------------------------
    def read_file(self, project: str, sha: str, path: str) -> bytes | None:
        with self.open(project) as repo:
            entry = self._entry(repo, sha, path)
            if entry is None or stat.S_ISDIR(entry[0]):
                return None
            return repo[entry[1]].as_raw_string()

    def list_files(self, project: str, sha: str) -> list[str]:
        with self.open(project) as repo:
            commit = self._commit(repo, sha)
            if commit is None:
                return []
            return sorted(e.path.decode() for e in repo.object_store.iter_tree_contents(commit.tree))

    def changed_files(self, project: str, before: str | None, after: str) -> list[str] | None:
        if not before or before == ZERO:
            return None
        with self.open(project) as repo:
            old, new = self._commit(repo, before), self._commit(repo, after)
            if old is None or new is None:
                return None
            paths = set()
            for change in tree_changes(repo.object_store, old.tree, new.tree):
                for side in (change.old, change.new):
                    if side is not None and side.path is not None:
                        paths.add(side.path.decode())
            return sorted(paths)

    def checkout(self, project: str, sha: str, dest: Path) -> None:
        """``git clone`` of the bare repository, then a detached checkout of ``sha``, as the runner does."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        git = ["git", "-c", "advice.detachedHead=false", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "clone", "-q", "--no-checkout", str(self.path(project)), str(dest)],
                       check=True, capture_output=True)
        subprocess.run([*git, "-C", str(dest), "checkout", "-q", "-f", "--detach", sha],
                       check=True, capture_output=True)

    # branches and commits ----------------------------------------------------------------------------------
    def branches(self, project: str) -> dict[str, str]:
        """Branch name → head commit."""
        with self.open(project) as repo:
            return {ref.decode().removeprefix(BRANCH): sha.decode()
                    for ref, sha in repo.get_refs().items() if ref.startswith(BRANCH.encode())}

    def tags(self, project: str) -> dict[str, str]:
        with self.open(project) as repo:
            return {ref.decode().removeprefix(TAG): repo.get_peeled(ref).decode()
                    for ref in repo.get_refs() if ref.startswith(TAG.encode())}

    def resolve(self, project: str, ref: str) -> str | None:
        """A branch, tag or commit (full or short sha) → the commit's sha."""
        with self.open(project) as repo:
            for name in (f"{BRANCH}{ref}", f"{TAG}{ref}", ref):
                try:
                    sha = repo.get_peeled(name.encode()) if name.startswith("refs/") else None
                except KeyError:
                    sha = None
                if sha:
                    return sha.decode()
            commit = self._commit(repo, ref)
            return commit.id.decode() if commit else None

    def commit(self, project: str, sha: str) -> Commit | None:
        with self.open(project) as repo:
            return self._commit(repo, sha)

    def log(self, project: str, sha: str, path: str | None = None, limit: int | None = None) -> list[Commit]:
        """Commits reachable from ``sha``, newest first (touching ``path`` if given)."""
        with self.open(project) as repo:
            walker = repo.get_walker(include=[sha.encode()], paths=[path.encode()] if path else None,
                                     max_entries=limit)
            return [entry.commit for entry in walker]

    def is_ancestor(self, project: str, old: str, new: str) -> bool:
        with self.open(project) as repo:
            if old == new:
                return True
            return any(e.commit.id.decode() == old for e in repo.get_walker(include=[new.encode()]))

    def diff_stats(self, project: str, sha: str) -> list[dict[str, object]]:
        """The paths a commit changed against its first parent (GitLab's diff entries, without the diff text)."""
        with self.open(project) as repo:
            commit = self._commit(repo, sha)
            if commit is None:
                return []
            parent_tree = repo[commit.parents[0]].tree if commit.parents else None
            out = []
            for ch in tree_changes(repo.object_store, parent_tree, commit.tree):
                old = ch.old.path.decode() if ch.old and ch.old.path else None
                new = ch.new.path.decode() if ch.new and ch.new.path else None
                out.append({"old_path": old or new, "new_path": new or old, "new_file": ch.type == "add",
                            "deleted_file": ch.type == "delete", "renamed_file": False})
            return out

    def write(self, project: str, branch: str, changes: dict[str, bytes | None], message: str, author: Author,
              start: str | None = None) -> str:
        """Commit ``changes`` (path → content, None deletes) on ``branch`` (from ``start``'s head when new)."""
        with self.open(project) as repo:
            ref = f"{BRANCH}{branch}".encode()
            refs = repo.get_refs()
            parent = refs.get(ref) or (refs.get(f"{BRANCH}{start}".encode()) if start else None)
            files: dict[bytes, tuple[bytes, int]] = {}
            if parent is not None:
                for e in repo.object_store.iter_tree_contents(repo[parent].tree):
                    files[e.path] = (e.sha, e.mode)
            for path, content in changes.items():
                if content is None:
                    files.pop(path.encode(), None)
                else:
                    blob = Blob.from_string(content)
                    repo.object_store.add_object(blob)
                    mode = files.get(path.encode(), (b"", 0o100644))[1]
                    files[path.encode()] = (blob.id, mode)
            tree = commit_tree(repo.object_store, [(p, s, m) for p, (s, m) in sorted(files.items())])
            commit = Commit()
            commit.tree, commit.parents = tree, [parent] if parent else []
            commit.author = commit.committer = author.ident
            commit.author_time = commit.commit_time = int(time.time())
            commit.author_timezone = commit.commit_timezone = 0
            commit.encoding, commit.message = b"UTF-8", message.encode() + (b"" if message.endswith("\n") else b"\n")
            repo.object_store.add_object(commit)
            if not repo.refs.set_if_equals(ref, parent if ref in refs else None, commit.id):
                raise RuntimeError(f"{branch} moved while committing")
            return commit.id.decode()

    def set_branch(self, project: str, branch: str, sha: str | None) -> None:
        with self.open(project) as repo:
            ref = f"{BRANCH}{branch}".encode()
            if sha is None:
                repo.refs.remove_if_equals(ref, None)
            else:
                repo.refs[ref] = sha.encode()

    # helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _commit(repo: Repo, sha: str) -> Commit | None:
        try:
            obj = repo[sha.encode()] if len(sha) == 40 else None
        except KeyError:
            obj = None
        if obj is None and 4 <= len(sha) < 40:
            matches = [s for s in repo.object_store if s.decode().startswith(sha)]
            obj = repo[matches[0]] if len(matches) == 1 else None
        return obj if isinstance(obj, Commit) else None

    def _entry(self, repo: Repo, sha: str, path: str) -> tuple[int, bytes] | None:
        commit = self._commit(repo, sha)
        if commit is None:
            return None
        from dulwich.object_store import tree_lookup_path

        try:
            return tree_lookup_path(repo.__getitem__, commit.tree, path.strip("/").encode())
        except KeyError:
            return None
