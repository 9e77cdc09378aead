"""The lab's Jupyter kernel: Python from labkit's environment, named for the lab, with live feedback for long cells."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..core.files import write_json

KERNEL_NAME = "msa-lab"
DISPLAY_NAME = f"MSA Lab (Python {sys.version_info.major}.{sys.version_info.minor})"


def kernel_metadata() -> dict[str, Any]:
    """A notebook's ``kernelspec`` and ``language_info`` for the lab's kernel, as the kernel itself reports them
    (so JupyterLab has nothing to update when the kernel starts)."""
    from ipykernel.ipkernel import IPythonKernel

    return {"kernelspec": {"display_name": DISPLAY_NAME, "language": "python", "name": KERNEL_NAME},
            "language_info": dict(IPythonKernel.language_info)}


def write_kernelspec(data_dir: Path, env: dict[str, str]) -> Path:
    """``<data_dir>/kernels/msa-lab/kernel.json``: this Python's ipykernel with ``env`` (the lab's tools) and the
    ``labkit.jupyter.progress`` extension loaded."""
    folder = data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--ext=labkit.jupyter.progress"],
        "display_name": DISPLAY_NAME, "language": "python", "env": env,
        "metadata": {"debugger": True},
    })
    return folder
