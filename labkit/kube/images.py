"""Image pulls for the sim kubelet: the OCI distribution API, then layers unpacked to a root filesystem.

Like containerd with a ``hosts.toml`` mirror, the lab's image names
(``localhost:5001/shop/catalog:1``, the name the kind backend's nodes use for
the lab registry too, see manifests/versions.yaml) are pulled from the sim
registry's loopback address. Unpacked images are cached by manifest digest.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAB_REGISTRY = "localhost:5001"  # versions.yaml registry.cluster_name: one image name on both backends
_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


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


def unpack_layer(blob: bytes, dest: Path) -> None:
    """Apply one gzip or plain tar layer, honouring OCI whiteouts."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        members = []
        for m in tar.getmembers():
            path = Path(m.name)
            if path.name == ".wh..wh..opq":
                target = dest / path.parent
                if target.is_dir():
                    for child in target.iterdir():
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            elif path.name.startswith(".wh."):
                target = dest / path.parent / path.name[4:]
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
            else:
                members.append(m)
        tar.extractall(dest, members=members, filter="tar")


class ImagePuller:
    """Pulls and caches images; ``mirrors`` maps a registry host to its base URL."""

    def __init__(self, cache: Path, mirrors: dict[str, str]) -> None:
        self.cache = cache
        self.mirrors = mirrors
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}

    def _get(self, base: str, repo: str, path: str, accept: str = "") -> tuple[bytes, dict[str, str]]:
        url = f"{base}/v2/{repo}/{path}"
        for _ in range(2):
            headers = {"Accept": accept} if accept else {}
            if repo in self._tokens:
                headers["Authorization"] = f"Bearer {self._tokens[repo]}"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
                    return r.read(), dict(r.headers)
            except urllib.error.HTTPError as err:
                challenge = err.headers.get("WWW-Authenticate", "")
                if err.code == 401 and challenge.lower().startswith("bearer") and repo not in self._tokens:
                    self._tokens[repo] = self._token(challenge, repo)
                    continue
                if err.code == 404:
                    raise PullError(f"{repo}:{path.rsplit('/', 1)[-1]}: not found") from err
                raise PullError(f"unexpected status from {url}: {err.code} {err.reason}") from err
            except OSError as err:
                raise PullError(f"dial {base}: {err}") from err
        raise PullError(f"pull access denied for {repo}, repository does not exist or may require authorization")

    def _token(self, challenge: str, repo: str) -> str:
        params = dict(p.split("=", 1) for p in challenge[7:].replace('"', "").split(","))
        query = urllib.parse.urlencode({"service": params.get("service", ""),
                                        "scope": f"repository:{repo}:pull"})
        with urllib.request.urlopen(f"{params['realm']}?{query}", timeout=10) as r:
            body = json.loads(r.read())
        return body.get("token") or body["access_token"]

    def pull(self, ref: str) -> Image:
        """Blocking pull (run it in a thread); raises PullError with the message to report."""
        host, repo, tag = parse_ref(ref)
        base = self.mirrors.get(host)
        if base is None:
            raise PullError(f'failed to pull and unpack image "{host}/{repo}:{tag}": the labkit simulator pulls '
                            f"images only from the lab registry ({', '.join(self.mirrors)}); build and push the "
                            "image there first")
        body, headers = self._get(base, repo, f"manifests/{tag}", _ACCEPT)
        manifest = json.loads(body)
        if "manifests" in manifest:  # an index: take linux/amd64, else the first
            entries = manifest["manifests"]
            pick = next((m for m in entries if m.get("platform", {}).get("architecture") == "amd64"), entries[0])
            body, headers = self._get(base, repo, f"manifests/{pick['digest']}", _ACCEPT)
            manifest = json.loads(body)
        digest = headers.get("Docker-Content-Digest") or tag
        root = self.cache / digest.replace(":", "-")
        with self._lock:
            if not (root / ".complete").exists():
                config, _ = self._get(base, repo, f"blobs/{manifest['config']['digest']}")
                work = root.with_suffix(".partial")
                shutil.rmtree(work, ignore_errors=True)
                (work / "rootfs").mkdir(parents=True)
                for layer in manifest.get("layers", []):
                    blob, _ = self._get(base, repo, f"blobs/{layer['digest']}")
                    unpack_layer(blob, work / "rootfs")
                (work / "config.json").write_bytes(config)
                (work / ".complete").touch()
                shutil.rmtree(root, ignore_errors=True)
                work.rename(root)
        cfg = json.loads((root / "config.json").read_text())
        return Image(ref, digest, root / "rootfs", cfg.get("config") or {})
