"""What a sync applies: the manifests rendered from a checked-out tree (directory globs and recursion, the real
kustomize with the Application's overrides) and the refusals (Helm, unknown overrides, unparsable files)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from labkit.argocd.render import render
from labkit.argocd.sources import SourceError


def cm(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})


def names(objs: list[dict]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def test_directory_recurse_include_exclude(tmp_path: Path) -> None:
    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "app" / "a.yaml").write_text(cm("a"))
    (tmp_path / "app" / "b.yml").write_text(cm("b") + "---\n" + cm("b2"))
    (tmp_path / "app" / "sub" / "c.yaml").write_text(cm("c"))
    (tmp_path / "app" / "notes.txt").write_text("not a manifest")
    assert names(asyncio.run(render({"path": "app"}, tmp_path))) == ["a", "b", "b2"]
    assert names(asyncio.run(render({"path": "app", "directory": {"recurse": True}}, tmp_path))) == [
        "a", "b", "b2", "c"]
    assert names(asyncio.run(render({"path": "app", "directory": {"recurse": True, "include": "{a,sub/*}.yaml"}},
                                    tmp_path))) == ["a", "c"]
    assert names(asyncio.run(render({"path": "app", "directory": {"recurse": True, "exclude": "*.yml"}},
                                    tmp_path))) == ["a", "c"]


def test_kustomize_with_overrides(tmp_path: Path) -> None:
    app = tmp_path / "k"
    app.mkdir()
    (app / "deploy.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "shop/web:1"}]}}}}))
    (app / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["deploy.yaml"]}))
    objs = asyncio.run(render({"path": "k", "kustomize": {"namePrefix": "prod-", "images": ["shop/web=reg/web:2"],
                                                          "replicas": [{"name": "web", "count": 3}]}}, tmp_path))
    dep = objs[0]
    assert dep["metadata"]["name"] == "prod-web" and dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/web:2"
    with pytest.raises(SourceError, match=r"kustomize option\(s\) patches are not supported by the labkit simulator"):
        asyncio.run(render({"path": "k", "kustomize": {"patches": [{"patch": "x"}]}}, tmp_path))


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("name: c\n")
    with pytest.raises(SourceError, match="Helm sources are not supported by the labkit simulator"):
        asyncio.run(render({"path": "chart"}, tmp_path))
    with pytest.raises(SourceError, match="Plugin sources are not supported"):
        asyncio.run(render({"path": ".", "plugin": {"name": "x"}}, tmp_path))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.yaml").write_text("kind: [\n")
    with pytest.raises(SourceError, match=r'Failed to unmarshal "x\.yaml"'):
        asyncio.run(render({"path": "bad"}, tmp_path))
    with pytest.raises(SourceError, match="app path does not exist"):
        asyncio.run(render({"path": "nowhere"}, tmp_path))
