"""``python -m labkit.backends.kind render``: write the kind lab's files and print shell exports, for running
the README's commands by hand; ``commands`` prints what ``labkit up --backend kind`` would run."""

from __future__ import annotations

import argparse
import shlex
import sys

from ...core.paths import LabPaths
from .backend import QUERIES, render, up_commands
from .lab import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.backends.kind",
                                     description="Render the kind lab's files and print shell exports.")
    parser.add_argument("command", choices=["render", "commands"],
                        help="render: write $LABKIT_HOME/kind/* and print exports; commands: print up's commands")
    parser.add_argument("--home", help="lab home (default: $LABKIT_HOME)")
    opts = parser.parse_args(argv)
    lab = load(LabPaths.resolve(opts.home))
    if opts.command == "render":
        render(lab)
        for key, value in lab.variables().items():
            print(f"export {key}={shlex.quote(value)}")
    else:
        for cmd in [*QUERIES, *up_commands(lab, cluster_exists=False)]:
            print(shlex.join(cmd.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
