"""The lab repository's own files that labkit reads at run time: versions, templates, the shop's sources."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import yaml

from .errors import LabError


@dataclass(frozen=True)
class Checkout:
    """A checkout of the lab repository (labkit runs from one, like the notebooks); ``$LABKIT_REPO`` names another."""

    root: Path

    @classmethod
    def find(cls) -> Checkout:
        root = Path(os.environ.get("LABKIT_REPO") or Path(__file__).resolve().parents[2])
        if not (root / "manifests" / "versions.yaml").is_file():
            raise LabError(f"labkit needs the lab repository's manifests/, compose/ and apps/ (not found under "
                           f"{root}): install labkit from a checkout with `pip install -e .`, or set LABKIT_REPO")
        return cls(root)

    @cached_property
    def versions(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "manifests" / "versions.yaml").read_text())

    @property
    def compose_file(self) -> Path:
        return self.root / "compose" / "compose.yaml"

    @property
    def wheelhouse(self) -> Path:
        """Wheels for the shop images' ``pip install`` (``scripts/venv.sh`` fills it), so builds need no index."""
        return self.root / ".wheelhouse"

    def template(self, name: str) -> jinja2.Template:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.root / "manifests" / "kind"),
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                 keep_trailing_newline=True, autoescape=False)
        return env.get_template(name)

    def apps(self) -> list[str]:
        """The shop services with a Dockerfile (``apps/<name>/Dockerfile``)."""
        return sorted(p.parent.name for p in (self.root / "apps").glob("*/Dockerfile"))

    def compose_profiles(self) -> set[str]:
        services = (yaml.safe_load(self.compose_file.read_text()) or {}).get("services", {})
        return {p for svc in services.values() for p in (svc or {}).get("profiles", [])}
