"""Image pulls for the sim kubelet: the OCI distribution API, then layers unpacked to a root filesystem.

Like containerd with a ``hosts.toml`` mirror, the lab's image names
(``localhost:5001/shop/catalog:1``, the name the kind backend's nodes use for
the lab registry too, see manifests/versions.yaml) are pulled from the sim
registry's loopback address. Unpacked images are cached by manifest digest.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build import unpack
from ..build.layers import LayerError
from ..registry.client import RegistryClient, RegistryError

LAB_REGISTRY = "localhost:5001"  # versions.yaml registry.cluster_name: one image name on both backends


class PullError(Exception):
    """The image cannot be pulled; the message is what the kubelet reports (ErrImagePull)."""


@dataclass(frozen=True)
class Image:
    ref: str
    digest: str
    rootfs: Path
    config: dict[str, Any]  # the OCI image config's "config" (Env, Cmd, Entrypoint, WorkingDir, ...)


def parse_ref(ref: str) -> tuple[str, str, str]:
    """``host/repo:tag`` or ``host/repo@digest`` -> (host, repository, tag-or-digest)."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    host, _, rest = name.partition("/")
    if not rest or ("." not in host and ":" not in host and host != "localhost"):
        host, rest = "docker.io", name if "/" in name else f"library/{name}"
    if not digest and ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
    else:
        tag = digest or "latest"
    return host, rest, tag


class ImagePuller:
    """Pulls and caches images; ``mirrors`` maps a registry host to its base URL."""

    def __init__(self, cache: Path, mirrors: dict[str, str]) -> None:
        self.cache = cache
        self.mirrors = mirrors
        self._lock = threading.Lock()

    def pull(self, ref: str) -> Image:
        """Blocking pull (run it in a thread); raises PullError with the message containerd gives."""
        host, repo, tag = parse_ref(ref)
        name = f"{host}/{repo}{'@' if tag.startswith('sha256:') else ':'}{tag}"
        failed = f'rpc error: code = {{}} desc = failed to pull and unpack image "{name}"'
        base = self.mirrors.get(host)
        if base is None:
            raise PullError(f"{failed.format('Unknown')}: the labkit simulator pulls images only from the lab "
                            f"registry ({', '.join(self.mirrors)}); build and push the image there first")
        client = RegistryClient(base, timeout=30)
        try:
            body, _, digest = client.manifest(repo, tag)
            manifest = json.loads(body)
            if "manifests" in manifest:  # an index: take linux/amd64, else the first
                entries = manifest["manifests"]
                pick = next((m for m in entries if m.get("platform", {}).get("architecture") == "amd64"),
                            entries[0])
                body, _, digest = client.manifest(repo, pick["digest"])
                manifest = json.loads(body)
            root = self.cache / digest.replace(":", "-")
            with self._lock:
                if not (root / ".complete").exists():
                    work = root.with_suffix(".partial")
                    shutil.rmtree(work, ignore_errors=True)
                    config = unpack(lambda d: client.pull_blob(repo, d), manifest, work / "rootfs")
                    (work / "config.json").write_text(json.dumps(config))
                    (work / ".complete").touch()
                    shutil.rmtree(root, ignore_errors=True)
                    work.rename(root)
        except RegistryError as err:
            if err.status == 404:
                raise PullError(f'{failed.format("NotFound")}: failed to resolve reference "{name}": '
                                f"{name}: not found") from err
            if err.status in (401, 403):
                raise PullError(f'{failed.format("Unknown")}: failed to resolve reference "{name}": pull access '
                                "denied, repository does not exist or may require authorization") from err
            raise PullError(f"{failed.format('Unknown')}: {err}") from err
        except (OSError, LayerError, ValueError) as err:
            raise PullError(f"{failed.format('Unknown')}: {err}") from err
        finally:
            client.close()
        cfg = json.loads((root / "config.json").read_text())
        return Image(ref, digest, root / "rootfs", cfg.get("config") or {})
