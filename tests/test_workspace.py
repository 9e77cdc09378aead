"""The attendee's working copies of the notebooks (labkit.jupyter.workspace) and JupyterLab's settings for the lab."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from labkit.core.paths import LabPaths
from labkit.jupyter.config import configure
from labkit.jupyter.kernel import KERNEL_NAME
from labkit.jupyter.workspace import Workspace

from .conftest import labkit


def _notebook(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notebooks"
    _notebook(folder / "00-welcome.ipynb", "print('hello')")
    _notebook(folder / "01-haproxy.ipynb", "print('haproxy')")
    _notebook(folder / "ko" / "01-haproxy.ipynb", "print('haproxy')")
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(folder))
    return folder


def test_sync_copies_with_the_lab_kernel_and_adds_new_chapters_without_touching_edited_ones(
        tracked: Path, tmp_path: Path) -> None:
    ws = Workspace.of(tmp_path / "workspace")
    assert sorted(ws.sync()) == ["00-welcome.ipynb: copied", "01-haproxy.ipynb: copied", "ko/01-haproxy.ipynb: copied"]
    copy = nbformat.read(ws.folder / "00-welcome.ipynb", as_version=4)
    assert copy.metadata.kernelspec.name == KERNEL_NAME and copy.metadata.language_info.get("version")
    assert ws.sync() == []  # nothing new

    edited = ws.folder / "00-welcome.ipynb"
    edited.write_text(edited.read_text().replace("hello", "my own work"))
    _notebook(tracked / "00-welcome.ipynb", "print('a new version')")
    _notebook(tracked / "01-haproxy.ipynb", "print('haproxy, fixed')")
    _notebook(tracked / "02-kubernetes.ipynb", "print('kubernetes')")
    assert sorted(ws.sync()) == ["01-haproxy.ipynb: updated (it had not been changed)", "02-kubernetes.ipynb: copied"]
    assert "my own work" in edited.read_text()
    assert "haproxy, fixed" in (ws.folder / "01-haproxy.ipynb").read_text()


def test_notebooks_reset_restores_a_pristine_copy_and_keeps_yours_as_a_backup(tracked: Path, tmp_path: Path) -> None:
    home = LabPaths.resolve(tmp_path / "home")
    Workspace.of(home.workspace).sync()
    mine = home.workspace / "01-haproxy.ipynb"
    mine.write_text(mine.read_text().replace("haproxy", "my attempt"))

    res = labkit("notebooks", "reset", "01", home=home)
    assert "01-haproxy.ipynb: pristine copy restored; yours is kept as backups/01-haproxy-" in res.stderr
    assert "ko/01-haproxy.ipynb: pristine copy restored (it was unchanged)" in res.stderr
    backups = list((home.workspace / "backups").glob("01-haproxy-*.ipynb"))
    assert len(backups) == 1 and "my attempt" in backups[0].read_text()
    assert "my attempt" not in mine.read_text() and not Workspace.of(home.workspace).edited("01-haproxy.ipynb")
    assert labkit("notebooks", "reset", "07", home=home, check=False).returncode == 1


def test_jupyterlab_settings_for_the_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = LabPaths.resolve(tmp_path / "home")
    monkeypatch.setenv("CI", "true")
    env = configure(paths)
    assert "CI" not in env and "LABKIT_NONINTERACTIVE" not in env, "JupyterLab's notebooks are a person's"
    config = json.loads((paths.jupyter / "config" / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["root_dir"] == str(paths.workspace)
    assert config["LabApp"]["news_url"] is None
    assert config["MappingKernelManager"]["default_kernel_name"] == KERNEL_NAME
    news = paths.jupyter / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    assert '"fetchNews": "false"' in news.read_text()
    kernel = json.loads((paths.jupyter / "data" / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert "--ext=labkit.jupyter.progress" in kernel["argv"] and kernel["env"]["KUBECONFIG"] == str(paths.kubeconfig)
    for key in ("KUBECONFIG", "GIT_CONFIG_GLOBAL", "DOCKER_CONFIG", "JUPYTER_CONFIG_DIR"):
        assert env[key] and key in env
    assert env["PATH"].split(os.pathsep)[0] == str(Path(kernel["argv"][0]).parent)
