"""An Application source's manifests, as Argo CD's repo server generates them: a plain directory of YAML/JSON
(``directory.recurse``, ``include``/``exclude`` globs) or a kustomization rendered by the real kustomize inside
``kubectl kustomize``; Helm and plugin sources are refused (the labkit simulator does not run them)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from .sources import SourceError

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def kubectl() -> str:
    venv = Path(sys.executable).parent / "kubectl"
    return str(venv) if venv.exists() else (shutil.which("kubectl") or "kubectl")


def source_type(source: dict[str, Any], root: Path) -> str:
    """Directory, Kustomize, Helm or Plugin, as Argo CD tells them apart."""
    if source.get("chart") or source.get("helm") or (root / "Chart.yaml").exists():
        return "Helm"
    if source.get("plugin"):
        return "Plugin"
    if source.get("kustomize") or any((root / k).exists() for k in KUSTOMIZATIONS):
        return "Kustomize"
    return "Directory"


def _braces(pattern: str) -> list[str]:
    """``{a,b}`` alternatives expanded (Argo CD's glob supports them)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m.group(1).split(",") for x in _braces(pattern[:m.start()] + alt + pattern[m.end():])]


def _matches(rel: str, patterns: str) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(Path(rel).name, p) for p in _braces(patterns))


def _parse(text: str, name: str) -> list[dict[str, Any]]:
    try:
        docs = [json.loads(text)] if name.endswith(".json") else list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError) as err:
        raise SourceError(f"Failed to unmarshal \"{name}\": {err}") from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SourceError(f"Failed to unmarshal \"{name}\": not a Kubernetes object")
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    for obj in out:
        if not obj.get("apiVersion") or not obj.get("kind"):
            raise SourceError(f"Failed to unmarshal \"{name}\": Object 'Kind' is missing in '{json.dumps(obj)}'"
                              if not obj.get("kind") else f"Failed to unmarshal \"{name}\": apiVersion not set")
        if not (obj.get("metadata") or {}).get("name") and not (obj.get("metadata") or {}).get("generateName"):
            raise SourceError(f"Failed to unmarshal \"{name}\": {obj['kind']} has no metadata.name")
    return out


def directory(root: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    files = sorted(root.rglob("*") if options.get("recurse") else root.glob("*"))
    include, exclude = options.get("include", ""), options.get("exclude", "")
    objs: list[dict[str, Any]] = []
    for f in files:
        rel = str(f.relative_to(root))
        if not f.is_file() or not f.name.endswith(MANIFEST_SUFFIXES) or any(p.startswith(".") for p in f.parts[
                len(root.parts):]):
            continue
        if (include and not _matches(rel, include)) or (exclude and _matches(rel, exclude)):
            continue
        objs.extend(_parse(f.read_text(), rel))
    return objs


KUSTOMIZE_OPTIONS = {"images", "namePrefix", "nameSuffix", "commonLabels", "commonAnnotations", "namespace",
                     "replicas"}


def _image(spec: str) -> dict[str, str]:
    """An Argo CD image override (``name=new:tag``, ``name:tag``, ``name=new@sha256:...``) as kustomize's."""
    name, _, ref = spec.partition("=") if "=" in spec else ("", "", spec)
    out: dict[str, str] = {}
    if "@" in ref:
        ref, out["digest"] = ref.split("@", 1)
    elif ":" in ref.rsplit("/", 1)[-1]:
        ref, out["newTag"] = ref.rsplit(":", 1)
    base = ref
    out["name"] = name or base
    if name and base != name:
        out["newName"] = base
    return out


def overlay(base: Path, options: dict[str, Any], into: Path) -> Path:
    """A kustomization in ``into`` over ``base`` with the Application's ``kustomize`` overrides, as Argo CD's
    ``kustomize edit`` calls would set them; an override the simulator does not apply is refused."""
    unknown = sorted(set(options) - KUSTOMIZE_OPTIONS)
    if unknown:
        raise SourceError(f"kustomize option(s) {', '.join(unknown)} are not supported by the labkit simulator")
    doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": [os.path.relpath(base, into)]}
    for key in ("namePrefix", "nameSuffix", "commonLabels", "commonAnnotations", "namespace"):
        if options.get(key):
            doc[key] = options[key]
    if options.get("images"):
        doc["images"] = [_image(str(i)) for i in options["images"]]
    if options.get("replicas"):
        doc["replicas"] = [{"name": r["name"], "count": int(r["count"])} for r in options["replicas"]]
    into.mkdir(parents=True, exist_ok=True)
    (into / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return into


async def kustomize(root: Path, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of ``root`` (with the Application's overrides in a kustomization beside it)."""
    build = overlay(root, options, root.parent / f".{root.name or 'root'}-argocd-overrides") if options else root
    try:
        proc = await asyncio.create_subprocess_exec(kubectl(), "kustomize", str(build),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
    finally:
        if build != root:
            shutil.rmtree(build, ignore_errors=True)
    if proc.returncode:
        raise SourceError(f"`kustomize build {root.name}` failed exit status {proc.returncode}: "
                          f"{err.decode(errors='replace').strip()}")
    return _parse(out.decode(), "kustomize build")


async def render(source: dict[str, Any], checkout: Path) -> list[dict[str, Any]]:
    """The manifests of ``source`` in the checked-out tree ``checkout``."""
    path = str(source.get("path") or ".")
    root = (checkout / path).resolve()
    if not str(root).startswith(str(checkout.resolve())):
        raise SourceError(f"{path}: path is outside the repository")
    if not root.is_dir():
        raise SourceError(f"{path}: app path does not exist")
    kind = source_type(source, root)
    if kind in ("Helm", "Plugin"):
        raise SourceError(f"{kind} sources are not supported by the labkit simulator (only Directory and "
                          "Kustomize sources are)")
    if kind == "Kustomize":
        return await kustomize(root, source.get("kustomize"))
    options = source.get("directory") or {}
    if options.get("jsonnet"):
        raise SourceError("directory.jsonnet is not supported by the labkit simulator")
    return directory(root, options)
