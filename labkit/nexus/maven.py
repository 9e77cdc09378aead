"""The maven2 format: ``<group path>/<artifactId>/<version>/<file>``, ``maven-metadata.xml`` (re-validated as
metadata) and the checksum files Maven and Gradle ask for beside every file (``.sha1``, ``.md5``, ``.sha256``,
``.sha512``), computed from the stored file; a group merges its members' ``maven-metadata.xml``."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from ..core.errors import ApiError
from .proxy import ProxyEngine, RemoteUnavailable
from .store import Asset, NexusStore

Config = dict[str, Any]
CHECKSUMS = ("sha1", "md5", "sha256", "sha512")
METADATA = "maven-metadata.xml"


def coordinates(path: str) -> tuple[str, str, str] | None:
    """(groupId, artifactId, version) of an artifact's file path, or None when the path is not one."""
    parts = path.split("/")
    if len(parts) < 4 or not all(parts):
        return None
    *group, artifact, version, filename = parts
    if not filename.startswith(f"{artifact}-"):
        return None
    return ".".join(group), artifact, version


def is_metadata(path: str) -> bool:
    return path.rsplit("/", 1)[-1] == METADATA


class Maven:
    """Files of maven2 proxy and group repositories."""

    def __init__(self, store: NexusStore, engine: ProxyEngine, repository: Callable[[str], Config | None]) -> None:
        self.store, self.engine, self.repository = store, engine, repository

    async def get(self, config: Config, path: str) -> Asset | bytes | None:
        """A file (an Asset) or a checksum (its text) at ``path``; None when there is none."""
        base, _, ext = path.rpartition(".")
        if ext in CHECKSUMS and base:
            asset = await self.file(config, base)
            if asset is None:
                return None
            value = getattr(asset, ext) if ext != "sha512" else self.store.blobs.digest(asset.sha256, "sha512")
            return value.encode()
        return await self.file(config, path)

    async def file(self, config: Config, path: str) -> Asset | None:
        if config["type"] == "group":
            return await self._group_file(config, path)
        metadata = is_metadata(path)
        found = None if metadata else coordinates(path)
        if not metadata and found is None and config["maven"].get("layoutPolicy", "STRICT") == "STRICT":
            raise ApiError(400, "BadRequest", f"Invalid path for a Maven 2 repository: /{path}")
        if found is not None:
            snapshot = found[2].endswith("-SNAPSHOT")
            policy = config["maven"].get("versionPolicy", "RELEASE")
            if (policy == "RELEASE" and snapshot) or (policy == "SNAPSHOT" and not snapshot):
                raise ApiError(400, "BadRequest", f"Repository version policy: {policy} does not allow version: "
                                                  f"{found[2]}")
        url = config["proxy"]["remoteUrl"].rstrip("/") + "/" + path
        return await self.engine.get(config, path, url, metadata=metadata, component=found)

    async def _group_file(self, config: Config, path: str) -> Asset | None:
        """The first member's file; ``maven-metadata.xml`` merged from every member that has one, as Nexus does."""
        found: list[Asset] = []
        errors: list[RemoteUnavailable] = []
        for name in config["group"]["memberNames"]:
            member = self.repository(name)
            if member is None:
                continue
            try:
                asset = await self.file(member, path)
            except RemoteUnavailable as err:
                errors.append(err)
                continue
            if asset is not None:
                found.append(asset)
                if not is_metadata(path):
                    break
        if not found:
            if errors:
                raise errors[0]
            return None
        return found[0] if len(found) == 1 else self._merged(config["name"], path, found)

    def _merged(self, group: str, path: str, parts: list[Asset]) -> Asset:
        """The members' metadata merged (versions united; latest, release and lastUpdated from the newest),
        stored as the group's asset until a member's metadata changes."""
        key = ",".join(a.sha256 for a in parts)
        stored = self.store.asset(group, path)
        if stored is not None and stored.etag == key:
            return stored
        documents = [ET.fromstring(self.store.blobs.read(a.sha256)) for a in parts]
        newest = max(documents, key=lambda d: d.findtext("versioning/lastUpdated") or "")
        merged = copy.deepcopy(newest)
        versions = list(dict.fromkeys(v.text for d in documents for v in d.iterfind("versioning/versions/version")
                                      if v.text))
        versioning = merged.find("versioning")
        if versioning is not None and versions:
            holder = versioning.find("versions")
            if holder is None:
                holder = ET.SubElement(versioning, "versions")
            for child in list(holder):
                holder.remove(child)
            for version in versions:
                ET.SubElement(holder, "version").text = version
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(merged, encoding="unicode")).encode()
        return self.store.put_asset(group, path, self.store.blobs.put(body), "application/xml", etag=key)
