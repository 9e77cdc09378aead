"""The runner's settings, in the shape of gitlab-runner's ``config.toml``::

    concurrent = 2
    [[runners]]
      name = "labkit-runner"
      executor = "labkit"
      tag_list = []            # a job with tags runs only on a runner with all of them
      run_untagged = true
      builds_dir = "/path/to/builds"
      cache_dir = "/path/to/cache"
      [runners.labkit]
        image = "python:3.12-slim"

Missing keys take these defaults; the file is written with them the first time the lab starts. ``tag_list`` and
``run_untagged`` are what ``gitlab-runner register --tag-list ... --run-untagged`` records with a real GitLab
(the runner's tags live on the server there); the sim has no registration, so they are read from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_IMAGE = "python:3.12-slim"


@dataclass(frozen=True)
class RunnerConfig:
    """What the runner reads from ``config.toml``."""

    concurrent: int
    builds_dir: Path
    cache_dir: Path
    name: str = "labkit-runner"
    image: str = DEFAULT_IMAGE
    tags: tuple[str, ...] = ()  # [[runners]] tag_list: a job with tags runs only if the runner has them all
    run_untagged: bool = True

    def can_run(self, tags: list[str]) -> bool:
        """Whether this runner picks up a job with these tags (GitLab leaves the others pending: stuck)."""
        return set(tags) <= set(self.tags) if tags else self.run_untagged

    @classmethod
    def load(cls, path: Path) -> RunnerConfig:
        """Read ``path`` (written with the defaults when missing)."""
        base = path.parent
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "concurrent = 2\ncheck_interval = 0\n\n[[runners]]\n  name = \"labkit-runner\"\n"
                "  executor = \"labkit\"\n"
                f"  builds_dir = \"{base / 'builds'}\"\n  cache_dir = \"{base / 'cache'}\"\n"
                f"  [runners.labkit]\n    image = \"{DEFAULT_IMAGE}\"\n")
        doc = tomllib.loads(path.read_text())
        runner = (doc.get("runners") or [{}])[0]
        concurrent = int(doc.get("concurrent", 2))
        if concurrent < 1:
            raise ValueError(f"{path}: concurrent must be at least 1")
        return cls(concurrent=concurrent,
                   builds_dir=Path(runner.get("builds_dir") or base / "builds"),
                   cache_dir=Path(runner.get("cache_dir") or base / "cache"),
                   name=runner.get("name", "labkit-runner"),
                   image=(runner.get("labkit") or {}).get("image", DEFAULT_IMAGE),
                   tags=tuple(runner.get("tag_list") or ()), run_untagged=bool(runner.get("run_untagged", True)))
