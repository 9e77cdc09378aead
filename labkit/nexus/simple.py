"""The PyPI simple repository API both ways: reading an index page (PEP 503 HTML or PEP 691 JSON) and writing one."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html"


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Link:
    """A file of a project page: ``url`` is where it is (absolute upstream, or relative to our page)."""

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: str | bool = False


def parse_filename(filename: str) -> tuple[str, str] | None:
    """(normalized project, version) a wheel or sdist file name carries, or None."""
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return normalize(name), str(version)


def version_of(filename: str) -> str | None:
    """The version a wheel or sdist file name carries, or None."""
    parsed = parse_filename(filename)
    return parsed[1] if parsed else None


def package_path(project: str, filename: str) -> str:
    """Where a repository serves a project's file: ``packages/<name>/<version>/<filename>``."""
    return f"packages/{normalize(project)}/{version_of(filename) or 'unknown'}/{filename}"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, self._text.strip()))
            self._open = None


def _link(url: str, filename: str, hashes: dict[str, str], requires_python: str | None,
          yanked: str | bool | None) -> Link:
    bare, fragment = urldefrag(url)
    sha256 = hashes.get("sha256")
    if fragment.startswith("sha256="):
        sha256 = sha256 or fragment.removeprefix("sha256=")
    return Link(filename, bare, sha256, requires_python or None, yanked if yanked not in (None, False) else False)


def parse_project(body: bytes, content_type: str, page_url: str) -> list[Link]:
    """The files of an upstream project page, with absolute URLs."""
    if content_type.split(";")[0].strip() == JSON_TYPE:
        data = json.loads(body)
        return [_link(urljoin(page_url, f["url"]), f["filename"], f.get("hashes") or {}, f.get("requires-python"),
                      f.get("yanked")) for f in data.get("files", [])]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    links = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        absolute = urljoin(page_url, href)
        filename = text or urldefrag(absolute)[0].rsplit("/", 1)[-1]
        yanked = attrs.get("data-yanked", False) if "data-yanked" in attrs else False
        links.append(_link(absolute, filename, {}, attrs.get("data-requires-python"), yanked))
    return links


def parse_root(body: bytes, content_type: str) -> list[str]:
    """The project names of an upstream root page."""
    if content_type.split(";")[0].strip() == JSON_TYPE:
        return [p["name"] for p in json.loads(body).get("projects", [])]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    return [text for _, text in parser.anchors if text]


def wants_json(accept: str) -> bool:
    """Whether an ``Accept`` header prefers PEP 691 JSON over HTML (PEP 691's content negotiation)."""
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        best[media] = max(q, best.get(media, 0.0))
    json_q = best.get(JSON_TYPE, 0.0)
    html_q = max(best.get(HTML_TYPE, 0.0), best.get("application/vnd.pypi.simple.v1+html", 0.0),
                 best.get("*/*", 0.0), best.get("text/*", 0.0))
    return json_q > 0 and json_q >= html_q


def render_project(name: str, links: list[Link], as_json: bool) -> tuple[str, str]:
    """(body, content type) of a project page."""
    if as_json:
        files = []
        for link in links:
            entry: dict[str, object] = {"filename": link.filename, "url": link.url,
                                        "hashes": {"sha256": link.sha256} if link.sha256 else {}}
            if link.requires_python:
                entry["requires-python"] = link.requires_python
            if link.yanked:
                entry["yanked"] = link.yanked
            files.append(entry)
        return json.dumps({"meta": {"api-version": "1.0"}, "name": name, "files": files}), JSON_TYPE
    rows = []
    for link in links:
        href = link.url + (f"#sha256={link.sha256}" if link.sha256 else "")
        attrs = f' href="{html.escape(href)}"'
        if link.requires_python:
            attrs += f' data-requires-python="{html.escape(link.requires_python)}"'
        if link.yanked:
            attrs += f' data-yanked="{html.escape(link.yanked if isinstance(link.yanked, str) else "")}"'
        rows.append(f"<a{attrs}>{html.escape(link.filename)}</a><br/>")
    body = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n"
            f"<title>Links for {html.escape(name)}</title>\n</head>\n<body>\n<h1>Links for {html.escape(name)}</h1>\n"
            + "\n".join(rows) + "\n</body>\n</html>\n")
    return body, "text/html; charset=utf-8"


def render_root(names: list[str], as_json: bool) -> tuple[str, str]:
    if as_json:
        return json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in names]}), JSON_TYPE
    rows = "\n".join(f'<a href="{html.escape(normalize(n))}/">{html.escape(n)}</a><br/>' for n in names)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n"
            f"<title>Simple index</title>\n</head>\n<body>\n{rows}\n</body>\n</html>\n"), "text/html; charset=utf-8"


def relinked(link: Link, url: str) -> Link:
    return replace(link, url=url)
