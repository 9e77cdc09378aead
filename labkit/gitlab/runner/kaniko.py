"""``executor`` in the sim's stand-in for kaniko's debug image: the lab's image builder, then a push.

It takes kaniko's flags (``--context``, ``--dockerfile``, ``--destination`` (repeatable), ``--build-arg``,
``--target``, ``--no-push``); ``--cache*``, ``--snapshot-mode``, ``--insecure*`` and the like are accepted and
ignored: the builder always caches, the lab registry is plain HTTP on loopback. Destinations must be in the lab
registry: the runner passes its address and credentials as ``LABKIT_REGISTRY_HOSTS`` (``host=url`` pairs),
``LABKIT_REGISTRY_USER`` and ``LABKIT_REGISTRY_PASSWORD``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ...images.builder import BuildError, build, push, split_tag

_IGNORED = ("--cache", "--cache-repo", "--cache-dir", "--snapshot-mode", "--single-snapshot", "--use-new-run",
            "--reproducible", "--cleanup", "--compressed-caching", "--skip-tls-verify", "--verbosity",
            "--log-format", "--log-timestamp", "--insecure", "--insecure-pull", "--insecure-registry",
            "--skip-tls-verify-pull", "--skip-tls-verify-registry", "--push-retry", "--image-name-with-digest-file",
            "--digest-file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="executor", description="kaniko's flags, built by labkit's image builder")
    parser.add_argument("--context", "-c", default=".")
    parser.add_argument("--dockerfile", "-f", default="Dockerfile")
    parser.add_argument("--destination", "-d", action="append", default=[])
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("--target")
    parser.add_argument("--no-push", action="store_true")
    for flag in _IGNORED:
        parser.add_argument(flag, nargs="?", const="true")
    args = parser.parse_args(argv)
    context = Path(args.context.removeprefix("dir://"))
    dockerfile = Path(args.dockerfile)
    if dockerfile.is_absolute():
        dockerfile = dockerfile.relative_to(context.resolve()) if dockerfile.is_relative_to(context.resolve()) \
            else dockerfile
    if not args.destination and not args.no_push:
        print("error: you must provide --destination, or use --no-push", file=sys.stderr)
        return 1
    hosts = dict(p.split("=", 1) for p in os.environ.get("LABKIT_REGISTRY_HOSTS", "").split(",") if "=" in p)
    user, password = os.environ.get("LABKIT_REGISTRY_USER"), os.environ.get("LABKIT_REGISTRY_PASSWORD")
    for dest in args.destination:  # before building: a wrong destination fails at once
        if dest.partition("/")[0] not in hosts:
            print(f"error pushing image: {dest.partition('/')[0]} is not the lab registry "
                  f"({', '.join(hosts) or 'none'}): the labkit simulator pushes only there", file=sys.stderr)
            return 1
    build_args = dict(a.split("=", 1) if "=" in a else (a, os.environ.get(a, "")) for a in args.build_arg)
    env = {k: v for k, v in os.environ.items() if k in ("PIP_NO_INDEX", "PIP_FIND_LINKS")}
    tag = args.destination[0] if args.destination else "labkit/no-push:latest"
    try:
        result = build(context, dockerfile, tag=tag, build_args=build_args, target=args.target,
                       progress=lambda e: print(f"INFO {e}", flush=True), env=env)
    except BuildError as err:
        print(f"error building image: {err}", file=sys.stderr)
        return 1
    print(f"INFO built {result.manifest_digest} in {result.seconds:.1f}s", flush=True)
    if args.no_push:
        print("INFO Skipping push to container registry due to --no-push flag")
        return 0
    for dest in args.destination:
        host, _, rest = dest.partition("/")
        repo, ref = split_tag(rest)
        digest = push(result.layout_dir, hosts[host], repo, ref, (user, password) if user else None,
                      ref=result.ref_name)
        print(f"INFO Pushed {dest}@{digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
