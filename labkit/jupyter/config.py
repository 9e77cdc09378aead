"""JupyterLab set up for the workshop, entirely through its own settings files under ``LabPaths.jupyter``.

``config/jupyter_server_config.json`` serves the attendee's working copies (``LabPaths.workspace``, also where a
terminal starts), opens 00 first, fetches no news and starts notebooks with the lab's kernel; ``user-settings/``
starts as ``labkit/jupyter/lab-settings/`` (no news pop-up, cell timings kept) and then is the attendee's; the lab's
kernel spec is in ``data/kernels/``. The environment JupyterLab starts with (and so its terminals and kernels) points
``kubectl``, ``git`` and ``docker`` at the lab (``labkit.toolenv``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.files import write_json
from ..core.paths import LabPaths
from ..endpoints import DockerEndpoint, RegistryEndpoint
from ..toolenv import tool_env
from .kernel import KERNEL_NAME, write_kernelspec

LAB_SETTINGS = Path(__file__).parent / "lab-settings"
FIRST_NOTEBOOK = "00-welcome.ipynb"


def _user_settings(folder: Path) -> None:
    """Each of the lab's settings files that the attendee's settings folder does not have yet."""
    for source in LAB_SETTINGS.rglob("*.jupyterlab-settings"):
        target = folder / source.relative_to(LAB_SETTINGS)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def configure(paths: LabPaths, registry: RegistryEndpoint | None = None,
              docker: DockerEndpoint | None = None) -> dict[str, str]:
    """Write JupyterLab's configuration for this lab; returns the environment to start JupyterLab with."""
    root, tools = paths.jupyter, tool_env(paths, registry, docker)
    write_json(root / "config" / "jupyter_server_config.json", {
        "ServerApp": {"root_dir": str(paths.workspace), "open_browser": False},
        "LabApp": {"default_url": f"/lab/tree/{FIRST_NOTEBOOK}", "news_url": None,
                   "user_settings_dir": str(root / "user-settings"), "workspaces_dir": str(root / "workspaces")},
        "MappingKernelManager": {"default_kernel_name": KERNEL_NAME},
    })
    _user_settings(root / "user-settings")
    write_kernelspec(root / "data", tools)
    # JupyterLab serves people: its kernels are interactive (live widgets, checks that do not raise) even when the
    # lab was started from CI or a test run, whose markers (labkit.checks.interactive) stay out of its environment
    inherited = {k: v for k, v in os.environ.items() if k not in ("CI", "LABKIT_NONINTERACTIVE")}
    return {**inherited, **tools, "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_DATA_DIR": str(root / "data"), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}
