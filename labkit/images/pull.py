"""Image pulls for the sim kubelet and the GitLab runner: the OCI distribution API, then layers unpacked to a root
filesystem.

Like containerd with a ``hosts.toml`` mirror, the lab's image names
(``localhost:5001/shop/catalog:1``, the name the kind backend's nodes use for
the lab registry too, see manifests/versions.yaml) are pulled from wherever the
mirrors say: the sim registry's loopback address by default. Unpacked images
are cached by manifest digest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.paths import machine_cache
from .client import RegistryClient, RegistryError
from .layers import LayerError, apply_layer, link_layer

Auth = tuple[str, str] | None  # (user, password) for a registry, or anonymous


class PullError(Exception):
    """The image cannot be pulled; the message is what the kubelet reports (ErrImagePull)."""


@dataclass(frozen=True)
class Image:
    ref: str
    digest: str
    rootfs: Path
    config: dict[str, Any]  # the OCI image config's "config" (Env, Cmd, Entrypoint, WorkingDir, ...)


def pull_secret_auth(secrets: list[dict[str, Any]], host: str) -> Auth:
    """The credentials for ``host`` in a pod's image pull secrets (``kubernetes.io/dockerconfigjson`` or the legacy
    ``kubernetes.io/dockercfg``), first match wins, as the kubelet's keyring looks them up; None: anonymous."""
    for secret in secrets:
        data = secret.get("data") or {}
        try:
            if ".dockerconfigjson" in data:
                auths = json.loads(base64.b64decode(data[".dockerconfigjson"])).get("auths") or {}
            elif ".dockercfg" in data:
                auths = json.loads(base64.b64decode(data[".dockercfg"]))
            else:
                continue
        except (ValueError, TypeError):
            continue
        for server, entry in auths.items():
            if server.removeprefix("https://").removeprefix("http://").split("/")[0] != host:
                continue
            user, password = entry.get("username"), entry.get("password")
            if not user and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
            if user:
                return user, password or ""
    return None


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

    def __init__(self, cache: Path, mirrors: dict[str, str], layers: Path | None = None) -> None:
        self.cache = cache  # unpacked images of this lab
        self.layers = layers or machine_cache() / "layers"  # unpacked layers, shared by the user's labs
        self.mirrors = mirrors
        self._lock = threading.Lock()
        self._unpacking: dict[str, threading.Lock] = {}  # one unpack per image or layer digest at a time
        # its own threads: pulls wait on the registry, which may need the default executor to answer
        self._in_flight: dict[tuple[str, Auth], asyncio.Future[Image]] = {}
        self.present: dict[str, Image] = {}  # image ref -> the image this machine has for it
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="image-pull")

    def pull_async(self, ref: str, auth: Auth = None) -> asyncio.Future[Image]:
        """The pull of ``ref`` with ``auth`` in flight (every node that needs it shares it), or a new one."""
        key = (ref, auth)
        running = self._in_flight.get(key)
        if running is None or running.done():
            running = asyncio.get_running_loop().run_in_executor(self._executor, self.pull, ref, auth)
            self._in_flight[key] = running
        return running

    def close(self) -> None:
        """Cancel the pulls not started; wait for the ones unpacking (nothing writes after the lab stops)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _once(self, key: str) -> threading.Lock:
        with self._lock:
            return self._unpacking.setdefault(key, threading.Lock())

    @staticmethod
    def _blob(client: RegistryClient, repo: str, digest: str) -> bytes:
        data = client.pull_blob(repo, digest)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise LayerError(f"blob {digest} does not match its digest")
        return data

    def _layer(self, client: RegistryClient, repo: str, digest: str) -> tuple[Path, list[str], str]:
        """A layer unpacked once for every image and lab that has it (as containerd's snapshots, in the user's
        cache): (files, whiteouts, diff_id)."""
        folder = self.layers / digest.replace(":", "-")
        with self._once(digest):
            if not (folder / "layer.json").exists():
                work = folder.with_name(f"{folder.name}.{os.getpid()}.partial")  # other labs may unpack it too
                shutil.rmtree(work, ignore_errors=True)
                whiteouts: list[str] = []
                (work / "files").mkdir(parents=True)
                diff_id = apply_layer(self._blob(client, repo, digest), work / "files", whiteouts=whiteouts)
                (work / "layer.json").write_text(json.dumps({"diff_id": diff_id, "whiteouts": whiteouts}))
                try:
                    work.rename(folder)
                except OSError:  # another lab finished it first: same content
                    shutil.rmtree(work, ignore_errors=True)
        meta = json.loads((folder / "layer.json").read_text())
        return folder / "files", meta["whiteouts"], meta["diff_id"]

    def pull(self, ref: str, auth: Auth = None) -> Image:
        """Blocking pull (run it in a thread), anonymous or as ``auth`` (user, password: a pod's image pull secret);
        raises PullError with the message containerd gives."""
        host, repo, tag = parse_ref(ref)
        name = f"{host}/{repo}{'@' if tag.startswith('sha256:') else ':'}{tag}"
        failed = f'rpc error: code = {{}} desc = failed to pull and unpack image "{name}"'
        base = self.mirrors.get(host)
        if base is None:
            raise PullError(f"{failed.format('Unknown')}: the labkit simulator pulls images only from the lab "
                            f"registry ({', '.join(self.mirrors)}); build and push the image there first")
        client = RegistryClient(base, *(auth or (None, None)), timeout=30)
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
            with self._once(digest):
                if not (root / ".complete").exists():
                    work = root.with_suffix(".partial")
                    shutil.rmtree(work, ignore_errors=True)
                    config = json.loads(self._blob(client, repo, manifest["config"]["digest"]))
                    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
                    (work / "rootfs").mkdir(parents=True)
                    for i, layer in enumerate(manifest.get("layers") or []):
                        folder, whiteouts, diff_id = self._layer(client, repo, layer["digest"])
                        if i < len(diff_ids) and diff_ids[i] != diff_id:
                            raise LayerError(f"layer {layer['digest']} does not match the config's diff_id")
                        link_layer(folder, whiteouts, work / "rootfs")
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
        self.present[ref] = Image(ref, digest, root / "rootfs", cfg.get("config") or {})
        return self.present[ref]
