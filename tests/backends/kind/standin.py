"""A stand-in for the ``kind``, ``docker``, ``helm`` and ``kubectl`` CLIs, for tests without Docker.

Installed (as a copy named after each tool) first on PATH by :func:`install`. Each call
appends ``{"argv": [...]}`` to ``$STANDIN_LOG`` and answers like the real tool would where
labkit reads the answer: ``kind get clusters`` lists the clusters created so far,
``kind export kubeconfig`` writes a kubeconfig, ``docker info`` prints a version,
``kubectl wait`` says the nodes are Ready. ``STANDIN_FAIL=<tool> <subcommand>`` makes that
call fail the way the real one does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TOOLS = ("kind", "docker", "helm", "kubectl")
NODES = ("server-1", "server-2", "server-3", "agent-1", "agent-2")

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kind-{name}
  cluster:
    server: https://127.0.0.1:1
    certificate-authority-data: ""
contexts:
- name: kind-{name}
  context: {{cluster: kind-{name}, user: kind-{name}}}
current-context: kind-{name}
users:
- name: kind-{name}
  user: {{token: stand-in}}
"""


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def main() -> int:
    tool, args = Path(sys.argv[0]).name, sys.argv[1:]
    with open(os.environ["STANDIN_LOG"], "a") as log:
        log.write(json.dumps({"argv": [tool, *args]}) + "\n")
    if os.environ.get("STANDIN_FAIL") == " ".join([tool, *args[:1]]):
        print(f"{tool}: failing as asked (stand-in)", file=sys.stderr)
        return 1
    state = Path(os.environ["STANDIN_LOG"]).with_suffix(".clusters")
    clusters = state.read_text().split() if state.exists() else []
    if tool == "kind" and args[:2] == ["get", "clusters"]:
        print("\n".join(clusters) if clusters else "No kind clusters found.",
              file=sys.stdout if clusters else sys.stderr)
    elif tool == "kind" and args[:2] == ["create", "cluster"]:
        state.write_text("\n".join([*clusters, _option(args, "--name")]))
    elif tool == "kind" and args[:2] == ["delete", "cluster"]:
        state.write_text("\n".join(c for c in clusters if c != _option(args, "--name")))
    elif tool == "kind" and args[:2] == ["export", "kubeconfig"]:
        Path(_option(args, "--kubeconfig")).write_text(KUBECONFIG.format(name=_option(args, "--name")))
    elif tool == "docker" and args[:1] == ["info"]:
        print("28.2.2")
    elif tool == "kubectl" and "wait" in args:
        print("\n".join(f"node/{n} condition met" for n in NODES))
    return 0


def install(bin_dir: Path) -> None:
    """Put an executable stand-in for every tool in ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    source = f"#!{sys.executable}\n" + Path(__file__).read_text()
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(source)
        path.chmod(0o755)


def calls(log: Path) -> list[list[str]]:
    """The recorded argv lists, in order (and forget them)."""
    if not log.exists():
        return []
    argvs = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    log.write_text("")
    return argvs


if __name__ == "__main__":
    sys.exit(main())
