"""Path patterns as ``rules:changes`` and ``rules:exists`` match them (Ruby's ``File.fnmatch?`` with
``FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB``): ``*`` and ``?`` stay within a directory, ``**/`` spans any
number of them, ``[...]`` classes and ``{a,b}`` alternatives."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression of a glob."""
    out, i, n, depth = [], 0, len(pattern), 0
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i) and i + 2 == n:
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif ch == "{":
            out.append("(?:")
            depth += 1
        elif ch == "," and depth:
            out.append("|")
        elif ch == "}" and depth:
            out.append(")")
            depth -= 1
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` (relative to the repository root) matches ``pattern``."""
    return compile_glob(pattern.lstrip("/")).match(path) is not None


def any_match(patterns: list[str], paths: list[str]) -> bool:
    """Whether any path matches any pattern."""
    return any(matches(p, f) for p in patterns for f in paths)
