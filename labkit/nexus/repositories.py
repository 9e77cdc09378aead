"""Repository configurations as Nexus' REST API reads and writes them (``/v1/repositories/{format}/{type}``)."""

from __future__ import annotations

import copy
import re
from typing import Any

from ..core.errors import ApiError

# REST path segment -> (format name, the types the simulator serves)
FORMATS = {"pypi": ("pypi", ("proxy", "hosted", "group")), "maven": ("maven2", ("proxy", "group"))}
DAY_MINUTES = 1440
NAME = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_.\-]*$")


def validation(*errors: tuple[str, str]) -> ApiError:
    """Nexus' 400 answer: a JSON list of ``{"id": "PARAMETER name", "message": ...}``."""
    return ApiError(400, "ValidationErrors", errors[0][1],
                    {"errors": [{"id": f"PARAMETER {field}", "message": message} for field, message in errors]})


def rest_format(fmt: str) -> str:
    """``maven2`` -> ``maven`` (the REST path's name of a format)."""
    return next(path for path, (name, _) in FORMATS.items() if name == fmt)


def proxy(name: str, fmt: str, remote_url: str) -> dict[str, Any]:
    """A proxy repository with Nexus' defaults (a day of content/metadata age and negative cache, auto-block on)."""
    config: dict[str, Any] = {
        "name": name, "format": fmt, "type": "proxy", "online": True,
        "storage": {"blobStoreName": "default", "strictContentTypeValidation": True},
        "proxy": {"remoteUrl": remote_url, "contentMaxAge": DAY_MINUTES if fmt == "pypi" else -1,
                  "metadataMaxAge": DAY_MINUTES},
        "negativeCache": {"enabled": True, "timeToLive": DAY_MINUTES},
        "httpClient": {"blocked": False, "autoBlock": True},
    }
    if fmt == "maven2":
        config["maven"] = {"versionPolicy": "RELEASE", "layoutPolicy": "STRICT"}
    return config


def hosted(name: str, fmt: str) -> dict[str, Any]:
    return {"name": name, "format": fmt, "type": "hosted", "online": True,
            "storage": {"blobStoreName": "default", "strictContentTypeValidation": True, "writePolicy": "allow_once"}}


def group(name: str, fmt: str, members: list[str]) -> dict[str, Any]:
    return {"name": name, "format": fmt, "type": "group", "online": True,
            "storage": {"blobStoreName": "default", "strictContentTypeValidation": True},
            "group": {"memberNames": list(members)}}


def _need(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for key in path.split("."):
        if not isinstance(node, dict) or node.get(key) is None:
            raise validation((path, "must not be null"))
        node = node[key]
    return node


def from_request(fmt_path: str, kind: str, body: Any, existing: dict[str, Any] | None,
                 known: list[dict[str, Any]]) -> dict[str, Any]:
    """The configuration a create (``existing`` None) or update request asks for, validated as Nexus does."""
    from ..core.errors import not_supported

    if fmt_path not in FORMATS:
        raise ApiError(404, "NotFound", f"format {fmt_path!r} is not supported by the labkit simulator")
    fmt, types = FORMATS[fmt_path]
    if kind not in types:
        raise not_supported(f"{fmt_path} {kind} repositories", 405)
    if not isinstance(body, dict):
        raise validation(("request", "a JSON object is required"))
    name = _need(body, "name")
    if not isinstance(name, str) or not NAME.match(name):
        raise validation(("name", "Only letters, digits, underscores(_), hyphens(-), and dots(.) are allowed "
                                  "and may not start with underscore or dot."))
    _need(body, "online")
    _need(body, "storage.blobStoreName")
    if existing is None and any(r["name"].lower() == name.lower() for r in known):
        raise validation(("name", "Name is already used, must be unique (ignoring case)"))
    if existing is not None and name != existing["name"]:
        raise validation(("name", "Renaming a repository is not supported"))
    if kind == "proxy":
        remote = _need(body, "proxy.remoteUrl")
        if not isinstance(remote, str) or not remote.startswith(("http://", "https://")):
            raise validation(("proxy.remoteUrl", "must be a valid URL"))
        config = proxy(name, fmt, remote)
        for section in ("proxy", "negativeCache", "httpClient", "maven"):
            if isinstance(body.get(section), dict) and section in config:
                config[section].update({k: v for k, v in body[section].items() if v is not None})
        for path in ("proxy.contentMaxAge", "proxy.metadataMaxAge", "negativeCache.timeToLive"):
            section, key = path.split(".")
            if not isinstance(config[section][key], int | float):
                raise validation((path, "must be a number"))
    elif kind == "hosted":
        config = hosted(name, fmt)
    else:
        members = _need(body, "group.memberNames")
        names = {r["name"]: r for r in known}
        for member in members:
            if member not in names or names[member]["format"] != fmt:
                raise validation(("group.memberNames", f"Repository {member!r} is not a {fmt} repository"))
            if member == name:
                raise validation(("group.memberNames", "A group cannot contain itself"))
        config = group(name, fmt, members)
    config["online"] = bool(body["online"])
    config["storage"].update({k: v for k, v in body["storage"].items() if v is not None})
    return config


def summary(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An item of ``GET /v1/repositories``."""
    attributes = {"proxy": {"remoteUrl": config["proxy"]["remoteUrl"]}} if config["type"] == "proxy" else {}
    return {"name": config["name"], "format": config["format"], "type": config["type"],
            "url": f"{base_url}/repository/{config['name']}", "attributes": attributes}


def detail(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``GET /v1/repositories/{format}/{type}/{name}``."""
    return {**copy.deepcopy(config), "url": f"{base_url}/repository/{config['name']}"}
