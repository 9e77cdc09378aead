"""Harbor's rule selectors (tag immutability, retention): doublestar patterns over tags and repositories.

A pattern: ``**`` any text, ``*`` any text without ``/``, ``?`` one character, ``{a,b}`` either; decorations
``matches``/``excludes`` (tags) and ``repoMatches``/``repoExcludes`` (repositories, named without the project).
"""

from __future__ import annotations

import functools
import re
from typing import Any


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "{":
            end = pattern.find("}", i)
            if end < 0:
                out.append(re.escape(ch))
            else:
                alternatives = pattern[i + 1:end].split(",")
                out.append("(?:" + "|".join(_compile(a).pattern[:-1] for a in alternatives) + ")")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + "$")


def matches(pattern: str, value: str) -> bool:
    """``value`` matches the doublestar ``pattern``."""
    return _compile(pattern).match(value) is not None


def selected(selector: dict[str, Any], value: str) -> bool:
    """One selector (``{kind: doublestar, decoration: matches|excludes|repoMatches|repoExcludes, pattern}``)."""
    hit = matches(str(selector.get("pattern", "")), value)
    return not hit if str(selector.get("decoration", "")).lower().endswith("excludes") else hit


def rule_applies(rule: dict[str, Any], repository: str, tag: str) -> bool:
    """A rule (``scope_selectors.repository`` and ``tag_selectors``) applies to ``repository`` (without its
    project) and ``tag``."""
    if rule.get("disabled"):
        return False
    repo_selectors = (rule.get("scope_selectors") or {}).get("repository") or []
    tag_selectors = rule.get("tag_selectors") or []
    return all(selected(s, repository) for s in repo_selectors) and all(selected(s, tag) for s in tag_selectors)


def valid_selector(selector: Any, decorations: tuple[str, ...]) -> bool:
    return (isinstance(selector, dict) and selector.get("kind", "doublestar") == "doublestar"
            and selector.get("decoration") in decorations and isinstance(selector.get("pattern"), str)
            and bool(selector["pattern"]))
