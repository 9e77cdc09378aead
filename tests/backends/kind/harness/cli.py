"""The entry point of every stand-in executable: record the call, inject a failure if asked, run the tool.

The executables :func:`install` writes are two-line Python scripts calling :func:`main` with their tool name.
``kubectl`` is not a stand-in: it is the real kubectl (``$STANDIN_KUBECTL``), run through this recorder so
that the tests see it among the calls. ``$STANDIN_FAIL`` = ``"<tool> <subcommand>"`` (``helm upgrade``)
makes that call fail as the real one would fail, with exit 1 and nothing done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .state import FAIL_ENV, KUBECTL_ENV, REPO, STATE_ENV, State

TOOLS = ("kind", "docker", "helm", "kubectl")


def _run(tool: str, argv: list[str]) -> int:
    if tool == "kubectl":
        return subprocess.call([os.environ[KUBECTL_ENV], *argv])
    if tool == "kind":
        from . import kind

        return kind.main(argv)
    if tool == "docker":
        from . import docker

        return docker.main(argv)
    from . import helm

    return helm.main(argv)


def main(tool: str, argv: list[str] | None = None) -> int:
    """Run stand-in ``tool`` with ``argv`` (default: the process's arguments) and record the call."""
    argv = sys.argv[1:] if argv is None else argv
    code, started = 1, time.monotonic()
    try:
        words = [a for a in argv if not a.startswith("-")][:1]
        if tool != "kubectl" and os.environ.get(FAIL_ENV) == " ".join([tool, *words]):
            print(f"{tool}: failing as asked (stand-in)", file=sys.stderr)
            return code
        code = _run(tool, argv)
        return code
    except KeyboardInterrupt:
        code = 130
        return code
    except Exception:
        traceback.print_exc()
        print(f"{tool}: the kind harness failed (a bug in the harness, see above)", file=sys.stderr)
        return code
    finally:
        if os.environ.get(STATE_ENV):
            State.from_env().record(tool, argv, code, time.monotonic() - started)


def install(bin_dir: Path) -> None:
    """Write an executable for every tool into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                        f"from tests.backends.kind.harness.cli import main\nsys.exit(main({tool!r}))\n")
        path.chmod(0o755)
