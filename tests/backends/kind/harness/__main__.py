"""``python -m tests.backends.kind.harness env|down FOLDER``: the harness from a shell (or a CI step).

``env FOLDER`` installs the stand-ins under FOLDER and prints the exports that put them first on PATH
(``eval "$(python -m tests.backends.kind.harness env /tmp/h)"``, then ``labkit up --backend kind``, the
notebooks with ``backend="kind"``, ...); ``down FOLDER`` stops everything they started.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import Harness
from .state import STATE_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.backends.kind.harness", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["env", "down"])
    parser.add_argument("folder", type=Path)
    opts = parser.parse_args(argv)
    folder = opts.folder.resolve()
    if opts.command == "env":
        for key, value in Harness.create(folder).env.items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    Harness(folder, {STATE_ENV: str(folder / "state")}).close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
