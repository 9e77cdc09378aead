"""Argo CD's released CRDs (``manifests/crds/`` of argoproj/argo-cd v3.1.8), kept as its YAML files and read once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

ARGOCD_VERSION = "v3.1.8"  # the release the two files come from
FILES = ("application-crd.yaml", "appproject-crd.yaml")


@cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parent / name).read_text())


def crds() -> list[dict[str, Any]]:
    """``applications.argoproj.io`` and ``appprojects.argoproj.io`` (fresh copies: callers may change them)."""
    import copy

    return [copy.deepcopy(_load(name)) for name in FILES]
