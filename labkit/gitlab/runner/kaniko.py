"""``executor`` in the sim's stand-in for kaniko's debug image: the lab's image builder, then a push.

It takes kaniko's flags (``--context``, ``--dockerfile``, ``--destination`` (repeatable), ``--build-arg``,
``--target``, ``--no-push``); ``--cache*``, ``--snapshot-mode``, ``--insecure*`` and the like are accepted and
ignored: the builder always caches, the lab registry is plain HTTP on loopback. Destinations must be in the lab
registry, whose address the runner passes as ``LABKIT_REGISTRY_HOSTS`` (``host=url`` pairs). A push is made with
the credentials kaniko reads, ``$DOCKER_CONFIG/config.json`` (kaniko's image sets ``DOCKER_CONFIG=/kaniko/.docker/``;
the job writes the file, as GitLab's kaniko documentation shows): ``auths`` by registry host, ``auth`` (base64 of
``user:password``) or ``username``/``password``. Without an entry the push is anonymous, and the registry decides.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

from ...images.builder import BuildError, build, push, split_tag
from ...images.client import RegistryError

_IGNORED = ("--cache", "--cache-repo", "--cache-dir", "--snapshot-mode", "--single-snapshot", "--use-new-run",
            "--reproducible", "--cleanup", "--compressed-caching", "--skip-tls-verify", "--verbosity",
            "--log-format", "--log-timestamp", "--insecure", "--insecure-pull", "--insecure-registry",
            "--skip-tls-verify-pull", "--skip-tls-verify-registry", "--push-retry", "--image-name-with-digest-file",
            "--digest-file")


def docker_credentials(host: str) -> tuple[str, str] | None:
    """(user, password) for ``host`` from ``$DOCKER_CONFIG/config.json`` (kaniko's default folder
    ``/kaniko/.docker``), or None: kaniko then pushes anonymously."""
    path = Path(os.environ.get("DOCKER_CONFIG") or "/kaniko/.docker") / "config.json"
    try:
        auths = json.loads(path.read_text()).get("auths") or {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: reading {path}: {err}") from None
    entry = next((v for k, v in auths.items() if k.removeprefix("https://").removeprefix("http://")
                  .rstrip("/").removesuffix("/v1").removesuffix("/v2") == host), None)
    if not entry:
        return None
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return user, password
    return (entry["username"], entry.get("password", "")) if entry.get("username") else None


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
        try:
            digest = push(result.layout_dir, hosts[host], repo, ref, docker_credentials(host), ref=result.ref_name)
        except (RegistryError, OSError) as err:  # the registry's refusal (401/403: a robot without push), its words
            print(f"error pushing image: failed to push to destination {dest}: {err}", file=sys.stderr)
            return 1
        print(f"INFO Pushed {dest}@{digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
