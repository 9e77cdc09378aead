"""The GitLab simulator on its own, outside the lab daemon: ``python -m labkit.gitlab --home DIR``.

``--listen HOST:PORT`` picks the listener and ``--omnibus-config gitlab.rb`` reads what GitLab CE would
(its ``external_url`` and ``initial_root_password``): the kind contract harness runs it for the
``gitlab/gitlab-ce`` image, fresh as a new GitLab CE (the root user only); ``--runner-env FILE`` is what its
runner's job environment gets once a runner is installed (the harness writes it from the gitlab-runner chart's
values: the job pods' service account credentials, the registry relay). Prints the endpoint as one JSON
line, serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from ..core.standalone import loopback_address, serve_until_signalled, standalone_context
from .component import GitLab
from .omnibus import parse


async def serve(home: Path, listen: tuple[str, int] | None, omnibus: Path | None,
                runner_env: Path | None = None) -> None:
    ctx = standalone_context(home)
    gitlab = GitLab()
    gitlab.name, gitlab.title = "gitlab", "GitLab"
    gitlab.bind = listen
    if omnibus is not None:
        settings = parse(omnibus.read_text())
        gitlab.external_url, gitlab.root_password = settings.external_url, settings.root_password
        gitlab.fresh = True  # as a new GitLab CE: the root user only
    gitlab.runner_env = runner_env
    await serve_until_signalled(gitlab, ctx, lambda: dataclasses.asdict(gitlab.endpoint()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.gitlab", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder for state, secrets and logs")
    parser.add_argument("--listen", type=loopback_address, help="loopback HOST:PORT (default: the lab's address plan)")
    parser.add_argument("--omnibus-config", type=Path, help="a gitlab.rb to take external_url and the root "
                                                            "password from")
    parser.add_argument("--runner-env", type=Path, help="a JSON file {\"env\": {...}} of what the runner's job "
                        "environment has beside the job's variables (read for each job, when it exists)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.home.resolve(), args.listen, args.omnibus_config, args.runner_env))
    sys.exit(0)
